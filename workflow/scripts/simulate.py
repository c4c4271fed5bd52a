"""Adapter of rule simulate: simulate one dose x seed (see ptycho_core.steps.simulate)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core import layout  # noqa: E402
from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.simulate import run_simulate  # noqa: E402

sm = snakemake  # noqa: F821
study = study_from_dict(sm.config, source="config")
cell = layout.Cell.from_wildcards(sm.wildcards)
run_simulate(
    study,
    cell=cell,
    ground_truth=layout.ground_truth(cell.seed),
    training_object=layout.ground_truth(cell.seed, training=True) if study.object.separate_training else None,
    out=layout.SimulatedFiles(**dict(sm.output.items())),
)
