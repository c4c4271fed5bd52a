"""Workflow step ``refine``: test-time refinement of a trained network of one cell (any method whose registry
entry ``refines``).

The trained bundle is fine-tuned on the view's test counts
(:func:`ptycho_core.nn.refinement.refine`: same physics, same Poisson loss,
no labels) with the replicate's free pixels held out, until their deviance
stops falling (the ``stopping`` rule PtyChi follows too); saved as its own
bundle, reloaded and checked. A refinement of a network whose training was
refused (a failed run, :func:`ptycho_core.steps.train.outcome_refusals`)
carries that refusal on.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from ptycho_core.config import StudyConfig
from ptycho_core.io.datasets import load_diffraction_set
from ptycho_core.io.view_index import load_view
from ptycho_core.layout import BundleFiles, Cell, SimulatedFiles, ViewFiles
from ptycho_core.methods import Method
from ptycho_core.sampling.free_pixels import free_pixel_mask
from ptycho_core.steps.network_bundle import data_record, write_bundle
from ptycho_core.steps.skeleton import Step, require
from ptycho_core.streams import free_pixel_entropy, training_seed

log = logging.getLogger(__name__)


def run_refine(
    study: StudyConfig,
    *,
    cell: Cell,
    simulated: SimulatedFiles,
    view: ViewFiles,
    source: BundleFiles,
    out: BundleFiles,
    threads: int = 1,
) -> dict:
    """Refine the bundle ``source`` of the method that the cell's method refines on the view's test counts;
    save and verify the refined bundle."""
    method = Method.parse(cell.method)
    if method.spec.produced_by != "refined":
        raise ValueError(f"method {method.value} is not refined (it is {method.spec.produced_by})")
    with Step(
        "refine",
        study,
        sentinel=out.sentinel,
        depends_on=("physics", "views", "training", "refinement", "stopping"),
        input_sentinels=[simulated.sentinel, view.sentinel, source.sentinel],
        extra=cell.record(study),
    ) as step:
        step.inputs += [simulated.test, view.view, source.model, source.sidecar]
        step.outputs += [out.model, out.sidecar, out.history, out.figure]
        _refine(study, cell, simulated, view, source, out, threads, step)
    log.info("%s refined: %s", method.value, json.dumps(step.checks))
    return step.checks


def _refine(
    study: StudyConfig,
    cell: Cell,
    simulated: SimulatedFiles,
    view_files: ViewFiles,
    source_files: BundleFiles,
    out: BundleFiles,
    threads: int,
    step: Step,
) -> None:
    from ptycho_core.nn.backend import configure_backend
    from ptycho_core.nn.bundle import load_bundle
    from ptycho_core.nn.refinement import refine
    from ptycho_core.nn.training import history_csv

    method, dose, view_name, seed = Method(cell.method), cell.photons(study), cell.view, int(cell.seed)
    source, test_path, sidecar_path, out_model = method.spec.refines, simulated.test, source_files.sidecar, out.model
    configure_backend(threads)
    test = load_diffraction_set(test_path)
    view = load_view(view_files.view, n_test=test.n)
    groups = view.test_groups
    model, side = load_bundle(source_files.model, sidecar_path, N=test.N, channels=groups.shape[1], probe=test.probe)
    require(
        sidecar_path, "method", side["method"] == source.value, f"bundle of {side['method']}, expected {source.value}"
    )
    # a refinement of a network whose training was refused is a failed run too: it is built on that failure
    refused = list(side["refused"])
    for reason in refused:
        log.warning("%s starts from a failed run (refined and scored as produced): %s", method.value, reason)
    positions = np.column_stack([test.xcoords, test.ycoords])
    seed_int = training_seed(seed, method, view_name, study.training.seed_draw)
    free = free_pixel_mask(test.N, study.stopping.free_pixel_fraction, seed)
    rec = refine(
        model, test.diffraction, positions, groups, test.probe, study.refinement, study.stopping, free, seed_int
    )
    history = rec.pop("history")
    compute = rec.pop("compute")
    losses = np.asarray(history["loss"], dtype=np.float64)
    checks = step.checks
    checks.update(rec)
    checks["n_test_groups"] = int(groups.shape[0])
    checks["refused"] = refused
    checks["steps_per_second"] = rec["steps_run"] / rec["refine_seconds"]
    require(out_model, "finite loss", np.all(np.isfinite(losses)), f"loss history {losses.tolist()}")
    free_history = np.asarray(history["free_deviance"], dtype=np.float64)
    require(out_model, "finite free deviance", np.all(np.isfinite(free_history)), f"{free_history.tolist()}")
    # a deviance is >= 0 (0 at I = k): a negative one would mean the saturated value is not the loss's own
    lowest = min(rec["free_deviance_before"], float(free_history.min()))
    require(out_model, "free deviance >= 0", lowest >= -1e-3, f"lowest free deviance {lowest:.6g}")
    # the kept iterate is a candidate (the start or a check) and, each accepted one lower than the one it replaced,
    # no worse than the start
    best, before = rec["free_deviance_best"], rec["free_deviance_before"]
    kept = before if rec["best_check"] == 0 else float(free_history[rec["best_check"] - 1])
    require(
        out_model,
        "best iterate kept",
        best == kept and lowest <= best <= before,
        f"kept free deviance {best:.6g} (check {rec['best_check']}: {kept:.6g}), lowest seen {lowest:.6g}, "
        f"start {before:.6g}",
    )
    if not rec["improved"]:
        log.warning("refinement never lowered the free deviance: the refined network is the starting one")
    if not rec["converged"]:
        log.warning("refinement reached max_steps = %d before the free deviance stopped", study.refinement.max_steps)

    sidecar = {
        **{
            k: side[k]
            for k in ("N", "channels", "gridsize", "input_scale", "input", "output", "probe_sha256", "architecture")
        },
        "method": method.value,
        "canvas_size": rec["canvas_size"],
        "compute": compute,
        "refused": refused,
        "refined_from": {
            "method": source.value,
            "model_sha256": side["model_sha256"],
            "sidecar": str(sidecar_path),
            "training": side["training"],
        },
        "refinement": {
            **study.to_dict()["refinement"],
            "stopping": study.to_dict()["stopping"],
            "free_pixels": {"n": int(free.sum()), "stream": free_pixel_entropy(seed)},
            "seed": seed_int,
            "loss": "Poisson NLL of the test counts on the fitted pixels (log k! dropped)",
        },
        "history": {
            k: rec[k]
            for k in (
                "deviance_before",
                "free_deviance_before",
                "free_deviance_best",
                "best_check",
                "best_step",
                "improved",
                "checks_run",
                "steps_run",
                "passes_run",
                "converged",
                "refine_seconds",
            )
        },
        "data": {
            **data_record(study, cell, test=test_path, view_file=view_files.view),
            "n_test_groups": int(groups.shape[0]),
        },
    }
    x = np.moveaxis(test.diffraction[groups[:32]], 1, -1)
    checks["reload_max_abs_difference"] = write_bundle(
        study,
        out,
        model,
        sidecar,
        probe_batch=x,
        probe=test.probe,
        history_csv=history_csv(history, index="check"),
        curve={"loss": history["deviance"], "val_loss": history["free_deviance"]},
        title=f"{method.value}, dose {dose:.3g}, view {view_name}, seed {seed}: Poisson deviance of the check set's "
        f"test counts per check of {study.refinement.steps_per_check} steps (fitted pixels; free pixels as validation)",
        xlabel=f"check (every {study.refinement.steps_per_check} optimiser steps)",
    )
