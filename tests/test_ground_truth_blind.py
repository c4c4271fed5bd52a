"""No reconstruction sees the ground truth of the test region.

A tiny study (N = 32, filters [8, 16, 32], 3 training epochs, 3 refinement
epochs, 5 pty-chi epochs) is simulated once (simulation and view) with the true
object. A doctored copy of ``ground_truth.npz`` is then written through the
data contract (:func:`ptycho_core.io.datasets.save_ground_truth`, same
metadata, same shape) whose object differs from the true one only in the
columns beyond every training patch: from ``floor(max training x) + N/2 +
SHIFT_MARGIN + 1`` on, i.e. outside the padded crop that
:func:`ptycho_core.physics.forward.extract_patches` reads for any training position
(the N x N window plus the Fourier-shift margin; the Baseline's targets come
from these crops). The test asserts that this set of pixels is disjoint from
every training crop, lies in the test region (beyond the split boundary +
guard/2) and overlaps the evaluation region of ``run_score``.

Every reconstruction step then runs twice, once with the true file and once
with the doctored one, into separate directories: ``run_train`` for
PtychoPINN and the Baseline (only the supervised Baseline is given the
ground truth: its targets at its training positions; PtychoPINN refuses one),
``run_refine`` (from that run's PtychoPINN), ``run_reconstruct_network`` for
PtychoPINN, PtychoPINN_TTR and the Baseline, and the PtyChi arm (the
workflow's command-line program in ``.venv-ptychi``, in a subprocess, as
``tests/test_ptychi_arm.py`` runs it; a missing ``.venv-ptychi`` fails, as
there). The reconstruction steps take no ground truth at all (their frame is
the configuration's), so the doctored file reaches only the Baseline's
training and the scores; it is given a sentinel of its own, as every step
verifies the sentinel of each file group it reads.

Asserted:

- the network reconstructions (``recon.npz``) are byte-identical between the
  two runs;
- PtyChi's reconstruction is identical in its arrays (object and covered
  mask, exactly) and in its metadata except the wall-clock timings it
  records (``reconstruction_seconds``, ``seconds_per_epoch``,
  ``seconds_per_epoch_after_first``), which make byte identity of that file
  impossible by design;
- the trained and refined models have exactly equal weights (loaded, array
  by array) and every HDF5 dataset of ``model.weights.h5`` (the Baseline's
  optimizer state included) is equal. ``model.keras`` is not byte-identical
  between the runs, and the test prints by how much: Keras writes the save
  time into ``metadata.json``, and a compiled model (the Baseline) records
  its optimizer's in-process auto-name (``adam``, ``adam_1``, ... counted
  over the process) in ``config.json`` and in one HDF5 attribute. Those
  entries are set aside; everything else in the archive must be equal;
- the test can fail: the doctored object really differs in the evaluation
  region, and scoring the same reconstruction against it gives different
  metrics.

Training and refinement are deterministic for a fixed seed
(``ptycho_core.nn.backend.configure_backend`` enables TensorFlow's op determinism; every
step seeds Keras and NumPy from the replicate seed), so any difference is a
ground-truth leak, not noise.

The doctored region is tight: replacing from one column earlier (the last
column of the training crops' Fourier-shift margin) already changes the
Baseline's reconstruction, so the test detects a leak of a single column.

Run time: about 2 minutes on a 2-core CPU shared with other jobs (load ~5):
two runs of every step; each pty-chi process takes ~10-20 s, mostly torch
start-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from cells import simulate_cell

from ptycho_core import layout
from ptycho_core.config import study_from_dict
from ptycho_core.evaluate.metrics import mae, remove_global_phase
from ptycho_core.evaluate.region import view_box
from ptycho_core.io.datasets import GroundTruth, load_diffraction_set, load_ground_truth, save_ground_truth
from ptycho_core.io.reconstruction import load_recon
from ptycho_core.io.sentinel import write_sentinel
from ptycho_core.io.view_index import load_view
from ptycho_core.methods import Method
from ptycho_core.physics.forward import patch_bounds
from ptycho_core.physics.objects import make_object
from ptycho_core.steps.reconstruct_network import run_reconstruct_network
from ptycho_core.steps.refine import run_refine
from ptycho_core.steps.train import run_train

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PTYCHI_PYTHON = ROOT / ".venv-ptychi" / "bin" / "python"
DOSE, VIEW, SEED = 1.0e4, "dense", 0
STUDY = {
    "name": "ground-truth-blind",
    "N": 32,
    "doses": [DOSE],
    "seeds": [SEED],
    # 88 px and test_fraction 0.6: the test region reaches 9 columns of the
    # evaluation region beyond every training crop (72 px and 0.5, as in
    # config/test.yaml, leave none)
    "object": {"family": "grf", "size": 88, "seed": 7, "feature_size": 1.5},
    "probe": {"kind": "focused", "pupil_diameter": 14.0, "defocus_waves": 0.7, "apodisation": 4.0},
    "scan": {"pattern": "raster", "step_fraction": 0.3, "jitter": 0.1},
    "split": {"axis": "x", "test_fraction": 0.6, "guard_diameters": 1.0},
    "views": {VIEW: {"stride": 1}},
    "grouping": {"gridsize": 2, "K": 6, "max_radius_diameters": 1.0, "train_groups_per_position": 2},
    "training": {"filters": [8, 16, 32], "epochs": 3, "batch_size": 16, "early_stopping_patience": 10},
    "refinement": {"max_steps": 6, "steps_per_check": 2},
    "stopping": {"patience": 2},
    "ptychi": {"epochs": 5, "batch_size": 40},
}
#: Seed of the object whose pixels replace the true ones in the doctored region.
DOCTOR_SEED = 1007
#: PtyChi metadata entries that are wall-clock timings (differ between any two runs).
PTYCHI_TIMINGS = ("reconstruction_seconds", "seconds_per_epoch", "seconds_per_epoch_after_first")
TRAINED = ("PtychoPINN", "Baseline")
NETWORKS = ("PtychoPINN", "PtychoPINN_TTR", "Baseline")


def _require_ptychi_venv() -> None:
    if not PTYCHI_PYTHON.exists():
        pytest.fail(
            f"{PTYCHI_PYTHON.relative_to(ROOT)} is missing: the PtyChi arm runs in its own environment; "
            "run `make venv` (it builds .venv and .venv-ptychi)"
        )


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _training_crops(train, shape: tuple[int, int], N: int) -> np.ndarray:
    """Pixels read by extract_patches for any training position (the N x N window and its shift margin)."""
    lo, hi = patch_bounds(N)
    touched = np.zeros(shape, dtype=bool)
    for x, y in zip(np.floor(train.xcoords).astype(int), np.floor(train.ycoords).astype(int)):
        touched[max(y + lo, 0) : y + hi + 1, max(x + lo, 0) : x + hi + 1] = True
    return touched


def _run_steps(study, study_json: str, d: Path, p: dict, gt: layout.GroundTruthFiles, out: Path) -> dict:
    """Every step that takes a ground-truth argument, writing at the layout places below the study directory ``out``
    (the simulation and the view they read are ``p``'s, in ``d``, shared by both runs); returns the artifact paths."""
    out.mkdir()
    cell = p["cell"]
    data = {"simulated": p["files"]["simulated"], "view": p["files"]["view"]}
    paths: dict = {"bundles": {}, "recons": {}}
    for method in TRAINED:
        spec = Method(method).spec
        trained = layout.network_cell(cell.with_method(method))  # a method trained once per dose has no view
        b = layout.bundle(trained).under(out)
        run_train(
            study,
            cell=trained,
            simulated=data["simulated"],
            view=data["view"] if spec.per_view else None,
            out=b,
            ground_truth=gt if spec.supervised else None,
            threads=2,
        )
        paths["bundles"][method] = b
    ttr = cell.with_method("PtychoPINN_TTR")
    r = layout.bundle(ttr).under(out)
    run_refine(study, cell=ttr, **data, source=layout.refined_from(ttr).under(out), out=r, threads=2)
    paths["bundles"]["PtychoPINN_TTR"] = r
    recons = {m: layout.reconstruction(cell.with_method(m)).under(out) for m in NETWORKS}
    run_reconstruct_network(study, cell=cell, **data, bundles={m: paths["bundles"][m] for m in NETWORKS}, out=recons)
    paths["recons"].update({m: r.recon for m, r in recons.items()})
    # The PtyChi program reads the cell's simulation and view below its --root: ``out`` links ``d``'s cell
    # directories and the program runs in ``out`` with the relative root ".", so that the sources it records are the
    # same in both runs.
    for rel in (layout.simulated(cell).train, layout.view(cell).view):
        link = out / Path(rel).parent
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(d / Path(rel).parent, target_is_directory=True)
    ptychi = cell.with_method("PtyChi")
    log = out / layout.log("reconstruct_ptychi", ptychi)
    cmd = [
        str(PTYCHI_PYTHON),
        "-m",
        "ptycho_core.steps.reconstruct_ptychi",
        "--config-json",
        study_json,
        "--dose",
        cell.dose,
        "--view",
        VIEW,
        "--seed",
        str(SEED),
        "--method",
        ptychi.method,
        "--root",
        ".",
        "--log",
        str(log),
        "--threads",
        "2",
    ]
    result = subprocess.run(
        cmd,
        cwd=out,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    log_text = log.read_text() if log.exists() else ""
    assert result.returncode == 0, (
        f"reconstruct_ptychi failed ({result.returncode}):\n{result.stderr}\n{log_text[-4000:]}"
    )
    paths["recons"]["PtyChi"] = str(out / layout.reconstruction(ptychi).recon)
    return paths


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    _require_ptychi_venv()
    d = tmp_path_factory.mktemp("gt_blind")
    study = study_from_dict(STUDY)
    study_json = str(d / "study.json")
    Path(study_json).write_text(json.dumps(study.to_dict()))
    p = simulate_cell(study, d, dose=DOSE, seed=SEED, view=VIEW)

    # the doctored ground truth: true object, except beyond every training crop
    truth = load_ground_truth(p["gt.npz"])
    train = load_diffraction_set(p["train.npz"])
    N = study.N
    first_col = int(np.floor(train.xcoords.max())) + patch_bounds(N)[1] + 1
    other = make_object(replace(study.object, seed=DOCTOR_SEED)).astype(np.complex64)
    obj = truth.obj.copy()
    obj[:, first_col:] = other[:, first_col:]
    doctored = layout.ground_truth(SEED).under(d / "doctored")  # a study directory of its own
    Path(doctored.obj).parent.mkdir(parents=True)
    save_ground_truth(doctored.obj, GroundTruth(obj=obj, metadata=truth.metadata))
    write_sentinel(
        doctored.sentinel,
        step="ground_truth",
        inputs=[],
        outputs=[doctored.obj],
        checks={"doctored_from_column": first_col},
        config_hash=study.config_hash(),
        wall_time_s=0.0,
    )

    true_run = _run_steps(study, study_json, d, p, p["files"]["ground_truth"], d / "true_gt")
    doctored_run = _run_steps(study, study_json, d, p, doctored, d / "doctored_gt")
    return {
        "study": study,
        "p": p,
        "doctored": doctored.obj,
        "first_col": first_col,
        "true": true_run,
        "doctored_run": doctored_run,
    }


def test_doctored_pixels_lie_beyond_every_training_patch_in_the_test_region(runs):
    p = runs["p"]
    truth = load_ground_truth(p["gt.npz"]).obj
    doctored = load_ground_truth(runs["doctored"]).obj
    changed = truth != doctored
    train = load_diffraction_set(p["train.npz"])
    test = load_diffraction_set(p["test.npz"])
    view = load_view(p["view.npz"], n_train=train.n, n_test=test.n)
    split = train.metadata["split"]
    assert split["axis"] == "x" and not split.get("training_object", False)
    cols = np.flatnonzero(changed.any(axis=0))
    touched = _training_crops(train, truth.shape, runs["study"].N)
    D = float(test.metadata["probe"]["fwhm_diameter_px"])
    rs, cs = view_box(test, view.test_index, truth.shape, border=D / 2)  # the view's box (no region minimum)
    in_region = changed[rs, cs]
    print(
        f"doctored columns {cols.min()}..{cols.max()} ({changed.sum()} px changed); "
        f"training x <= {train.xcoords.max():.2f}, "
        f"training crops reach column {np.flatnonzero(touched.any(axis=0)).max()}; "
        f"split boundary {split['boundary_px']:.2f} + guard/2 {split['guard_px'] / 2:.2f}; "
        f"evaluation region cols {cs.start}:{cs.stop}, {in_region.sum()} of {in_region.size} px changed"
    )
    assert changed.sum() > 0 and cols.min() == runs["first_col"]
    assert not (changed & touched).any(), "a doctored pixel lies in a training patch's crop"
    assert cols.min() >= split["boundary_px"] + split["guard_px"] / 2
    assert in_region.sum() >= 0.1 * in_region.size


def test_network_reconstructions_are_byte_identical(runs):
    for method in NETWORKS:
        a, b = runs["true"]["recons"][method], runs["doctored_run"]["recons"][method]
        print(f"{method}: recon.npz sha256 {_sha256(a)[:16]} (true GT) vs {_sha256(b)[:16]} (doctored GT)")
        assert Path(a).read_bytes() == Path(b).read_bytes(), (
            f"{method}: recon.npz differs between the true and the doctored ground truth"
        )


def test_ptychi_reconstruction_is_identical_up_to_its_timings(runs):
    a = load_recon(runs["true"]["recons"]["PtyChi"])
    b = load_recon(runs["doctored_run"]["recons"]["PtyChi"])
    np.testing.assert_array_equal(a.obj, b.obj)
    np.testing.assert_array_equal(a.covered, b.covered)
    strip = lambda meta: {k: v for k, v in meta.items() if k not in PTYCHI_TIMINGS}  # noqa: E731
    assert strip(a.metadata) == strip(b.metadata)
    same_bytes = (
        Path(runs["true"]["recons"]["PtyChi"]).read_bytes()
        == Path(runs["doctored_run"]["recons"]["PtyChi"]).read_bytes()
    )
    print(
        f"PtyChi: object and covered identical; metadata identical but for {PTYCHI_TIMINGS}; "
        f"file bytes identical: {same_bytes}"
    )


def _config_without_optimizer_name(raw: bytes) -> dict:
    config = json.loads(raw)
    optimizer = (config.get("compile_config") or {}).get("optimizer")
    if optimizer:
        optimizer["config"].pop("name", None)
    return config


def _h5_contents(raw: bytes) -> tuple[dict, dict]:
    """Every dataset (path -> array) and every attribute ((path, name) -> value) of an HDF5 file."""
    import io

    import h5py

    datasets, attrs = {}, {}
    with h5py.File(io.BytesIO(raw), "r") as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                datasets[name] = obj[()]
            attrs.update({(name, k): str(v) for k, v in obj.attrs.items()})

        f.visititems(visit)
        attrs.update({("/", k): str(v) for k, v in f.attrs.items()})
    return datasets, attrs


@pytest.mark.parametrize("method", ["PtychoPINN", "Baseline", "PtychoPINN_TTR"])
def test_trained_and_refined_weights_are_identical(runs, method):
    """Weights exactly equal. Bytes: Keras writes the save time into metadata.json, and a compiled model
    (the Baseline) carries its optimizer's in-process auto-name (adam, adam_1, ...) in config.json and
    model.weights.h5; those two entries are set aside, everything else must be identical."""
    import keras

    from ptycho_core.nn import models  # noqa: F401  (registers the custom layers)

    a = runs["true"]["bundles"][method].model
    b = runs["doctored_run"]["bundles"][method].model
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        assert sorted(za.namelist()) == sorted(zb.namelist())
        members = {n: (za.read(n), zb.read(n)) for n in za.namelist()}
    differing = sorted(n for n, (x, y) in members.items() if x != y)
    assert set(members) == {"metadata.json", "config.json", "model.weights.h5"}
    assert (
        json.loads(members["metadata.json"][0])["keras_version"]
        == json.loads(members["metadata.json"][1])["keras_version"]
    )
    assert _config_without_optimizer_name(members["config.json"][0]) == _config_without_optimizer_name(
        members["config.json"][1]
    )
    (da, aa), (db, ab) = (_h5_contents(raw) for raw in members["model.weights.h5"])
    assert sorted(da) == sorted(db)
    for name in da:
        assert np.array_equal(da[name], db[name]), f"{method}: {name} differs in model.weights.h5"
    attr_diff = sorted(k for k in set(aa) | set(ab) if aa.get(k) != ab.get(k))
    assert set(attr_diff) <= {("optimizer/vars", "name")}, f"{method}: HDF5 attributes differ: {attr_diff}"

    wa = keras.saving.load_model(a, compile=False, safe_mode=True).get_weights()
    wb = keras.saving.load_model(b, compile=False, safe_mode=True).get_weights()
    assert len(wa) == len(wb)
    for i, (x, y) in enumerate(zip(wa, wb)):
        assert x.shape == y.shape and np.array_equal(x, y), f"{method}: weight array {i} differs"
    print(
        f"{method}: {len(wa)} weight arrays and {len(da)} HDF5 datasets "
        "(with the optimizer state where one is saved) exactly equal; "
        f"model.keras bytes identical: {Path(a).read_bytes() == Path(b).read_bytes()}, "
        f"zip members that differ: {differing}, HDF5 attributes that differ: {attr_diff}"
    )


def test_the_doctored_ground_truth_changes_the_scores(runs):
    """The check can fail: against the doctored object the same reconstructions score differently."""
    p = runs["p"]
    truth = load_ground_truth(p["gt.npz"]).obj.astype(np.complex128)
    doctored = load_ground_truth(runs["doctored"]).obj.astype(np.complex128)
    test = load_diffraction_set(p["test.npz"])
    view = load_view(p["view.npz"], n_test=test.n)
    D = float(test.metadata["probe"]["fwhm_diameter_px"])
    # the view's box: this cut scan's test region is too narrow for the study's evaluation region (MS-SSIM's
    # scales), and the pointwise errors are all this check needs
    region = view_box(test, view.test_index, truth.shape, border=D / 2)
    for method, path in runs["true"]["recons"].items():
        obj = load_recon(path, truth.shape).obj.astype(np.complex128)
        errors = {}
        for name, ref in (("true", truth), ("doctored", doctored)):
            aligned, _ = remove_global_phase(ref, obj, region)
            errors[name] = (
                mae(np.angle(ref), np.angle(ref) + np.angle(aligned * np.conj(ref)), region),
                mae(np.abs(ref), np.abs(aligned), region),
            )
        print(
            f"{method}: phase MAE {errors['true'][0]:.4f} (true) vs {errors['doctored'][0]:.4f} (doctored) rad, "
            f"amplitude MAE {errors['true'][1]:.4f} vs {errors['doctored'][1]:.4f}"
        )
        assert errors["true"][0] != errors["doctored"][0]
        assert errors["true"][1] != errors["doctored"][1]
