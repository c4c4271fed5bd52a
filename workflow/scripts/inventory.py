"""Phase G adapter: inventory of the study's artifacts (relative path, size, sha256)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core.io.npz import atomic_write_text  # noqa: E402
from ptycho_core.steps.report import inventory  # noqa: E402

atomic_write_text(snakemake.output[0], inventory("."))  # noqa: F821
