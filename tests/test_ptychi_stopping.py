"""The PtyChi arm's free-pixel stopping rule (:mod:`ptycho_core.recon.ptychi`, ``stopping`` in the configuration).

A small low-dose cell (N = 32, 240 test patterns, 1e3 photons per pattern,
Poisson noise model, the default rule: 5 % free pixels, a check every 2
epochs, patience 10 epochs) is simulated once.
:func:`ptycho_core.recon.ptychi.reconstruct_ptychi` runs in ``.venv-ptychi``
(torch + pty-chi), every run of this module in one subprocess that runs
:func:`_driver` and writes the objects and records to a directory; the
assertions run here, in the main environment:

- the free pixels are out of the fit: the cell with garbage counts on its
  free pixels reconstructs the same object (2 epochs, one check at the end,
  both noise models; identical to the bit), while garbage on as many fitted
  pixels changes it (the test can fail). Before pty-chi's object
  preconditioner was initialised from the fitted pixels only, the garbage
  changed the object by 2e-5 to 4e-5 of its maximum;
- the rule stops before the cap (300 epochs) at low dose, exactly
  ``ceil(patience / check_every)`` checks after the best one, and records
  converged; with a cap of 3 epochs and a large patience the cap comes
  first and is recorded as not converged;
- the returned object is the best check's: its free deviance, recomputed
  here with our forward model, is the recorded best, and a run of exactly
  ``best_epoch`` epochs gives the same object; with probe refinement, the
  best check's probe is the one that gives the recorded best;
- the step's checks can fail: fed (in this process, the reconstruction
  replaced by a recorded one) an object that is not the best check's, it
  fails saying so; a record whose best never improved on the object of ones
  LSQML starts from, or a best at the first check, passes with a warning.

pty-chi runs on one torch thread here: with two on a 2-core machine that
another job keeps busy, torch's OpenMP threads wait on each other and an
epoch took 3-9 s instead of 0.3 s. Run time on a 2-core CPU: about 28 s
(load 3 from other jobs): simulation 4 s, torch start-up, 10
reconstructions of 2-18 epochs (the stopping one: 18 epochs, LSQML 2.6 s,
free-deviance checks 1.2 s).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from cells import simulate_cell

from ptycho_core import layout
from ptycho_core.config import StoppingConfig, study_from_dict
from ptycho_core.io.datasets import load_diffraction_set
from ptycho_core.io.reconstruction import load_recon
from ptycho_core.io.sentinel import verify_sentinel
from ptycho_core.io.view_index import load_view
from ptycho_core.recon.ptychi import object_deviances
from ptycho_core.sampling.free_pixels import free_pixel_mask
from ptycho_core.steps import reconstruct_ptychi as step_module
from ptycho_core.steps.skeleton import ArtifactCheckError

ROOT = Path(__file__).resolve().parents[1]
PTYCHI_PYTHON = ROOT / ".venv-ptychi" / "bin" / "python"

DOSE = 1.0e3
SEED = 0
STUDY = {
    "name": "ptychi-stopping",
    "N": 32,
    "doses": [DOSE],
    "seeds": [SEED],
    "object": {
        "family": "grf",
        "size": 72,
        "seed": 3,
        "feature_size": 4.0,
        "amplitude_contrast": 0.3,
        "phase_max": 1.5,
    },
    "probe": {"kind": "focused", "pupil_diameter": 10.0, "defocus_waves": 0.3, "apodisation": 4.0},
    "scan": {"pattern": "raster", "step_fraction": 0.25, "jitter": 0.1},
    "split": {"axis": "x", "test_fraction": 0.5, "guard_diameters": 1.0},
    "views": {"dense": {"stride": 1}},
    "ptychi": {"epochs": 300, "batch_size": 40, "probe_refinement": False, "noise_model": "poisson"},
    "stopping": {"free_pixel_fraction": 0.05, "standard_errors": 2.0, "patience": 10, "check_every": 2},
}
#: Epochs of the garbage runs (one check, at the end: the returned object is the one after these epochs).
MASK_EPOCHS = 2
#: Cap of the run that must reach it first.
SHORT_CAP = 3


# --------------------------------------------------------------------------
# The driver (runs in .venv-ptychi)
# --------------------------------------------------------------------------


def _garbage(test, pixels: np.ndarray, seed: int):
    """``test`` with random counts (0 to 20 times the brightest pixel) on ``pixels`` (N, N) of every pattern."""
    counts = test.counts()
    rng = np.random.default_rng(seed)
    counts[:, pixels] = rng.integers(0, int(20 * counts.max()) + 1, size=counts[:, pixels].shape)
    return replace(test, diffraction=np.sqrt(counts).astype(test.diffraction.dtype))


def _driver(spec_path: str) -> None:
    """Run the reconstructions named in the spec (JSON) and write ``NAME.npz`` (object, covered) and ``NAME.json``
    (the info, arrays left out) for each into the spec's ``out`` directory."""
    from ptycho_core.recon.ptychi import reconstruct_ptychi

    spec = json.loads(Path(spec_path).read_text())
    study = study_from_dict(json.loads(Path(spec["study"]).read_text()))
    test = load_diffraction_set(spec["test"])
    rows = load_view(spec["view"], n_test=test.n).test_index
    out = Path(spec["out"])
    free = free_pixel_mask(test.N, study.stopping.free_pixel_fraction, SEED)
    done: dict = {}
    for run in spec["runs"]:
        if "replay_of" in run:  # exactly the best epochs of an earlier run, one check at the end
            best_epoch = done[run["replay_of"]]["best_epoch"]
            run = {**run, "epochs": best_epoch, "stopping": {"check_every": best_epoch, "patience": 1000}}
        data = test
        if run.get("garbage") == "free":
            data = _garbage(test, free, 1)
        elif run.get("garbage") == "fitted":  # as many pixels, all fitted
            data = _garbage(test, np.roll(free, 1, axis=1) & ~free, 1)
        cfg = replace(
            study.ptychi,
            epochs=run["epochs"],
            noise_model=run.get("noise_model", study.ptychi.noise_model),
            probe_refinement=run.get("probe_refinement", False),
        )
        stopping = replace(study.stopping, **run.get("stopping", {}))
        obj, covered, info = reconstruct_ptychi(
            data, rows, study.frame_shape, cfg, SEED, threads=1, stopping=stopping, free_pixel_seed=SEED
        )
        np.savez(out / f"{run['name']}.npz", obj=obj, covered=covered, probe_best=info.pop("probe_best"))
        (out / f"{run['name']}.json").write_text(json.dumps(info))
        done[run["name"]] = info


def _run_driver(d: Path, p: dict, runs: list[dict], out: Path) -> dict:
    out.mkdir(exist_ok=True)
    spec = out / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "study": str(d / "study.json"),
                "test": p["test.npz"],
                "view": p["view.npz"],
                "out": str(out),
                "runs": runs,
            }
        )
    )
    tests = str(ROOT / "tests")
    code = f"import sys; sys.path.insert(0, {tests!r}); import test_ptychi_stopping as t; t._driver(sys.argv[1])"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [str(PTYCHI_PYTHON), "-c", code, str(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert result.returncode == 0, f"driver failed ({result.returncode}):\n{result.stderr[-6000:]}"
    results = {}
    for run in runs:
        arrays = np.load(out / f"{run['name']}.npz")
        info = json.loads((out / f"{run['name']}.json").read_text())
        results[run["name"]] = {**{k: arrays[k] for k in ("obj", "covered", "probe_best")}, "info": info}
    return results


# --------------------------------------------------------------------------
# Fixtures (main environment)
# --------------------------------------------------------------------------


def _require_ptychi_venv() -> None:
    if not PTYCHI_PYTHON.exists():
        pytest.fail(
            f"{PTYCHI_PYTHON.relative_to(ROOT)} is missing: the PtyChi arm runs in its own environment; "
            "run `make venv` (it builds .venv and .venv-ptychi)"
        )


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    d = tmp_path_factory.mktemp("ptychi_stopping")
    study = study_from_dict(STUDY)
    p = simulate_cell(study, d, dose=DOSE, seed=SEED, view="dense")
    (d / "study.json").write_text(json.dumps(study.to_dict()))
    test = load_diffraction_set(p["test.npz"])
    rows = load_view(p["view.npz"], n_test=test.n).test_index
    return d, study, p, test, rows


@pytest.fixture(scope="module")
def runs(simulated):
    """Every reconstruction of this module, in one pty-chi process (torch starts once)."""
    _require_ptychi_venv()
    d, study, p, _, _ = simulated
    one_check = {"check_every": MASK_EPOCHS, "patience": 1000}
    mask_runs = [
        {
            "name": f"{model}_{garbage}",
            "epochs": MASK_EPOCHS,
            "noise_model": model,
            "garbage": garbage,
            "stopping": one_check,
        }
        for model, garbages in (("poisson", ("none", "free", "fitted")), ("gaussian", ("none", "free")))
        for garbage in garbages
    ]
    stop_runs = [
        {"name": "stop", "epochs": study.ptychi.epochs},
        # the same run, stopped at the best check's epoch (one check there): its object must be the returned one
        {"name": "replay", "replay_of": "stop"},
        {"name": "short", "epochs": SHORT_CAP, "stopping": {"patience": 1000}},
        {"name": "probe", "epochs": SHORT_CAP, "probe_refinement": True, "stopping": {"patience": 1000}},
    ]
    return _run_driver(d, p, mask_runs + stop_runs, d / "runs")


@pytest.fixture(scope="module")
def mask_runs(runs):
    return runs


@pytest.fixture(scope="module")
def stop_runs(runs):
    return runs


def _relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(a).max())


# --------------------------------------------------------------------------
# The mask handed to pty-chi
# --------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["poisson", "gaussian"])
def test_garbage_on_the_free_pixels_does_not_change_the_object(mask_runs, model):
    true, garbage = mask_runs[f"{model}_none"], mask_runs[f"{model}_free"]
    for run in (true, garbage):
        assert run["info"]["epochs_run"] == MASK_EPOCHS and len(run["info"]["free_deviance_history"]) == 1
        mask_check = run["info"]["pixel_mask_check"]
        assert mask_check["mask_is_not_free"] and mask_check["noise_model_mask_equal"]
        assert mask_check["patterns_are_counts"] and mask_check["held_out_counts"] == mask_check["free_pixel_counts"]
    diff = _relative_difference(true["obj"], garbage["obj"])
    print(f"{model}: max |object difference| / max |object| = {diff:.3g} with garbage on the free pixels")
    assert diff <= 1e-6
    # the free deviance sees the garbage (it is computed on the free pixels), the fit does not
    assert garbage["info"]["free_deviance_best"] > 10 * true["info"]["free_deviance_best"]


def test_garbage_on_fitted_pixels_changes_the_object(mask_runs):
    """The control: the same amount of garbage on fitted pixels does change the reconstruction."""
    diff = _relative_difference(mask_runs["poisson_none"]["obj"], mask_runs["poisson_fitted"]["obj"])
    print(f"max |object difference| / max |object| = {diff:.3g} with garbage on fitted pixels")
    assert diff > 1e-2


# --------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------


def test_rule_stops_before_the_cap_at_low_dose(stop_runs, simulated):
    _, study, _, _, _ = simulated
    stopping = study.stopping
    info = stop_runs["stop"]["info"]
    history = info["free_deviance_history"]
    patience_checks = math.ceil(stopping.patience / stopping.check_every)
    print(
        f"epochs run {info['epochs_run']} of {study.ptychi.epochs}, best epoch {info['best_epoch']}, free deviance "
        f"{info['free_deviance_initial']:.5g} (ones) -> {info['free_deviance_first']:.5g} (first check) -> "
        f"{info['free_deviance_best']:.5g} (best); LSQML {info['lsqml_seconds']:.1f} s, "
        f"checks {info['free_deviance_seconds']:.1f} s"
    )
    assert info["converged"] is True and info["stopped_by_free_deviance"] is True
    assert info["epochs_run"] < study.ptychi.epochs
    every = stopping.check_every
    assert [h["epoch"] for h in history] == list(range(every, info["epochs_run"] + 1, every))
    # stopped exactly `patience` epochs (in checks) after the reference (the last check that improved), none of
    # which beat it by more than its noise (the paired per-pattern standard errors)
    assert info["epochs_run"] == info["reference_epoch"] + patience_checks * stopping.check_every
    reference, best, z = info["free_deviance_reference"], info["free_deviance_best"], stopping.standard_errors
    later = [h for h in history if h["epoch"] > info["reference_epoch"]]
    assert len(later) == patience_checks
    for h in later:
        assert h["free_gain"] == pytest.approx(reference - h["free_deviance"], rel=1e-9, abs=1e-12)
        assert h["free_gain"] <= z * h["free_gain_se"] and not h["improved"]
    # kept: the latest check not worse than the reference by more than the noise (the reference itself at least)
    kept = [
        h
        for h in history
        if h["epoch"] == info["reference_epoch"] or (h in later and h["free_gain"] >= -z * h["free_gain_se"])
    ]
    assert [h["kept"] for h in history if h["epoch"] >= info["reference_epoch"]] == [
        h in kept for h in history if h["epoch"] >= info["reference_epoch"]
    ]
    assert info["best_epoch"] == kept[-1]["epoch"] and best == kept[-1]["free_deviance"]
    # the first check always improves on the object of ones; here (1e3 photons, 240 patterns) the later checks
    # gain 1.8-1.9 standard errors on it (measured): within the noise, so the first check's object is kept
    assert reference <= info["free_deviance_first"] < info["free_deviance_initial"]
    record = info["stopping"]
    assert record["n_free_pixels"] == round(stopping.free_pixel_fraction * study.N**2)
    assert record["free_pixel_fraction"] == stopping.free_pixel_fraction
    assert record["patience_checks"] == patience_checks


def test_returned_object_is_the_best_checks(stop_runs, simulated):
    _, _, _, test, rows = simulated
    stop, replay = stop_runs["stop"], stop_runs["replay"]
    info = stop["info"]
    free = free_pixel_mask(test.N, info["stopping"]["free_pixel_fraction"], SEED)
    recomputed, _ = object_deviances(
        stop["obj"], test.probe, test.xcoords[rows], test.ycoords[rows], test.counts()[rows], free
    )
    assert abs(recomputed - info["free_deviance_best"]) <= 1e-9 * info["free_deviance_best"]
    # its free deviance is that of one check only: every other check's object is another one
    assert sum(h["free_deviance"] == info["free_deviance_best"] for h in info["free_deviance_history"]) == 1
    # the run of exactly best_epoch epochs ends on the returned object
    assert replay["info"]["epochs_run"] == info["best_epoch"]
    assert replay["info"]["free_deviance_best"] == pytest.approx(info["free_deviance_best"], rel=1e-12)
    assert _relative_difference(replay["obj"], stop["obj"]) <= 1e-6
    assert np.array_equal(replay["covered"], stop["covered"])
    assert np.all(stop["obj"][~stop["covered"]] == 0)


def test_reaching_the_cap_first_is_not_converged(stop_runs, simulated):
    _, study, _, _, _ = simulated
    info = stop_runs["short"]["info"]
    assert info["converged"] is False and info["stopped_by_free_deviance"] is False
    assert info["epochs_run"] == SHORT_CAP
    # checks every check_every epochs, and at the cap
    assert [h["epoch"] for h in info["free_deviance_history"]] == [study.stopping.check_every, SHORT_CAP]
    assert info["best_epoch"] in (study.stopping.check_every, SHORT_CAP)


def test_with_probe_refinement_the_best_checks_probe_is_kept(stop_runs, simulated):
    """The refined probe is an iterate too: the deviance of the returned object is the best one with that probe."""
    _, _, _, test, rows = simulated
    run = stop_runs["probe"]
    info = run["info"]
    assert info["ptychi_options"]["probe_optimizable"] is True and info["probe_max_relative_change"] > 0
    assert run["probe_best"].shape == test.probe.shape and not np.allclose(run["probe_best"], test.probe)
    free = free_pixel_mask(test.N, info["stopping"]["free_pixel_fraction"], SEED)
    args = (test.xcoords[rows], test.ycoords[rows], test.counts()[rows], free)
    with_best, _ = object_deviances(run["obj"], run["probe_best"], *args)
    assert abs(with_best - info["free_deviance_best"]) <= 1e-9 * info["free_deviance_best"]
    with_known, _ = object_deviances(run["obj"], test.probe, *args)
    assert with_known != with_best


# --------------------------------------------------------------------------
# The step's checks (in this process: the reconstruction replaced by a recorded one)
# --------------------------------------------------------------------------


def _step_with(monkeypatch, simulated, out_root: Path, obj: np.ndarray, covered: np.ndarray, info: dict) -> dict:
    d, study, p, test, _ = simulated

    def recorded(*args, stopping: StoppingConfig, free_pixel_seed: int | None = None, **kwargs):
        assert stopping == study.stopping and free_pixel_seed == SEED
        return obj.copy(), covered.copy(), {**info, "probe_best": test.probe}

    monkeypatch.setattr(step_module, "reconstruct_ptychi", recorded)
    cell = p["cell"].with_method("PtyChi")
    out = layout.reconstruction(cell).under(out_root)
    checks = step_module.run_reconstruct_ptychi(
        study, cell=cell, simulated=layout.simulated(cell).under(d), view=layout.view(cell).under(d), out=out
    )
    return {"checks": checks, "out": out}


def test_step_records_the_rule_and_verifies_the_saved_object(monkeypatch, stop_runs, simulated, tmp_path):
    stop = stop_runs["stop"]
    run = _step_with(monkeypatch, simulated, tmp_path, stop["obj"], stop["covered"], stop["info"])
    checks, info = run["checks"], stop["info"]
    assert checks["stopped_by_free_deviance"] is True and checks["best_epoch"] == info["best_epoch"]
    assert checks["improved_after_first_check"] is (info["reference_epoch"] > simulated[1].stopping.check_every)
    assert checks["epochs_run"] == info["epochs_run"] and checks["free_deviance_best"] == info["free_deviance_best"]
    assert (
        abs(checks["free_deviance_of_saved_object"] - info["free_deviance_best"]) <= 1e-6 * info["free_deviance_best"]
    )
    record = verify_sentinel(run["out"].sentinel)
    assert record["checks"]["best_epoch"] == info["best_epoch"]
    assert record["extra"]["free_deviance_history"] == info["free_deviance_history"]
    meta = load_recon(run["out"].recon).metadata
    assert meta["epochs_run"] == info["epochs_run"] and meta["stopping"] == info["stopping"]
    assert meta["free_deviance_history"] == info["free_deviance_history"]


def test_step_fails_when_the_saved_object_is_not_the_best_checks(monkeypatch, stop_runs, simulated, tmp_path):
    stop = stop_runs["stop"]
    other = stop["obj"] * 1.02  # another object
    with pytest.raises(ArtifactCheckError, match="saved object is the best check's"):
        _step_with(monkeypatch, simulated, tmp_path, other, stop["covered"], stop["info"])


def test_step_records_a_free_deviance_that_never_beat_the_start(monkeypatch, stop_runs, simulated, tmp_path, caplog):
    """At 3 photons per pattern the free pixels cannot tell a reconstruction from the flat start: the best check's
    object is kept and the sentinel says so (a failed job would drop the cell from the study)."""
    stop = stop_runs["stop"]
    info = json.loads(json.dumps(stop["info"]))
    # the record of a run none of whose checks beat the object of ones it started from
    info["free_deviance_initial"] = info["free_deviance_best"] * 0.99
    checks = _step_with(monkeypatch, simulated, tmp_path, stop["obj"], stop["covered"], info)["checks"]
    assert checks["improved_over_start"] is False
    assert "never fell below the starting object's" in caplog.text


def test_step_accepts_a_best_first_check(monkeypatch, stop_runs, simulated, tmp_path, caplog):
    """Where no later check beats the first beyond the free pixels' noise, the first check's object is kept."""
    stop = stop_runs["stop"]
    info = json.loads(json.dumps(stop["info"]))
    best = info["free_deviance_best"]
    info["free_deviance_history"] = [
        {**h, "free_deviance": best if i == 0 else best * 1.01} for i, h in enumerate(info["free_deviance_history"])
    ]
    info["free_deviance_first"], info["best_epoch"] = best, info["free_deviance_history"][0]["epoch"]
    info["reference_epoch"] = info["best_epoch"]
    with caplog.at_level("WARNING"):
        run = _step_with(monkeypatch, simulated, tmp_path, stop["obj"], stop["covered"], info)
    assert run["checks"]["improved_after_first_check"] is False
    assert "no later check improved on the first one" in caplog.text
