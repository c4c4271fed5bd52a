"""Phases C and D of one study cell, through the workflow's own steps, for the tests that need real data."""

from __future__ import annotations

from pathlib import Path

from ptycho_core.config import StudyConfig
from ptycho_core.steps.simulate import run_ground_truth, run_simulate
from ptycho_core.steps.views import run_view

#: Keys of the returned paths: ground truth, the two splits, the view, and their sentinels and figures.
CELL_FILES = ("gt.npz", "gt.json", "train.npz", "test.npz", "preview.png", "c.json", "view.npz", "m.json", "v.png", "d.json")


def simulate_cell(study: StudyConfig, d: Path, *, dose: float, seed: int, view: str, as_str: bool = True) -> dict:
    """Ground truth, simulation of one dose x seed and one view of it, written in ``d``; returns ``{key: path}``.

    Sentinels: ``gt.json`` (ground truth), ``c.json`` (simulation), ``d.json`` (view).
    """
    p = {k: (str(d / k) if as_str else d / k) for k in CELL_FILES}
    run_ground_truth(study, out_path=p["gt.npz"], sentinel_path=p["gt.json"])
    run_simulate(
        study, dose=dose, seed=seed, ground_truth=p["gt.npz"], ground_truth_sentinel=p["gt.json"],
        out_train=p["train.npz"], out_test=p["test.npz"], out_preview=p["preview.png"], sentinel_path=p["c.json"],
    )
    run_view(
        study, view_name=view, dose=dose, seed=seed, train_path=p["train.npz"], test_path=p["test.npz"],
        phase_c_sentinel=p["c.json"], out_view=p["view.npz"], out_metrics=p["m.json"], out_figure=p["v.png"],
        sentinel_path=p["d.json"],
    )
    return p
