"""Correctness of the trained PtychoPINN on a small high-dose case (phases C, D, E end to end).

The network sees measured counts only. Its predicted test patches are
compared with the ground-truth object (never the illuminated P * O) inside
the probe's FWHM disc, where the data constrain the object:

- phase: Pearson correlation >= 0.9 after removing each patch's mean phase
  (a constant phase factor of one diffraction pattern is unobservable:
  |F(P O e^{ic})|^2 = |F(P O)|^2, so it is a gauge, not an error);
- amplitude: the mean predicted amplitude within 10 % of the true mean,
  raw, without any rescaling (the probe in sqrt(photons) fixes the scale).

Run time on a 2-core CPU: about two minutes (training dominates).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from ptycho_core.bundle import load_bundle
from ptycho_core.config import study_from_dict
from ptycho_core.data_contract import load_diffraction_set, load_ground_truth
from ptycho_core.phase_c import run_ground_truth, run_simulate
from ptycho_core.phase_d import run_view
from ptycho_core.phase_e import run_train
from ptycho_core.training import support_patches
from ptycho_core.view_contract import load_view

DOSE = 1.0e6
STUDY = {
    "name": "pinn-correctness",
    "N": 32,
    "doses": [DOSE],
    "seeds": [0],
    "object": {"family": "grf", "size": 80, "seed": 3, "feature_size": 4.0, "amplitude_contrast": 0.3, "phase_max": 1.5},
    "probe": {"kind": "focused", "pupil_diameter": 10.0, "defocus_waves": 0.3, "apodisation": 4.0},
    "scan": {"pattern": "raster", "step_fraction": 0.25, "jitter": 0.1},
    "split": {"axis": "x", "test_fraction": 0.5, "guard_diameters": 1.0},
    "views": {"dense": {"stride": 1}},
    "grouping": {"gridsize": 2, "K": 6, "max_radius_diameters": 1.0, "train_groups_per_position": 2},
    "training": {"filters": [32, 64, 128], "epochs": 60, "batch_size": 16, "learning_rate": 0.001, "early_stopping_patience": 10},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("pinn")
    study = study_from_dict(STUDY)
    p = {k: str(d / k) for k in ("gt.npz", "gt.json", "train.npz", "test.npz", "preview.png", "c.json", "view.npz", "m.json", "v.png", "d.json")}
    run_ground_truth(study, p["gt.npz"], p["gt.json"])
    run_simulate(study, DOSE, 0, p["gt.npz"], p["gt.json"], p["train.npz"], p["test.npz"], p["preview.png"], p["c.json"])
    run_view(study, "dense", DOSE, 0, p["train.npz"], p["test.npz"], p["c.json"], p["view.npz"], p["m.json"], p["v.png"], p["d.json"])
    out = {k: str(d / k) for k in ("model.keras", "bundle.json", "history.csv", "loss.png", "e.json")}
    checks = run_train(
        study, "PtychoPINN", DOSE, "dense", 0, p["train.npz"], p["test.npz"], p["view.npz"], [p["c.json"], p["d.json"]], p["gt.npz"],
        out["model.keras"], out["bundle.json"], out["history.csv"], out["loss.png"], out["e.json"], threads=2,
    )
    return study, p, out, checks


def test_pinn_recovers_phase_and_absolute_amplitude_of_test_patches(trained):
    study, p, out, checks = trained
    test = load_diffraction_set(p["test.npz"])
    view = load_view(p["view.npz"], n_test=test.n)
    gt = load_ground_truth(p["gt.npz"])
    model, side = load_bundle(out["model.keras"], out["bundle.json"], N=test.N, channels=4, probe=test.probe)

    groups = view.test_groups
    amp, phase = (np.asarray(a) for a in model.predict(np.moveaxis(test.diffraction[groups], 1, -1), verbose=0))
    n2 = test.N // 2
    amp = np.moveaxis(amp, -1, 1).reshape(-1, n2, n2)
    phase = np.moveaxis(phase, -1, 1).reshape(-1, n2, n2)
    positions = np.column_stack([test.xcoords, test.ycoords])[groups.ravel()]
    true_amp, true_phase = support_patches(gt.obj, positions, test.N)

    # the probe's FWHM disc around each patch centre (support pixel N/4 sits on the position)
    radius = test.metadata["probe"]["fwhm_diameter_px"] / 2
    yy, xx = np.mgrid[:n2, :n2]
    disc = np.hypot(yy - n2 // 2, xx - n2 // 2) <= radius

    pa, ta = amp[:, disc], true_amp[:, disc]
    pp, tp = phase[:, disc], true_phase[:, disc]
    pp = pp - pp.mean(axis=1, keepdims=True)
    tp = tp - tp.mean(axis=1, keepdims=True)
    r_phase = float(np.corrcoef(pp.ravel(), tp.ravel())[0, 1])
    amp_ratio = float(pa.mean() / ta.mean())
    print(f"phase r = {r_phase:.3f}, mean amplitude ratio = {amp_ratio:.4f}, epochs {checks['epochs_run']}, fit {checks['fit_seconds']:.0f} s")
    assert r_phase >= 0.9
    assert abs(amp_ratio - 1.0) <= 0.10


def test_training_sentinel_records_a_decreasing_finite_loss(trained):
    _, _, _, checks = trained
    assert np.isfinite(checks["final_loss"]) and checks["final_loss"] < checks["initial_loss"]
    assert checks["reload_max_abs_difference"] <= 1e-5
