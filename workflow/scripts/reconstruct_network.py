"""Adapter of rule reconstruct_network: reconstruct a cell's test region with every network bundle
(see ptycho_core.steps.reconstruct_network)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core import layout  # noqa: E402
from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.reconstruct_network import run_reconstruct_network  # noqa: E402

sm = snakemake  # noqa: F821
cell = layout.Cell.from_wildcards(sm.wildcards)
run_reconstruct_network(
    study_from_dict(sm.config, source="config"),
    cell=cell,
    simulated=layout.simulated(cell),
    view=layout.view(cell),
    bundles=layout.network_bundles(cell),
    out=layout.network_reconstructions(cell),
)
