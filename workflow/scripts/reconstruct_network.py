"""Phase F adapter: reconstruct the view's test region with a trained network (see ptycho_core.steps.reconstruct_network)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.reconstruct_network import run_reconstruct_network  # noqa: E402

sm = snakemake  # noqa: F821
run_reconstruct_network(
    study_from_dict(sm.config, source="config"),
    method=sm.wildcards.method,
    dose=float(sm.params.dose),
    view_name=sm.wildcards.view,
    seed=int(sm.wildcards.seed),
    test_path=sm.input.test,
    view_path=sm.input.view,
    model_path=sm.input.model,
    sidecar_path=sm.input.sidecar,
    input_sentinels=[sm.input.phase_c, sm.input.phase_d, sm.input.bundle_sentinel],
    out_recon=sm.output.recon,
    sentinel_path=sm.output.sentinel,
)
