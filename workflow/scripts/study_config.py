"""Write the validated study configuration as JSON (input of the pty-chi rule's own process)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.study_config import run_study_config  # noqa: E402

sm = snakemake  # noqa: F821
run_study_config(study_from_dict(sm.config, source="config").to_dict(), out_path=sm.output[0])
