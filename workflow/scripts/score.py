"""Adapter of rule score: score every method of one cell (see ptycho_core.steps.score)."""

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core import layout  # noqa: E402
from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.score import run_score  # noqa: E402

sm = snakemake  # noqa: F821
cell = layout.Cell.from_wildcards(sm.wildcards)
study = study_from_dict(sm.config, source="config")
run_score(
    study,
    cell=cell,
    ground_truth=layout.ground_truth(cell.seed),
    simulated=layout.simulated(cell),
    view=layout.view(cell),
    region_views=layout.region_views(study, cell),
    reconstructions=layout.reconstructions(cell),
    out=layout.ScoreFiles(**dict(sm.output.items())),
)
