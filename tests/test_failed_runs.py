"""Failed runs are counted, never dropped, and do not stop the study (issue: verdicts that replicate, item 6).

A network whose training fails an outcome check (its loss never fell, its
predictions are constant, its phase head is stuck in the tails of pi * tanh)
is a failed run of its method: saved, reconstructed and scored as produced,
its refusal carried by the bundle, the reconstruction and the cell's
alignment record, and counted by the report
(:mod:`ptycho_core.evaluate.failed_runs`). Non-finite losses still stop the
step: such a network cannot be scored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from cells import simulate_cell

from ptycho_core import layout
from ptycho_core.config import dose_label, study_from_dict
from ptycho_core.evaluate.failed_runs import collect_failed_runs, failed_run_lines
from ptycho_core.io.reconstruction import load_recon
from ptycho_core.io.records import ALIGNMENT_RECORD, METRIC_ROWS
from ptycho_core.io.sentinel import verify_sentinel
from ptycho_core.methods import Method
from ptycho_core.steps.reconstruct_network import run_reconstruct_network
from ptycho_core.steps.refine import run_refine
from ptycho_core.steps.score import run_score
from ptycho_core.steps.train import outcome_refusals, run_train

DOSE, VIEW, SEED = 1.0e3, "dense", 0
STUDY = {
    "name": "failed-runs",
    "N": 32,
    "doses": [DOSE],
    "seeds": [SEED],
    "object": {"family": "grf", "size": 96, "seed": 3, "train_seed": 4},
    "probe": {"kind": "focused", "pupil_diameter": 10.0, "defocus_waves": 0.3, "apodisation": 4.0},
    "scan": {"pattern": "raster", "step_fraction": 0.25, "jitter": 0.1},
    "split": {"axis": "x", "test_fraction": 0.5, "guard_diameters": 1.0},
    "views": {VIEW: {"stride": 1}},
    "training": {"epochs": 2, "filters": [8, 16, 32], "batch_size": 16, "schedule": "plateau"},
    "refinement": {"max_steps": 20, "steps_per_check": 10, "check_groups": 16},
}

GOOD = {"pred_amplitude_std": 0.1, "pred_phase_std": 0.3, "pred_phase_std_in_probe_disc_median": 0.2}


def test_the_outcome_checks_name_what_failed():
    pinn = Method("PtychoPINN")
    falling = np.array([3.0, 2.0, 1.5])
    assert outcome_refusals(pinn, falling, GOOD) == []
    (flat,) = outcome_refusals(pinn, np.array([2.0, 2.0, 2.5]), GOOD)
    assert flat == "train PtychoPINN: check 'loss decreased' failed: initial 2, best 2"
    (constant,) = outcome_refusals(pinn, falling, {**GOOD, "pred_amplitude_std": 1e-6})
    assert "check 'non-degenerate predictions' failed: pred_amplitude_std = 1e-06" in constant
    # the saturated phase of seed draw 2 (dose 3,000, dense): 4.8e-7 rad inside the probe disc
    (stuck,) = outcome_refusals(pinn, falling, {**GOOD, "pred_phase_std_in_probe_disc_median": 4.8e-7})
    assert "check 'phase not saturated' failed: the median phase std inside the probe's FWHM disc is 4.8e-07" in stuck
    assert len(outcome_refusals(Method("Baseline"), np.array([1.0, 1.0]), {**GOOD, "pred_phase_std": 0.0})) == 2


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    """A PtychoPINN trained on a simulated cell with the saturation threshold raised above any phase, so that its
    outcome check fails; then reconstructed and scored, as the workflow does."""
    d = tmp_path_factory.mktemp("failed_runs")
    study = study_from_dict(STUDY)
    mp = pytest.MonkeyPatch()
    mp.setattr("ptycho_core.nn.training.SATURATED_PHASE_STD", 1e9)
    cwd = os.getcwd()
    os.chdir(d)
    try:
        p = simulate_cell(study, Path("."), dose=DOSE, seed=SEED, view=VIEW)
        cell = p["cell"].with_method("PtychoPINN")
        bundle = layout.bundle(cell)
        checks = run_train(study, cell=cell, simulated=layout.simulated(cell), view=layout.view(cell), out=bundle)
        ttr = cell.with_method("PtychoPINN_TTR")
        run_refine(
            study,
            cell=ttr,
            simulated=layout.simulated(cell),
            view=layout.view(cell),
            source=bundle,
            out=layout.bundle(ttr),
        )
        recon = {m: layout.reconstruction(cell.with_method(m)) for m in ("PtychoPINN", "PtychoPINN_TTR")}
        run_reconstruct_network(
            study,
            cell=p["cell"],
            simulated=layout.simulated(cell),
            view=layout.view(cell),
            bundles={"PtychoPINN": bundle, "PtychoPINN_TTR": layout.bundle(ttr)},
            out=recon,
        )
        scores = layout.scores(p["cell"])
        run_score(
            study,
            cell=p["cell"],
            ground_truth=layout.ground_truth(SEED),
            simulated=layout.simulated(cell),
            view=layout.view(cell),
            region_views={VIEW: layout.view(cell)},
            reconstructions=recon,
            out=scores,
        )
    finally:
        os.chdir(cwd)
        mp.undo()
    return d, checks, {"PtychoPINN": bundle, "PtychoPINN_TTR": layout.bundle(ttr)}, recon, scores


@pytest.mark.slow
def test_a_refused_network_is_saved_marked_and_scored_as_produced(refused):
    d, checks, bundles, recons, scores = refused
    (reason,) = checks["refused"]
    assert reason.startswith("train PtychoPINN: check 'phase not saturated' failed")
    # the bundle and its sentinel are written, and both name the refusal; the refinement built on it carries it on
    for method, bundle in bundles.items():
        assert verify_sentinel(d / bundle.sentinel, root=d)["checks"]["refused"] == [reason], method
        assert json.loads((d / bundle.sidecar).read_text())["refused"] == [reason], method
        # the reconstructions carry it; the score step scores them and its alignment record names it
        assert load_recon(d / recons[method].recon).metadata["refused"] == [reason], method
        assert ALIGNMENT_RECORD.read(d / scores.alignment)["methods"][method]["refused"] == [reason], method
    assert verify_sentinel(d / scores.sentinel, root=d)["checks"]["refused_methods"] == list(bundles)
    rows = METRIC_ROWS.read(d / scores.metrics)
    assert {r["method"] for r in rows if (r["quantity"], r["metric"]) == ("phase", "ms_ssim")} == set(bundles)
    # the report's count
    failed = collect_failed_runs([{"dose": DOSE, "view": VIEW, "seed": SEED, "path": d / scores.alignment}])
    assert failed == {(DOSE, VIEW, m): {SEED: [reason]} for m in bundles}
    assert failed_run_lines(failed)[0] == f"PtychoPINN, {dose_label(DOSE)}, view dense, seed 0: {reason}"


def test_a_network_that_passes_its_outcome_checks_has_no_refusal(tmp_path):
    """The alignment record of a cell with no failed run adds nothing to the count."""
    record = {
        "region_rows": [0, 8],
        "region_cols": [0, 8],
        "border_px": 2.0,
        "policy": "known frame",
        "methods": {
            m: {
                "residual_shift_dy_dx_px": [0.0, 0.0],
                "phase_offset_rad": 0.0,
                "phase_ramp": None,
                "amplitude_scale_reported_not_applied": 1.0,
                "region_pixels": 64,
                "refused": [],
            }
            for m in ("PtychoPINN", "PtyChi")
        },
    }
    ALIGNMENT_RECORD.write(tmp_path / "alignment.json", record)
    assert collect_failed_runs([{"dose": 30.0, "view": "dense", "seed": 0, "path": tmp_path / "alignment.json"}]) == {}
