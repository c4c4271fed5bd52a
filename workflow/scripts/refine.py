"""Phase F adapter: test-time refinement of a trained PtychoPINN (see ptycho_core.nn.refinement)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.refine import run_refine  # noqa: E402

sm = snakemake  # noqa: F821
run_refine(
    study_from_dict(sm.config, source="config"),
    dose=float(sm.params.dose),
    view_name=sm.wildcards.view,
    seed=int(sm.wildcards.seed),
    test_path=sm.input.test,
    view_path=sm.input.view,
    model_path=sm.input.model,
    sidecar_path=sm.input.sidecar,
    input_sentinels=[sm.input.phase_c, sm.input.phase_d, sm.input.phase_e],
    out_model=sm.output.model,
    out_sidecar=sm.output.sidecar,
    out_history=sm.output.history,
    out_figure=sm.output.figure,
    sentinel_path=sm.output.sentinel,
    threads=sm.threads,
)
