"""The PtyChi arm: conventions at the pty-chi boundary, and a high-dose reconstruction end to end.

pty-chi (torch) lives in its own environment, ``.venv-ptychi``; this test
runs in the main one (no torch). The pure-numpy conventions of
:mod:`ptycho_core.recon.ptychi` are tested here directly; the reconstruction
runs the workflow's command-line program with ``.venv-ptychi/bin/python`` in
a subprocess, as the Snakemake rule does, and the result is scored here
against the ground truth:

- the reconstruction is registered to the ground truth (``|shift| < 0.1 px``,
  stricter than the 0.5 px a convention error shows as: a position
  convention off by half a pixel gives exactly 0.5 px here);
- phase correlation >= 0.9 inside the covered region minus a 2 px border,
  after removing the global phase offset;
- mean amplitude within 10 % of the truth, raw (the probe in sqrt(photons)
  fixes the scale);
- the sentinel verifies and records every pattern of the view, and the
  free-pixel stopping rule (``stopping``, defaults: 5 % free pixels, checked
  every 2 epochs, patience 10): epochs run within the cap of 30, the best
  epoch, and the saved object's free deviance equal to the recorded best.
  ``tests/test_ptychi_stopping.py`` tests the rule itself.

Run time on a 2-core CPU: about 11 s when the machine was otherwise idle
before the stopping rule (30 LSQML epochs on 576 patterns took 2.6 s;
starting the torch process and pty-chi about 5 s). The rule now stops at
epoch 26 (best 16) and adds 13 free-deviance checks of 0.2-0.3 s each: 34 s
with a load of 3 from other jobs. The program runs on one torch thread: two
wait on each other while another job holds one of the two cores (63 s, in
the same conditions).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cells import simulate_cell
from scipy.ndimage import binary_erosion

from ptycho_core import layout
from ptycho_core.config import study_from_dict
from ptycho_core.evaluate.metrics import register_translation, remove_global_phase
from ptycho_core.io.datasets import load_diffraction_set, load_ground_truth
from ptycho_core.io.reconstruction import load_recon
from ptycho_core.io.sentinel import verify_sentinel
from ptycho_core.io.view_index import load_view
from ptycho_core.physics.forward import expected_counts, extract_patches
from ptycho_core.recon import ptychi as arm

ROOT = Path(__file__).resolve().parents[1]
PTYCHI_PYTHON = ROOT / ".venv-ptychi" / "bin" / "python"

DOSE = 1.0e6
STUDY = {
    "name": "ptychi-correctness",
    "N": 32,
    "doses": [DOSE],
    "seeds": [0],
    "object": {
        "family": "grf",
        "size": 88,
        "seed": 3,
        "feature_size": 4.0,
        "amplitude_contrast": 0.3,
        "phase_max": 1.5,
    },
    "probe": {"kind": "focused", "pupil_diameter": 10.0, "defocus_waves": 0.3, "apodisation": 4.0},
    "scan": {"pattern": "raster", "step_fraction": 0.25, "jitter": 0.1},
    "split": {"axis": "x", "test_fraction": 0.5, "guard_diameters": 1.0},
    "views": {"dense": {"stride": 1}},
    "ptychi": {"epochs": 30, "batch_size": 40, "probe_refinement": False, "noise_model": "gaussian"},
}


# --------------------------------------------------------------------------
# Conventions (pure numpy)
# --------------------------------------------------------------------------


def test_module_imports_without_torch():
    code = "import sys, ptycho_core.recon.ptychi; print(sorted(m for m in ('torch', 'ptychi') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_position_conversion_matches_our_patch_convention():
    """pty-chi's patch at the converted position samples exactly the object pixels ours does."""
    rng = np.random.default_rng(0)
    N = 32
    x = rng.uniform(30.0, 70.0, 50)
    y = rng.uniform(25.0, 60.0, 50)
    buf = arm.object_buffer(x, y, N)
    assert buf.height % 2 == 0 and buf.width % 2 == 0
    # every patch (with pty-chi's one-pixel shift pad) lies inside the buffer
    assert buf.row0 <= np.floor(y.min()) - N // 2 - 1 and buf.row0 + buf.height - 1 >= np.ceil(y.max()) + N // 2 + 1
    assert buf.col0 <= np.floor(x.min()) - N // 2 - 1 and buf.col0 + buf.width - 1 >= np.ceil(x.max()) + N // 2 + 1

    pos_y, pos_x = arm.to_ptychi_positions(x, y, buf)
    # pty-chi's sample coordinates (buffer pixels) -> our object pixels
    rows = arm.ptychi_patch_rows(pos_y, N, buf.height) + buf.row0
    cols = arm.ptychi_patch_rows(pos_x, N, buf.width) + buf.col0
    # ours (ptycho_core.physics.forward): pixel [i, j] of the patch at (x, y) samples
    # (Y, X) = (y - N/2 + i, x - N/2 + j)
    np.testing.assert_allclose(rows, y[:, None] - N / 2 + np.arange(N)[None, :], atol=1e-12)
    np.testing.assert_allclose(cols, x[:, None] - N / 2 + np.arange(N)[None, :], atol=1e-12)
    # relative to the buffer centre: pos = y - row0 - round(H_buffer / 2)
    np.testing.assert_allclose(pos_y, y - buf.row0 - np.round(buf.height / 2), atol=1e-12)
    np.testing.assert_allclose(pos_x, x - buf.col0 - np.round(buf.width / 2), atol=1e-12)

    x_back, y_back = arm.from_ptychi_positions(pos_y, pos_x, buf)
    np.testing.assert_allclose(x_back, x, atol=1e-12)
    np.testing.assert_allclose(y_back, y, atol=1e-12)


def test_integer_positions_sample_the_same_pixels_as_forward_extract_patches():
    """On whole-pixel positions the pty-chi index formula reproduces forward.extract_patches exactly."""
    rng = np.random.default_rng(1)
    N = 16
    obj = rng.normal(size=(60, 70)) + 1j * rng.normal(size=(60, 70))
    x = rng.integers(20, 50, 8).astype(float)
    y = rng.integers(20, 40, 8).astype(float)
    buf = arm.object_buffer(x, y, N, margin=1)
    assert (
        buf.row0 >= 0
        and buf.col0 >= 0
        and buf.row0 + buf.height <= obj.shape[0]
        and buf.col0 + buf.width <= obj.shape[1]
    )
    buffer_obj = obj[buf.row0 : buf.row0 + buf.height, buf.col0 : buf.col0 + buf.width]
    pos_y, pos_x = arm.to_ptychi_positions(x, y, buf)
    r = arm.ptychi_patch_rows(pos_y, N, buf.height).round().astype(int)
    c = arm.ptychi_patch_rows(pos_x, N, buf.width).round().astype(int)
    theirs = buffer_obj[r[:, :, None], c[:, None, :]]
    np.testing.assert_allclose(theirs, extract_patches(obj, x, y, N), rtol=0, atol=1e-12)  # ours Fourier-shifts by 0


def test_probe_scale_reproduces_our_expected_counts_with_an_unnormalised_fft():
    rng = np.random.default_rng(2)
    N = 32
    probe = (rng.normal(size=(N, N)) + 1j * rng.normal(size=(N, N))).astype(np.complex64)
    patch = np.exp(1j * rng.normal(size=(N, N)))
    ours = np.abs(np.fft.fftshift(np.fft.fft2(probe * patch))) ** 2 / N**2
    p = arm.ptychi_probe(probe)
    assert p.shape == (1, 1, N, N) and p.dtype == np.complex64
    theirs = np.abs(np.fft.fft2(p[0, 0] * patch)) ** 2  # pty-chi: no 1/N^2, DC at [0, 0]
    np.testing.assert_allclose(np.fft.fftshift(theirs), ours, rtol=1e-4, atol=1e-6 * ours.max())


def test_buffer_to_frame():
    buf = arm.ObjectBuffer(row0=-3, col0=5, height=10, width=8)
    data = np.arange(80).reshape(10, 8).astype(complex)
    out, inside = arm.buffer_to_frame(data, buf, (20, 10))
    assert out.shape == (20, 10) and inside.sum() == 7 * 5
    assert out[0, 5] == data[3, 0] and out[6, 9] == data[9, 4]
    assert np.all(out[~inside] == 0)


def test_returned_object_and_deviances():
    """The object as returned (pasted, 0 outside covered, complex64-exact) and its deviances, in any chunking."""
    rng = np.random.default_rng(3)
    N, shape = 16, (48, 48)
    buf = arm.ObjectBuffer(row0=4, col0=6, height=40, width=38)
    data = np.exp(0.3j * rng.normal(size=buf.shape)) * (0.5 + 0.5 * rng.random(buf.shape))
    covered = np.zeros(shape, dtype=bool)
    covered[10:40, 12:40] = True
    obj = arm.returned_object(data, buf, shape, covered)
    assert obj.dtype == np.complex128 and np.all(obj[~covered] == 0)
    assert np.array_equal(obj, obj.astype(np.complex64).astype(np.complex128))
    np.testing.assert_allclose(obj[covered], arm.buffer_to_frame(data, buf, shape)[0][covered], rtol=1e-7)

    probe = np.exp(-((np.arange(N) - N / 2) ** 2)[:, None] / 8 - ((np.arange(N) - N / 2) ** 2)[None, :] / 8) * 30
    x, y = rng.uniform(20, 30, 25), rng.uniform(20, 30, 25)
    counts = rng.poisson(expected_counts(probe, extract_patches(obj, x, y, N))).astype(np.float64)
    free = np.zeros((N, N), dtype=bool)
    free[rng.integers(0, N, 12), rng.integers(0, N, 12)] = True
    whole = arm.object_deviances(obj, probe, x, y, counts, free)
    chunked = arm.object_deviances(obj, probe, x, y, counts, free, chunk=7)
    np.testing.assert_allclose(chunked, whole, rtol=1e-12)
    # the truth explains Poisson counts (deviance ~1 a pixel where counts are large), a wrong object does not
    wrong = arm.object_deviances(obj * 0.8, probe, x, y, counts, free)
    assert wrong[0] > whole[0] and wrong[1] > whole[1]


# --------------------------------------------------------------------------
# High-dose reconstruction through the command-line program (.venv-ptychi)
# --------------------------------------------------------------------------


def _require_ptychi_venv() -> None:
    if not PTYCHI_PYTHON.exists():
        pytest.fail(
            f"{PTYCHI_PYTHON.relative_to(ROOT)} is missing: the PtyChi arm runs in its own environment; "
            "run `make venv` (it builds .venv and .venv-ptychi)"
        )


def _cli(study_json, p, root, log):
    """The PtyChi program on ``p``'s cell of the study directory ``root``
    (its inputs and output at their layout places)."""
    cell = p["cell"]
    cmd = [
        str(PTYCHI_PYTHON),
        "-m",
        "ptycho_core.steps.reconstruct_ptychi",
        "--config-json",
        study_json,
        "--dose",
        cell.dose,
        "--view",
        cell.view,
        "--seed",
        str(cell.seed),
        "--method",
        "PtyChi",
        "--root",
        str(root),
        "--log",
        log,
        "--threads",
        "1",  # two threads wait on each other while another job holds one of the two cores (3-9 s an epoch)
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env, check=False)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    d = tmp_path_factory.mktemp("ptychi")
    study = study_from_dict(STUDY)
    p = simulate_cell(study, d, dose=DOSE, seed=0, view="dense")
    study_json = str(d / "study.json")
    Path(study_json).write_text(json.dumps(study.to_dict()))
    return d, study, study_json, p


@pytest.fixture(scope="module")
def reconstructed(simulated):
    """The CLI's reconstruction; None when .venv-ptychi is missing (each test then fails, saying so)."""
    if not PTYCHI_PYTHON.exists():
        return None
    d, study, study_json, p = simulated
    cell = p["cell"].with_method("PtyChi")
    recon, log = layout.reconstruction(cell).under(d), str(d / layout.log("reconstruct_ptychi", cell))
    result = _cli(study_json, p, d, log)
    log_text = Path(log).read_text() if Path(log).exists() else ""
    assert result.returncode == 0, (
        f"reconstruct_ptychi failed ({result.returncode}):\n{result.stderr}\n{log_text[-4000:]}"
    )
    return d, study, p, recon.recon, recon.sentinel


def test_high_dose_reconstruction_matches_the_ground_truth(reconstructed):
    _require_ptychi_venv()
    _, _, p, out, _ = reconstructed
    gt = load_ground_truth(p["gt.npz"]).obj.astype(np.complex128)
    test = load_diffraction_set(p["test.npz"])
    view = load_view(p["view.npz"], n_test=test.n)
    rec = load_recon(out, shape=gt.shape)
    obj = rec.obj.astype(np.complex128)
    assert rec.metadata["method"] == "PtyChi" and rec.metadata["n_patterns"] == view.test_index.size
    assert np.all(obj[~rec.covered] == 0)

    # registration on the rectangle spanned by the scan positions (inside the covered region)
    xs, ys = test.xcoords[view.test_index], test.ycoords[view.test_index]
    box = (
        slice(int(np.ceil(ys.min())), int(np.floor(ys.max())) + 1),
        slice(int(np.ceil(xs.min())), int(np.floor(xs.max())) + 1),
    )
    assert rec.covered[box].all()
    dy, dx = register_translation(gt[box], obj[box])

    mask = binary_erosion(rec.covered, iterations=2)
    aligned, _ = remove_global_phase(gt, obj, mask)
    r_phase = float(np.corrcoef(np.angle(aligned[mask]), np.angle(gt[mask]))[0, 1])
    amp_ratio = float(np.abs(obj[mask]).mean() / np.abs(gt[mask]).mean())
    print(
        f"shift ({dy:.3f}, {dx:.3f}) px, phase r = {r_phase:.4f}, "
        f"amplitude ratio = {amp_ratio:.4f}, {mask.sum()} px scored"
    )
    assert np.hypot(dy, dx) < 0.1
    assert r_phase >= 0.9
    assert abs(amp_ratio - 1.0) <= 0.10


def test_sentinel_verifies_and_records_the_run(reconstructed):
    _require_ptychi_venv()
    _, study, p, _, sentinel = reconstructed
    record = verify_sentinel(sentinel)
    test = load_diffraction_set(p["test.npz"])
    view = load_view(p["view.npz"], n_test=test.n)
    checks = record["checks"]
    assert record["step"] == "reconstruct_ptychi"
    assert checks["n_patterns"] == checks["n_patterns_held_by_ptychi"] == view.test_index.size
    assert checks["epoch_cap"] == study.ptychi.epochs
    assert 0 < checks["best_epoch"] <= checks["epochs_run"] <= study.ptychi.epochs
    # stopped by the rule, or ran to the cap
    assert checks["stopped_by_free_deviance"] == checks["converged"]
    assert checks["converged"] or checks["epochs_run"] == study.ptychi.epochs
    assert checks["n_free_pixels"] == round(study.stopping.free_pixel_fraction * study.N**2)
    best = checks["free_deviance_best"]
    assert abs(checks["free_deviance_of_saved_object"] - best) <= 1e-6 * best
    assert best < checks["free_deviance_first"] < checks["free_deviance_initial"]
    assert checks["improved_after_first_check"] is True
    history = record["extra"]["free_deviance_history"]
    assert history[0]["epoch"] == study.stopping.check_every and history[-1]["epoch"] == checks["epochs_run"]
    print(
        f"epochs run {checks['epochs_run']} (cap {study.ptychi.epochs}), best epoch {checks['best_epoch']}, "
        f"free deviance {checks['free_deviance_first']:.5g} (first check) -> {best:.5g} (best)"
    )
    assert checks["reconstruction_seconds"] > 0 and checks["seconds_per_epoch"] > 0
    assert checks["final_loss"] < checks["initial_loss"]
    assert checks["probe_max_relative_change"] == 0.0
    assert checks["forward_model_max_relative_difference_integer_positions"] < 1e-4
    assert record["config_hash"] == study.config_hash()
    assert "torch" in record["library_versions"]
    assert record["extra"]["ptychi_version"] == "2.2.0"


def test_cli_refuses_inputs_that_changed_after_their_sentinel(simulated, tmp_path):
    _require_ptychi_venv()
    d, _, study_json, p = simulated
    copy = tmp_path / "study"  # the study directory without any reconstruction or log of an earlier test
    shutil.copytree(d, copy, ignore=shutil.ignore_patterns("reconstruct", layout.LOGS))
    tampered = Path(layout.simulated(p["cell"]).under(copy).sentinel)
    sentinel = json.loads(tampered.read_text())
    for entry in sentinel["outputs"]:
        entry["sha256"] = "0" * 64  # as if test.npz had changed since the simulate step checked it
    tampered.write_text(json.dumps(sentinel))
    out, log = Path(layout.reconstruction(p["cell"].with_method("PtyChi")).under(copy).recon), tmp_path / "recon.log"
    result = _cli(study_json, p, copy, str(log))
    assert result.returncode != 0
    assert "changed" in log.read_text()
    assert not out.exists()
