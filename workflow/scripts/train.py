"""Adapter of rules train and train_per_dose: train one network of one cell, or of one dose
(see ptycho_core.steps.train)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core import layout  # noqa: E402
from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.train import run_train  # noqa: E402

sm = snakemake  # noqa: F821
cell = layout.Cell.from_wildcards(sm.wildcards)
targets = sm.input.get("ground_truth")  # the Baseline's targets (rule input supervised_targets); PtychoPINN gets none
run_train(
    study_from_dict(sm.config, source="config"),
    cell=cell,
    simulated=layout.simulated(cell),
    view=layout.view(cell) if cell.view is not None else None,
    ground_truth=None if targets is None else layout.GroundTruthFiles(targets, sm.input.ground_truth_sentinel),
    out=layout.BundleFiles(**dict(sm.output.items())),
    threads=sm.threads,
)
