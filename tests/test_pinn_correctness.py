"""Correctness of PtychoPINN and PtychoPINN_TTR on the stitched test region (simulation to scoring, end to end).

A small high-dose case (N = 32, a 88 x 88 GRF object, 1e6 photons per
pattern, the dense view) goes through the workflow's own steps: the
ground truth and simulation, the view, training of PtychoPINN
(measured counts only), then refinement, reconstruction and scoring
exactly as the workflow runs them:
``run_reconstruct_network`` for PtychoPINN, ``run_refine`` (the
PtychoPINN_TTR bundle, refined on the test counts) and
``run_reconstruct_network`` for PtychoPINN_TTR. Each stitched
reconstruction (gauge synchronisation, probe-weighted stitching) is scored
with the project's scorer, :func:`ptycho_core.evaluate.metrics.score_reconstruction`,
on :func:`ptycho_core.evaluate.region.evaluation_region` built as ``run_score``
builds it (the view's test positions, a border of half a probe FWHM
diameter). Unlike a per-patch score with each patch's own mean phase
removed, this sees every gauge error between patches: only one global phase
offset (and the registration shift) is removed, for the whole region.

Asserted, per method:

- phase MS-SSIM >= 0.8 (PtychoPINN) and >= 0.9 (PtychoPINN_TTR);
- the raw amplitude's least-squares scale against the ground truth
  (``amplitude_scale``, reported by the scorer, never applied) within 10 %
  of 1: the probe in sqrt(photons) fixes the absolute amplitude.

The training sentinel must record a finite, decreasing loss and a reloaded
bundle that reproduces the in-memory predictions.

Test settings (the case's own STUDY, not the study's configuration): an
88-px object rather than 80 px, so that the evaluation region (42 x 15 px)
holds two MS-SSIM scales (an 80-px object leaves it 11 px wide: MS-SSIM
would be plain SSIM) and registration is not steered by an 11-px strip;
training learning rate 3e-4, because at the default 1e-3 the phase head of
this case saturates in the first epoch: the pre-activations of pi * tanh
grow to a standard deviation of ~400, the predicted phase inside the probe
disc is a constant +-pi (standard deviation 5e-7 rad per patch), its
gradient vanishes, and the trained network reconstructs no phase (stitched
phase MS-SSIM 0.17, registration shift ~12 px). Refinement capped at 40
epochs (not converged by the deviance rule there; the phase is already at
MS-SSIM 0.99).

Measured on a shared 2-core CPU (scripts/compare_precision.py, replicate
seeds 0, 1, 2; the networks' body in bfloat16, the default, and in float32):

- seed 0 (this test): PtychoPINN phase MS-SSIM 0.933 (float32 0.908),
  PtychoPINN_TTR 0.987 (0.984);
- PtychoPINN_TTR over the three seeds: 0.988 +- 0.002 (float32 0.988 +- 0.004);
- PtychoPINN at seed 1 fails this test at either precision (phase MS-SSIM
  0.00 bfloat16, 0.32 float32): both trainings follow the same loss curve,
  stop early at epoch 16 with a weak phase (median std 0.06-0.07 rad in the
  probe disc), and registration of that weak reconstruction locks onto a
  wrong shift of 8-16 px. The threshold holds for seed 0 only; PtychoPINN's
  seed-to-seed robustness on so small a training set is an open problem,
  not a precision effect.

Run time about 3 minutes (training ~75 s, refinement ~90 s).
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from cells import simulate_cell

from ptycho_core import layout
from ptycho_core.config import study_from_dict
from ptycho_core.evaluate.metrics import score_reconstruction
from ptycho_core.evaluate.region import evaluation_region
from ptycho_core.io.datasets import load_diffraction_set, load_ground_truth
from ptycho_core.io.reconstruction import load_recon
from ptycho_core.io.sentinel import verify_sentinel
from ptycho_core.io.view_index import load_view
from ptycho_core.steps.reconstruct_network import run_reconstruct_network
from ptycho_core.steps.refine import run_refine
from ptycho_core.steps.train import run_train

pytestmark = pytest.mark.slow

DOSE, VIEW, SEED = 1.0e6, "dense", 0
STUDY = {
    "name": "pinn-correctness",
    "N": 32,
    "doses": [DOSE],
    "seeds": [SEED],
    "object": {
        "family": "grf",
        "size": 88,
        "seed": 3,
        "feature_size": 4.0,
        "amplitude_contrast": 0.3,
        "phase_max": 1.5,
        "train_seed": 4,  # a separate training object: the test scan covers the study object (the study's setting)
    },
    "probe": {"kind": "focused", "pupil_diameter": 10.0, "defocus_waves": 0.3, "apodisation": 4.0},
    "scan": {"pattern": "raster", "step_fraction": 0.25, "jitter": 0.1},
    "split": {"axis": "x", "test_fraction": 0.5, "guard_diameters": 1.0},
    "views": {VIEW: {"stride": 1}},
    "grouping": {"gridsize": 2, "K": 6, "max_radius_diameters": 1.0, "train_groups_per_position": 2},
    # learning rate 3e-4: at 1e-3 the phase head saturates in epoch 1 (see the module docstring)
    "training": {
        "filters": [32, 64, 128],
        "epochs": 60,
        "batch_size": 16,
        "learning_rate": 3.0e-4,
        "early_stopping_patience": 10,
    },
    "refinement": {"max_epochs": 40},
}

#: Phase MS-SSIM each method must reach on the stitched evaluation region.
PHASE_MS_SSIM_MIN = {"PtychoPINN": 0.8, "PtychoPINN_TTR": 0.9}
#: |amplitude_scale - 1| allowed (raw amplitude, the scale is reported, never applied).
AMPLITUDE_SCALE_TOLERANCE = 0.10


def run_case(d, raw: dict = STUDY) -> dict:
    """Simulation to scoring of one case in directory ``d`` (a pathlib.Path).

    Returns the training and refinement checks and the scores.

    Also used by scripts/compare_precision.py to measure the run-to-run
    spread of these scores over seeds, per precision.
    """
    study = study_from_dict(raw)
    seed = study.seeds[0]
    p = simulate_cell(study, d, dose=DOSE, seed=seed, view=VIEW)
    cell = p["cell"]
    data = {"simulated": p["files"]["simulated"], "view": p["files"]["view"]}

    # training: PtychoPINN
    pinn, ttr = cell.with_method("PtychoPINN"), cell.with_method("PtychoPINN_TTR")
    e = layout.bundle(pinn).under(d)
    train_checks = run_train(study, cell=pinn, **data, out=e, threads=2)
    # refinement: the refined bundle (PtychoPINN_TTR) from the trained one
    r = layout.bundle(ttr).under(d)
    refine_checks = run_refine(study, cell=ttr, **data, source=layout.refined_from(ttr).under(d), out=r, threads=2)
    # reconstruction: the view's test region with both bundles
    outs = {m.method: layout.reconstruction(m).under(d) for m in (pinn, ttr)}
    run_reconstruct_network(study, cell=cell, **data, bundles={pinn.method: e, ttr.method: r}, out=outs)
    recons = {m: out.recon for m, out in outs.items()}

    # score as steps.score.run_score does: one region, one alignment policy, amplitude raw
    gt = load_ground_truth(p["gt.npz"]).obj.astype(np.complex128)
    test = load_diffraction_set(p["test.npz"])
    view = load_view(p["view.npz"], n_test=test.n)
    D = float(test.metadata["probe"]["fwhm_diameter_px"])
    region = evaluation_region(test, {VIEW: view.test_index}, gt.shape, border=D / 2)
    scores = {}
    for method, path in recons.items():
        recon = load_recon(path, gt.shape)
        assert recon.metadata["method"] == method
        assert recon.covered[region].all(), f"{method} leaves region pixels uncovered"
        scores[method] = score_reconstruction(gt, recon.obj.astype(np.complex128), region)
    return {
        "train": train_checks,
        "refine": refine_checks,
        "scores": scores,
        "region": region,
        "paths": {**p, "e": e, "r": r},
    }


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    return run_case(tmp_path_factory.mktemp("pinn"))


@pytest.mark.parametrize("method", ["PtychoPINN", "PtychoPINN_TTR"])
def test_stitched_test_region_phase_ms_ssim_and_raw_amplitude_scale(pipeline, method):
    s = pipeline["scores"][method]
    rs, cs = pipeline["region"]
    phase_ms_ssim = float(s["phase"]["ms_ssim"])
    scale = float(s["amplitude_scale"])
    extra = (
        f"epochs {pipeline['train']['epochs_run']}, fit {pipeline['train']['fit_seconds']:.0f} s"
        if method == "PtychoPINN"
        else (
            f"refinement epochs {pipeline['refine']['epochs_run']} (converged {pipeline['refine']['converged']}), "
            f"deviance {pipeline['refine']['deviance_before']:.3g} -> {pipeline['refine']['deviance_best']:.3g}, "
            f"{pipeline['refine']['refine_seconds']:.0f} s"
        )
    )
    print(
        f"{method}: phase MS-SSIM {phase_ms_ssim:.4f} ({s['phase']['ms_ssim_scales']} scales), "
        f"phase SSIM {s['phase']['ssim']:.4f}, phase MAE {s['phase']['mae']:.4f} rad, "
        f"amplitude MS-SSIM {s['amplitude']['ms_ssim']:.4f}, amplitude scale {scale:.4f}, "
        f"shift ({s['shift'][0]:.3f}, {s['shift'][1]:.3f}) px, phase offset {s['phase_offset']:.3f} rad; "
        f"region rows {rs.start}:{rs.stop}, cols {cs.start}:{cs.stop} ({s['region_pixels']} px); {extra}"
    )
    assert phase_ms_ssim >= PHASE_MS_SSIM_MIN[method]
    assert abs(scale - 1.0) <= AMPLITUDE_SCALE_TOLERANCE


def test_training_sentinel_records_a_decreasing_finite_loss(pipeline):
    checks = pipeline["train"]
    assert np.isfinite(checks["initial_loss"]) and np.isfinite(checks["final_loss"])
    assert checks["final_loss"] < checks["initial_loss"]
    assert checks["reload_max_abs_difference"] <= 1e-5
    assert verify_sentinel(pipeline["paths"]["e"].sentinel)["checks"]["epochs_run"] == checks["epochs_run"]


def test_bundles_record_how_they_were_computed(pipeline):
    """The trained and the refined bundle record the body's precision, the dtype policies used, XLA and the devices."""
    for key in ("e", "r"):
        side = json.loads(open(pipeline["paths"][key].sidecar).read())
        assert side["architecture"]["precision"] == "mixed_bfloat16"  # the schema's default
        compute = side["compute"]
        assert compute["dtype_policies"] == ["float32", "mixed_bfloat16"]  # the body, and the head and physics
        assert compute["jit_compile"] is False  # op determinism (and a CPU-only TensorFlow) keep XLA off
        assert compute["backend"] == "tensorflow" and compute["devices"]


def test_refinement_lowered_the_test_deviance(pipeline):
    checks = pipeline["refine"]
    assert np.isfinite(checks["deviance_before"]) and checks["deviance_best"] < checks["deviance_before"]
    assert checks["reload_max_abs_difference"] <= 1e-5
