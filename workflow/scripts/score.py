"""Phase F adapter: score every method of one dose x view x seed (see ptycho_core.steps.score)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.score import run_score  # noqa: E402

sm = snakemake  # noqa: F821
run_score(
    study_from_dict(sm.config, source="config"),
    dose=float(sm.params.dose),
    view_name=sm.wildcards.view,
    seed=int(sm.wildcards.seed),
    ground_truth=sm.input.ground_truth,
    test_path=sm.input.test,
    view_path=sm.input.view,
    recon_paths=dict(zip(sm.params.methods, sm.input.recons)),
    input_sentinels=list(sm.input.sentinels),
    out_metrics=sm.output.metrics,
    out_frc=sm.output.frc,
    out_alignment=sm.output.alignment,
    out_figure=sm.output.figure,
    sentinel_path=sm.output.sentinel,
)
