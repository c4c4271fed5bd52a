"""Phase E adapter: train one model of one dose x view x seed (see ptycho_core.steps.train)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.train import run_train  # noqa: E402

sm = snakemake  # noqa: F821
run_train(
    study_from_dict(sm.config, source="config"),
    method=sm.wildcards.method,
    dose=float(sm.params.dose),
    view_name=sm.wildcards.view,
    seed=int(sm.wildcards.seed),
    train_path=sm.input.train,
    view_path=sm.input.view,
    input_sentinels=[sm.input.phase_c, sm.input.phase_d],
    ground_truth=sm.input.get("ground_truth"),  # the Baseline's targets; PtychoPINN gets none
    out_model=sm.output.model,
    out_sidecar=sm.output.sidecar,
    out_history=sm.output.history,
    out_figure=sm.output.figure,
    sentinel_path=sm.output.sentinel,
    threads=sm.threads,
)
