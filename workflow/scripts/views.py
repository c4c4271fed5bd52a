"""Adapter of rule views: build one overlap view of one dose x seed (see ptycho_core.steps.views)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core import layout  # noqa: E402
from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.views import run_view  # noqa: E402

sm = snakemake  # noqa: F821
cell = layout.Cell.from_wildcards(sm.wildcards)
run_view(
    study_from_dict(sm.config, source="config"),
    cell=cell,
    simulated=layout.simulated(cell),
    out=layout.ViewFiles(**dict(sm.output.items())),
)
