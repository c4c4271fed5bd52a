"""Workflow step ``refine``: test-time refinement of the trained PtychoPINN of one cell (method PtychoPINN_TTR).

The trained bundle is fine-tuned on the view's test counts
(:func:`ptycho_core.nn.refinement.refine`: same physics, same Poisson loss,
no labels), saved as its own bundle, reloaded and checked.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ptycho_core.config import StudyConfig
from ptycho_core.figures.training import loss_figure
from ptycho_core.io.datasets import load_diffraction_set
from ptycho_core.io.npz import atomic_write_text
from ptycho_core.io.sentinel import provenance, sha256_file
from ptycho_core.io.view_index import load_view
from ptycho_core.methods import Method
from ptycho_core.steps.skeleton import Step, require
from ptycho_core.streams import training_seed

log = logging.getLogger(__name__)


def run_refine(
    study: StudyConfig,
    *,
    dose: float,
    view_name: str,
    seed: int,
    test_path: str | Path,
    view_path: str | Path,
    model_path: str | Path,
    sidecar_path: str | Path,
    input_sentinels: list,
    out_model: str | Path,
    out_sidecar: str | Path,
    out_history: str | Path,
    out_figure: str | Path,
    sentinel_path: str | Path,
    threads: int = 1,
) -> dict:
    """Refine the trained PtychoPINN of one cell on the view's test counts; save and verify the bundle."""
    method = Method.PTYCHOPINN_TTR
    with Step(
        "refine",
        study,
        sentinel=sentinel_path,
        depends_on=("physics", "views", "training", "refinement"),
        input_sentinels=input_sentinels,
        extra={"method": method.value, "dose": float(dose), "view": view_name, "seed": int(seed)},
    ) as step:
        step.inputs += [test_path, view_path, model_path, sidecar_path]
        step.outputs += [out_model, out_sidecar, out_history, out_figure]
        step.checks.update(
            _refine(study, method, dose, view_name, seed, test_path, view_path, model_path, sidecar_path,
                    out_model, out_sidecar, out_history, out_figure, threads)
        )
    log.info("%s refined: %s", method.value, json.dumps(step.checks))
    return step.checks


def _refine(study, method, dose, view_name, seed, test_path, view_path, model_path, sidecar_path,
            out_model, out_sidecar, out_history, out_figure, threads) -> dict:
    import keras

    from ptycho_core.nn.backend import configure_backend
    from ptycho_core.nn.bundle import load_bundle, save_bundle, verify_reload
    from ptycho_core.nn.refinement import refine
    from ptycho_core.nn.training import history_csv

    source = method.spec.refines
    configure_backend(threads)
    test = load_diffraction_set(test_path)
    view = load_view(view_path, n_test=test.n)
    groups = view.test_groups
    model, side = load_bundle(model_path, sidecar_path, N=test.N, channels=groups.shape[1], probe=test.probe)
    require(sidecar_path, "method", side["method"] == source.value, f"bundle of {side['method']}, expected {source.value}")
    positions = np.column_stack([test.xcoords, test.ycoords])
    seed_int = training_seed(seed, method, view_name)
    rec = refine(model, test.diffraction, positions, groups, test.probe, study.refinement, seed_int)
    history = rec.pop("history")
    compute = rec.pop("compute")
    losses = np.asarray(history["loss"], dtype=np.float64)
    checks = dict(rec)
    checks["n_test_groups"] = int(groups.shape[0])
    checks["groups_per_second"] = groups.shape[0] * rec["epochs_run"] / rec["refine_seconds"]
    require(out_model, "finite loss", np.all(np.isfinite(losses)), f"loss history {losses.tolist()}")
    require(
        out_model, "refinement lowered the test deviance", rec["deviance_best"] < rec["deviance_before"],
        f"{rec['deviance_before']:.6g} before, best {rec['deviance_best']:.6g}",
    )
    if not rec["converged"]:
        log.warning("refinement reached max_epochs = %d before converging", study.refinement.max_epochs)

    sidecar = {
        **{k: side[k] for k in ("N", "channels", "gridsize", "input_scale", "input", "output", "probe_sha256", "architecture")},
        "method": method.value,
        "canvas_size": rec["canvas_size"],
        "compute": compute,
        "refined_from": {"method": source.value, "model_sha256": side["model_sha256"], "sidecar": str(sidecar_path), "training": side["training"]},
        "refinement": {**study.to_dict()["refinement"], "seed": seed_int, "loss": "Poisson NLL of the test counts (log k! dropped)"},
        "history": {k: rec[k] for k in ("deviance_before", "deviance_best", "best_epoch", "epochs_run", "converged", "refine_seconds")},
        "data": {
            "dose": float(dose),
            "view": view_name,
            "seed": int(seed),
            "test": {"path": str(test_path), "sha256": sha256_file(test_path)},
            "view_file": {"path": str(view_path), "sha256": sha256_file(view_path)},
            "n_test_groups": int(groups.shape[0]),
        },
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "provenance": provenance(study),
    }
    save_bundle(out_model, out_sidecar, model, sidecar)
    x = np.moveaxis(test.diffraction[groups[:32]], 1, -1)
    checks["reload_max_abs_difference"] = verify_reload(model, out_model, out_sidecar, x, N=test.N, channels=groups.shape[1], probe=test.probe)
    atomic_write_text(out_history, history_csv(history))
    loss_figure(out_figure, {"loss": history["deviance"]}, f"{method.value}, dose {dose:.3g}, view {view_name}, seed {seed}: Poisson deviance of the test counts")
    return checks
