"""Every step verifies the sentinel of every file it reads (issue: a replaced intermediate used without a check).

A valid but different file in place of a checked one (another simulation's
``test.npz``, another object's ``training_object.npz``) is refused before any
work, naming the sentinel and the file and saying what to do next, and the
step writes nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cells import simulate_cell

from ptycho_core import layout
from ptycho_core.config import study_from_dict
from ptycho_core.io.sentinel import SentinelError
from ptycho_core.steps.score import run_score
from ptycho_core.steps.simulate import run_ground_truth
from ptycho_core.steps.train import run_train

DOSE, VIEW, SEED = 1.0e4, "dense", 0
STUDY = {
    "name": "inputs-verified",
    "N": 32,
    "doses": [DOSE],
    "seeds": [SEED],
    "object": {"family": "grf", "size": 96, "seed": 3, "train_seed": 4},
    "probe": {"kind": "focused", "pupil_diameter": 10.0, "defocus_waves": 0.3, "apodisation": 4.0},
    "scan": {"pattern": "raster", "step_fraction": 0.25, "jitter": 0.1},
    "split": {"axis": "x", "test_fraction": 0.5, "guard_diameters": 1.0},
    "views": {VIEW: {"stride": 1}},
}


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    """One simulated cell (study object, its training object and one view) written with paths relative to its
    directory, as the workflow writes them, so that a copy of the directory is a study of its own."""
    d = tmp_path_factory.mktemp("inputs_verified")
    study = study_from_dict(STUDY)
    cwd = os.getcwd()
    os.chdir(d)
    try:
        training = layout.ground_truth(SEED, training=True)
        run_ground_truth(study, cell=layout.Cell.replicate(SEED), out=training, training=True)
        p = simulate_cell(study, Path("."), dose=DOSE, seed=SEED, view=VIEW, training_object=training)
    finally:
        os.chdir(cwd)
    return d, study, p["cell"]


def _nothing_written(files) -> bool:
    return not any(os.path.exists(f) for f in files)


def test_score_refuses_a_replaced_test_split(cell, tmp_path, monkeypatch):
    d, study, c = cell
    shutil.copytree(d, tmp_path / "copy")
    monkeypatch.chdir(tmp_path / "copy")
    sim = layout.simulated(c)
    shutil.copy(sim.train, sim.test)  # a valid diffraction set, but not the one the simulate step checked
    out = layout.scores(c)
    with pytest.raises(SentinelError, match=r"test\.npz' changed .*snakemake -R simulate"):
        run_score(
            study,
            cell=c,
            ground_truth=layout.ground_truth(SEED),
            region_views=layout.region_views(study, c),
            simulated=sim,
            view=layout.view(c),
            reconstructions=layout.reconstructions(c),
            out=out,
        )
    assert _nothing_written(out)


def test_the_baselines_training_refuses_a_replaced_training_object(cell, tmp_path, monkeypatch):
    d, study, c = cell
    shutil.copytree(d, tmp_path / "copy")
    monkeypatch.chdir(tmp_path / "copy")
    training = layout.ground_truth(SEED, training=True)
    shutil.copy(layout.ground_truth(SEED).obj, training.obj)  # the study object in place of the other one
    c = layout.network_cell(c.with_method("Baseline"))  # trained once per dose
    out = layout.bundle(c)
    with pytest.raises(SentinelError, match=r"training_object\.npz' changed .*snakemake -R training_object"):
        run_train(
            study,
            cell=c,
            simulated=layout.simulated(c),
            view=None,
            ground_truth=training,
            out=out,
        )
    assert _nothing_written(out)
