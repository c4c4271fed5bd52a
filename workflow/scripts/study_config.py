"""Write the validated study configuration as JSON (input of the pty-chi rule's own process)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core.steps.study_config import run_study_config  # noqa: E402

run_study_config(snakemake.params.study, out_path=snakemake.output[0])  # noqa: F821
