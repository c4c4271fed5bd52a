"""Phase C adapter: simulate one dose x seed (see ptycho_core.steps.simulate)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.simulate import run_simulate  # noqa: E402

sm = snakemake  # noqa: F821
run_simulate(
    study_from_dict(sm.config, source="config"),
    dose=float(sm.params.dose),
    seed=int(sm.wildcards.seed),
    ground_truth=sm.input.obj,
    ground_truth_sentinel=sm.input.obj_sentinel,
    out_train=sm.output.train,
    out_test=sm.output.test,
    out_preview=sm.output.preview,
    sentinel_path=sm.output.sentinel,
    training_object=sm.input.get("train_obj"),
    training_object_sentinel=sm.input.get("train_obj_sentinel"),
)
