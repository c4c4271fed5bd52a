"""Write the validated study configuration as JSON (input of the pty-chi rule's own process)."""

import json

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core.io.npz import atomic_write_text  # noqa: E402

atomic_write_text(snakemake.output[0], json.dumps(snakemake.params.study, indent=2, sort_keys=True) + "\n")  # noqa: F821
