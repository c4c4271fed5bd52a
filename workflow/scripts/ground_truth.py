"""Phase C adapter: write the study's ground-truth object, or its separate training object (see ptycho_core.steps.simulate)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.simulate import run_ground_truth  # noqa: E402

sm = snakemake  # noqa: F821
run_ground_truth(
    study_from_dict(sm.config, source="config"),
    out_path=sm.output.obj,
    sentinel_path=sm.output.sentinel,
    training=bool(sm.params.training),
)
