"""Adapter of rule inventory: inventory of the study's artifacts (relative path, size, sha256)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.report import run_inventory  # noqa: E402

run_inventory(study_from_dict(snakemake.config, source="config"), out_path=snakemake.output[0], root=".")  # noqa: F821
