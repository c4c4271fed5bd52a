"""Adapter of rules ground_truth and training_object: write the study object, or its separate training object
(see ptycho_core.steps.simulate)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core import layout  # noqa: E402
from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.simulate import run_ground_truth  # noqa: E402

sm = snakemake  # noqa: F821
run_ground_truth(
    study_from_dict(sm.config, source="config"),
    cell=layout.Cell.from_wildcards(sm.wildcards),
    out=layout.GroundTruthFiles(**dict(sm.output.items())),
    training=bool(sm.params.training),
)
