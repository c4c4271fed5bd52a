"""Adapter of rule report: aggregate the study into tables, highlights and figures (see ptycho_core.steps.report)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core import layout  # noqa: E402
from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.report import run_report  # noqa: E402

study = study_from_dict(snakemake.config, source="config")  # noqa: F821
run_report(study, out=layout.report([v.name for v in study.views]))
