"""Adapter of rule refine: test-time refinement of a trained network of one cell (see ptycho_core.steps.refine)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core import layout  # noqa: E402
from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.refine import run_refine  # noqa: E402

sm = snakemake  # noqa: F821
cell = layout.Cell.from_wildcards(sm.wildcards)
run_refine(
    study_from_dict(sm.config, source="config"),
    cell=cell,
    simulated=layout.simulated(cell),
    view=layout.view(cell),
    source=layout.refined_from(cell),
    out=layout.BundleFiles(**dict(sm.output.items())),
    threads=sm.threads,
)
