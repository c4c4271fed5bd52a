"""Simulation and one view of one study cell, through the workflow's own steps, for the tests that need real data."""

from __future__ import annotations

from pathlib import Path

from ptycho_core import layout
from ptycho_core.config import StudyConfig, dose_label
from ptycho_core.steps.simulate import run_ground_truth, run_simulate
from ptycho_core.steps.views import run_view

#: Keys of the returned paths: ground truth, the two splits, the view, and their sentinels and figures.
CELL_FILES = (
    "gt.npz",
    "gt.json",
    "train.npz",
    "test.npz",
    "preview.png",
    "c.json",
    "view.npz",
    "m.json",
    "v.png",
    "d.json",
)


def simulate_cell(
    study: StudyConfig,
    d: Path,
    *,
    dose: float,
    seed: int,
    view: str,
    as_str: bool = True,
    training_object: layout.GroundTruthFiles | None = None,
) -> dict:
    """Ground truth, simulation of one dose x seed and one view of it, written in the study directory ``d``
    at their places in :mod:`ptycho_core.layout`; returns ``{key: path}`` for the keys :data:`CELL_FILES`,
    plus ``"cell"`` (the :class:`~ptycho_core.layout.Cell`) and ``"files"`` (the layout's file groups below ``d``).

    Sentinels: ``gt.json`` (ground truth), ``c.json`` (simulation), ``d.json`` (view). ``training_object``:
    the separate training object, already written, when the study has one (written here when not given).
    """
    cell = layout.Cell(dose_label(dose), seed, view)
    gt, sim, v = layout.ground_truth(seed).under(d), layout.simulated(cell).under(d), layout.view(cell).under(d)
    run_ground_truth(study, cell=layout.Cell.replicate(seed), out=gt)
    if study.object.separate_training and training_object is None:
        training_object = layout.ground_truth(seed, training=True).under(d)
        run_ground_truth(study, cell=layout.Cell.replicate(seed), out=training_object, training=True)
    run_simulate(study, cell=cell, ground_truth=gt, out=sim, training_object=training_object)
    run_view(study, cell=cell, simulated=sim, out=v)
    paths = (
        gt.obj,
        gt.sentinel,
        sim.train,
        sim.test,
        sim.preview,
        sim.sentinel,
        v.view,
        v.overlap,
        v.figure,
        v.sentinel,
    )
    p = {k: (str(path) if as_str else Path(path)) for k, path in zip(CELL_FILES, paths, strict=True)}
    return {**p, "cell": cell, "files": {"ground_truth": gt, "simulated": sim, "view": v}}
