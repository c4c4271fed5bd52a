"""Phase D adapter: build one overlap view of one dose x seed (see ptycho_core.steps.views)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.views import run_view  # noqa: E402

sm = snakemake  # noqa: F821
run_view(
    study_from_dict(sm.config, source="config"),
    view_name=sm.wildcards.view,
    dose=float(sm.params.dose),
    seed=int(sm.wildcards.seed),
    train_path=sm.input.train,
    test_path=sm.input.test,
    phase_c_sentinel=sm.input.phase_c,
    out_view=sm.output.view,
    out_metrics=sm.output.metrics,
    out_figure=sm.output.figure,
    sentinel_path=sm.output.sentinel,
)
