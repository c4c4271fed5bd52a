"""Workflow steps ``train`` and ``train_per_dose``: train a network (PtychoPINN or the Baseline).

PtychoPINN trains per cell on the view's training groups (views step) from
measured counts only; the Baseline, which sees single patterns and so knows
nothing of overlap, trains once per dose (``train_per_dose``) on every
training pattern, one pattern each, against the ground-truth object on the N/2 x N/2 support (the object,
never the illuminated P * O) of the object the training split was simulated
on (the study object, or the separate training object of
``object.train_seed``). The trained object predictor is saved as a
bundle, reloaded in safe mode, and must reproduce the in-memory predictions
before the sentinel is written.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from ptycho_core.config import StudyConfig
from ptycho_core.io.datasets import load_diffraction_set, load_ground_truth
from ptycho_core.io.view_index import load_view
from ptycho_core.layout import BundleFiles, Cell, GroundTruthFiles, SimulatedFiles, ViewFiles
from ptycho_core.methods import Method
from ptycho_core.recon.stitch import probe_window
from ptycho_core.steps.network_bundle import data_record, write_bundle
from ptycho_core.steps.skeleton import Step, require
from ptycho_core.streams import training_seed

log = logging.getLogger(__name__)

#: A predicted amplitude or phase whose std over the probe batch is at most this is constant (degenerate).
DEGENERATE_PREDICTION_STD = 1e-4


def run_train(
    study: StudyConfig,
    *,
    cell: Cell,
    simulated: SimulatedFiles,
    view: ViewFiles | None,
    out: BundleFiles,
    ground_truth: GroundTruthFiles | None = None,
    threads: int = 1,
) -> dict:
    """Train the cell's method on its view (or, for a method trained once per dose, on every training pattern:
    ``view`` None and a cell without a view), save and verify its bundle, write history, figure and sentinel.

    ``ground_truth``: the object the training split was simulated on, for a
    supervised method (its targets) and only then; an unsupervised method
    is refused one, so that the ground truth cannot reach it.
    """
    method = Method.parse(cell.method)
    spec = method.spec
    if spec.produced_by != "trained":
        raise ValueError(f"method {method.value} is not trained (it is {spec.produced_by})")
    if spec.per_view != (view is not None) or spec.per_view != (cell.view is not None):
        need = "per view: it needs" if spec.per_view else "once per dose: it must not be given"
        raise ValueError(f"method {method.value} is trained {need} a view (cell {cell.key}, view files {view})")
    if spec.supervised != (ground_truth is not None):
        need = "supervised: it needs" if spec.supervised else "unsupervised: it must not be given"
        raise ValueError(f"method {method.value} is {need} the ground truth (given: {ground_truth})")
    views = [view] if view is not None else []
    with Step(
        "train" if spec.per_view else "train_per_dose",
        study,
        sentinel=out.sentinel,
        depends_on=("physics", "views", "training") if spec.per_view else ("physics", "training"),
        input_sentinels=[simulated.sentinel, *(v.sentinel for v in views)]
        + ([ground_truth.sentinel] if ground_truth else []),
        extra=cell.record(study),
    ) as step:
        step.inputs += [simulated.train, *(v.view for v in views)] + ([ground_truth.obj] if ground_truth else [])
        step.outputs += [out.model, out.sidecar, out.history, out.figure]
        _train(study, cell, simulated, view, ground_truth, out, threads, step)
    log.info("%s trained: %s", method.value, json.dumps(step.checks))
    return step.checks


def _train(
    study: StudyConfig,
    cell: Cell,
    simulated: SimulatedFiles,
    view_files: ViewFiles | None,
    ground_truth: GroundTruthFiles | None,
    out: BundleFiles,
    threads: int,
    step: Step,
) -> None:
    import keras

    from ptycho_core.nn import models, training
    from ptycho_core.nn.backend import compute_record, configure_backend, training_precision
    from ptycho_core.nn.bundle import probe_hash

    method, dose, view_name, seed = Method(cell.method), cell.photons(study), cell.view, int(cell.seed)
    spec, train_path, out_model = method.spec, simulated.train, out.model
    train = load_diffraction_set(train_path)
    if view_files is not None:
        view = load_view(view_files.view, n_train=train.n)
        rows, groups = view.train_index, (view.train_groups if spec.grouped else view.train_index[:, None])
    else:  # once per dose: every training pattern, one each
        rows = np.arange(train.n)
        groups = rows[:, None]
    N, tcfg = train.N, study.training
    configure_backend(threads)
    seed_int = training_seed(seed, method, view_name or "", tcfg.seed_draw)
    keras.utils.set_random_seed(seed_int)
    rng = np.random.default_rng(seed_int)
    positions = np.column_stack([train.xcoords, train.ycoords])
    precision, precision_choice = training_precision(tcfg.precision)
    arch = models.ArchitectureConfig(filters=tcfg.filters, amplitude_max=tcfg.amplitude_max, precision=precision)
    scale = training.input_scale(train.diffraction[rows], N)
    channels = groups.shape[1]
    obj_model = models.build_object_model(N, channels, scale, arch, method.value.lower())
    if not spec.supervised:
        canvas = models.canvas_size_for(training.group_offsets(positions, groups), N)
        fit_model = models.build_pinn_training_model(obj_model, train.probe, canvas)
        loss = models.poisson_loss
        targets = None
        loss_name = "Poisson NLL of counts (log k! dropped)"
    else:
        canvas = None
        gt = load_ground_truth(ground_truth.obj)
        if gt.metadata["object"]["seed"] != train.metadata["object"]["seed"]:
            require(
                ground_truth.obj,
                "training object",
                False,
                f"object seed {gt.metadata['object']['seed']}, but the training split {train_path} was simulated "
                f"on the object of seed {train.metadata['object']['seed']}",
            )
        targets = training.support_patches(gt.obj, positions, N)
        weights = probe_window(train.probe)
        rows = np.unique(groups)
        spreads = [training.target_spread(t[rows], weights) for t in targets]
        fit_model = obj_model
        loss = [models.SupportWeightedMAE(weights, s) for s in spreads]
        loss_name = (
            f"|P|^2-weighted MAE of amplitude / {spreads[0]:.4g} + "
            f"|P|^2-weighted MAE of phase (rad) / {spreads[1]:.4g} "
            "(each over its training targets' weighted mean absolute deviation)"
        )

    # the validation strip's guard band: split.guard_diameters probe diameters, as between the splits of a cut scan
    guard = study.split.guard_diameters * float(train.metadata["probe"]["fwhm_diameter_px"])
    strip = training.validation_strip(positions, groups, tcfg.validation_fraction, study.split.axis, guard)
    tr_idx, va_idx = strip.train, strip.validation
    batches = training.GroupBatches(
        train.diffraction, positions, groups[tr_idx], tcfg.batch_size, rng=rng, targets=targets
    )
    val = (
        training.GroupBatches(train.diffraction, positions, groups[va_idx], tcfg.batch_size, targets=targets)
        if va_idx.size
        else None
    )
    fit_model.compile(optimizer=training.optimizer(tcfg, len(batches)), loss=loss)
    log.info(
        "%s: %d training and %d validation samples (strip, %d dropped in its guard band) of %d channel(s), "
        "N=%d, input scale %.6g, canvas %s",
        method.value,
        tr_idx.size,
        va_idx.size,
        strip.n_dropped_in_guard,
        channels,
        N,
        scale,
        canvas,
    )
    t_fit = time.perf_counter()
    history = training.fit(fit_model, batches, val, tcfg).history
    fit_seconds = time.perf_counter() - t_fit
    n_epochs = len(history["loss"])
    samples_per_s = tr_idx.size * n_epochs / fit_seconds

    losses = np.asarray(history["loss"], dtype=np.float64)
    checks = step.checks
    checks.update(
        {
            "epochs_run": n_epochs,
            "initial_loss": float(losses[0]),
            "final_loss": float(losses[-1]),
            "best_val_loss": float(np.min(history["val_loss"])) if "val_loss" in history else None,
            "fit_seconds": fit_seconds,
            "n_samples_train": int(tr_idx.size),
            "n_samples_validation": int(va_idx.size),
            "n_samples_dropped_in_guard": int(strip.n_dropped_in_guard),
            "training_samples_per_second": samples_per_s,
        }
    )
    require(out_model, "finite loss", np.all(np.isfinite(losses)), f"loss history {losses.tolist()}")

    # Predictions on a fixed probe batch: finite, and reproduced by the reloaded bundle (below).
    probe_rows = groups[:32]
    x = np.moveaxis(train.diffraction[probe_rows], 1, -1)
    amp_pred, phase_pred = (np.asarray(a) for a in obj_model.predict(x, verbose=0))
    require(
        out_model,
        "finite predictions",
        np.all(np.isfinite(amp_pred)) and np.all(np.isfinite(phase_pred)),
        "NaN or infinity",
    )
    checks["pred_amplitude_mean"] = float(amp_pred.mean())
    checks["pred_amplitude_std"] = float(amp_pred.std())
    checks["pred_phase_std"] = float(phase_pred.std())
    checks["pred_phase_std_in_probe_disc_median"] = training.phase_std_in_probe_disc(
        phase_pred, float(train.metadata["probe"]["fwhm_diameter_px"])
    )
    refused = outcome_refusals(method, losses, checks)
    checks["refused"] = refused
    checks["precision"] = arch.precision  # training.precision as resolved on this machine (auto: the hardware's)
    for reason in refused:
        log.warning("%s: a failed run (the network is saved and scored as produced): %s", method.value, reason)
    sidecar = {
        "method": method.value,
        "N": N,
        "channels": channels,
        "gridsize": int(round(channels**0.5)),
        "input_scale": scale,
        "input": "sqrt(counts), channels-last (batch, N, N, channels); the model multiplies by input_scale",
        "output": "amplitude, phase (batch, N/2, N/2, channels) on the central support [N/4, 3N/4)",
        "probe_sha256": probe_hash(train.probe),
        "canvas_size": canvas,
        "architecture": {
            "filters": list(arch.filters),
            "amplitude_max": arch.amplitude_max,
            "precision": arch.precision,
        },
        "compute": compute_record(fit_model, precision_choice=precision_choice),
        "training": {**study.to_dict()["training"], "seed": seed_int, "loss": loss_name},
        "history": {k: v for k, v in checks.items() if k.endswith("loss") or k == "epochs_run"},
        "refused": refused,
        "data": {
            **data_record(study, cell, train=train_path, **({"view_file": view_files.view} if view_files else {})),
            "n_samples_train": int(tr_idx.size),
            "n_samples_validation": int(va_idx.size),
            "validation": strip.record(),
        },
    }
    checks["reload_max_abs_difference"] = write_bundle(
        study,
        out,
        obj_model,
        sidecar,
        probe_batch=x,
        probe=train.probe,
        history_csv=training.history_csv(history),
        curve=history,
        title=f"{method.value}, dose {dose:.3g}, view {view_name or 'all (once per dose)'}, seed {seed}: {loss_name}",
    )


def outcome_refusals(method: Method, losses: np.ndarray, checks: dict) -> list[str]:
    """The checks of what training produced that failed, each as ``"train <method>: check '<name>' failed:
    <detail>"`` (empty when the network works).

    These judge the method's outcome on these data, not the pipeline: a network whose loss never fell, whose
    predictions are constant, or whose phase head is stuck in the tails of pi * tanh is a failed run of the
    method. It is saved and reconstructed as produced, marked in its bundle and in everything built on it
    (refinement, reconstruction, scores), and counted in the report, so that one failure neither stops the study
    nor vanishes from it. Non-finite losses or predictions stop the step instead: such a network cannot be scored.
    """
    from ptycho_core.nn.training import SATURATED_PHASE_STD

    failed = []
    if not losses.min() < losses[0]:
        failed.append(("loss decreased", f"initial {losses[0]:.6g}, best {losses.min():.6g}"))
    for key in ("pred_amplitude_std", "pred_phase_std"):
        if not checks[key] > DEGENERATE_PREDICTION_STD:
            failed.append(("non-degenerate predictions", f"{key} = {checks[key]:.3g}"))
    median = checks["pred_phase_std_in_probe_disc_median"]
    if not median > SATURATED_PHASE_STD:
        failed.append(
            (
                "phase not saturated",
                f"the median phase std inside the probe's FWHM disc is {median:.3g} rad (a phase output stuck at a "
                "constant, e.g. +-pi where pi * tanh saturates); lower training.learning_rate or raise "
                "training.warmup_epochs",
            )
        )
    return [f"train {method.value}: check '{name}' failed: {detail}" for name, detail in failed]
