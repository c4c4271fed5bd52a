"""Phase E step: train PtychoPINN or the Baseline on one dose x view x seed.

PtychoPINN trains on the view's training groups (phase D) from measured
counts only; the Baseline trains on the view's training rows, one pattern
each, against the ground-truth object on the N/2 x N/2 support (the object,
never the illuminated P * O) of the object the training split was simulated
on (the study object, or the separate training object of
``object.train_seed``). The trained object predictor is saved as a
bundle, reloaded in safe mode, and must reproduce the in-memory predictions
before the sentinel is written.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from pathlib import Path

import numpy as np

from ptycho_core.config import StudyConfig
from ptycho_core.io.datasets import load_diffraction_set, load_ground_truth
from ptycho_core.methods import Method
from ptycho_core.io.npz import atomic_write_text
from ptycho_core.steps.simulate import provenance
from ptycho_core.recon.stitch import probe_window
from ptycho_core.io.sentinel import ArtifactCheckError, sha256_file, verify_sentinel, write_sentinel
from ptycho_core.io.view_index import load_view

log = logging.getLogger(__name__)

#: Reloaded-bundle predictions must match the in-memory model to this (absolute) tolerance.
RELOAD_TOLERANCE = 1e-5


#: Median phase std (rad) inside the probe's FWHM disc below which a network's phase output is
#: stuck at a constant (pi * tanh saturated, no gradient left). Far below any real contrast:
#: Poisson noise alone leaves more than this in a reconstruction at any dose of the study.
SATURATED_PHASE_STD = 1e-3


def phase_std_in_probe_disc(phase: np.ndarray, fwhm_diameter: float) -> float:
    """Median over patches of the predicted phase's std inside the probe FWHM disc (support centre N/4)."""
    patches = np.moveaxis(np.asarray(phase), -1, 1).reshape(-1, phase.shape[1], phase.shape[2])
    n2 = patches.shape[-1]
    yy, xx = np.mgrid[:n2, :n2]
    disc = np.hypot(yy - n2 // 2, xx - n2 // 2) <= fwhm_diameter / 2
    return float(np.median(patches[:, disc].std(axis=1)))


def training_seed(seed: int, method: Method, view: str) -> int:
    """Integer seed of one training job, derived from the replicate seed (recorded)."""
    from ptycho_core.nn.training import TRAIN_STREAM

    ss = np.random.SeedSequence([int(seed), TRAIN_STREAM, *method.value.encode(), 0, *view.encode()])
    return int(ss.generate_state(1)[0])


def history_csv(history: dict) -> str:
    keys = list(history)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["epoch", *keys])
    for i in range(len(history[keys[0]])):
        w.writerow([i + 1, *(repr(float(history[k][i])) for k in keys)])
    return buf.getvalue()


def loss_figure(path, history: dict, title: str) -> None:
    from matplotlib.figure import Figure

    from ptycho_core.figures.preview import save_figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], label="training loss")
    if "val_loss" in history:
        ax.plot(epochs, history["val_loss"], label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    ax.legend()
    save_figure(fig, path)


def configure_backend(threads: int) -> None:
    """Thread settings and deterministic ops of the Keras backend (TensorFlow), devices logged."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already initialised in this process (tests): keep its threads
        log.warning("TensorFlow already initialised; thread settings left as they are")
    tf.config.experimental.enable_op_determinism()
    log.info("TensorFlow devices: %s", _tensorflow_devices())


def _tensorflow_devices() -> list[str]:
    import tensorflow as tf

    return [d.name for d in tf.config.list_logical_devices()]


def compute_record(fit_model) -> dict:
    """How a model was computed: backend, the body's dtype policy, XLA or not, devices (recorded in bundles).

    XLA (``jit_compile``) is Keras' "auto": off on a CPU-only TensorFlow
    (measured 3-4x slower than oneDNN's kernels here, scripts/bench_throughput.py)
    and off whenever op determinism is enabled, which every training job
    enables (configure_backend); recorded as resolved.
    """
    import keras

    policies = sorted({layer.dtype_policy.name for layer in fit_model._flatten_layers() if hasattr(layer, "dtype_policy")})
    record = {"backend": keras.backend.backend(), "dtype_policies": policies, "jit_compile": bool(fit_model.jit_compile)}
    if keras.backend.backend() == "tensorflow":
        record["devices"] = _tensorflow_devices()
    return record


def verify_reload(model, model_path, sidecar_path, x: np.ndarray, *, N: int, channels: int, probe: np.ndarray) -> float:
    """Reload a saved bundle in safe mode; its predictions on ``x`` must equal the in-memory model's."""
    from ptycho_core.nn.bundle import load_bundle

    amp, phase = (np.asarray(a) for a in model.predict(x, verbose=0))
    reloaded, _ = load_bundle(model_path, sidecar_path, N=N, channels=channels, probe=probe)
    amp_re, phase_re = (np.asarray(a) for a in reloaded.predict(x, verbose=0))
    diff = float(max(np.abs(amp_re - amp).max(), np.abs(phase_re - phase).max()))
    if not diff <= RELOAD_TOLERANCE:
        raise ArtifactCheckError(f"{model_path}: check 'reload reproduces predictions' failed: max difference {diff:.3g}")
    return diff


def run_train(
    study: StudyConfig,
    method: str,
    dose: float,
    view_name: str,
    seed: int,
    train_path: str | Path,
    test_path: str | Path,
    view_path: str | Path,
    input_sentinels: list,
    ground_truth: str | Path,
    out_model: str | Path,
    out_sidecar: str | Path,
    out_history: str | Path,
    out_figure: str | Path,
    sentinel_path: str | Path,
    threads: int = 1,
) -> dict:
    """Train one model, save and verify its bundle, write history, figure and sentinel."""
    import keras

    from ptycho_core.nn import models
    from ptycho_core.nn import training
    from ptycho_core.nn.bundle import probe_hash, save_bundle

    t_start = time.perf_counter()
    method = Method.parse(method)
    for s in input_sentinels:
        verify_sentinel(s)
    train = load_diffraction_set(train_path)
    test = load_diffraction_set(test_path)
    view = load_view(view_path, n_train=train.n, n_test=test.n)
    N, tcfg = train.N, study.training
    configure_backend(threads)
    seed_int = training_seed(seed, method, view_name)
    keras.utils.set_random_seed(seed_int)
    rng = np.random.default_rng(seed_int)
    positions = np.column_stack([train.xcoords, train.ycoords])
    arch = models.ArchitectureConfig(filters=tcfg.filters, amplitude_max=tcfg.amplitude_max, precision=tcfg.precision)
    scale = training.input_scale(train.diffraction[view.train_index], N)
    optimizer = keras.optimizers.Adam(tcfg.learning_rate, name="adam")  # named: bundle bytes independent of process history

    spec = method.spec
    if spec.produced_by != "trained":
        raise ValueError(f"method {method.value} is not trained in phase E (it is {spec.produced_by})")
    groups = view.train_groups if spec.grouped else view.train_index[:, None]
    channels = groups.shape[1]
    obj_model = models.build_object_model(N, channels, scale, arch, method.value.lower())
    if not spec.supervised:
        canvas = models.canvas_size_for(training.group_offsets(positions, groups), N)
        fit_model = models.build_pinn_training_model(obj_model, train.probe, canvas)
        fit_model.compile(optimizer=optimizer, loss=models.poisson_loss)
        targets = None
        loss_name = "Poisson NLL of counts (log k! dropped)"
    else:
        canvas = None
        gt = load_ground_truth(ground_truth)
        if gt.metadata["object"]["seed"] != train.metadata["object"]["seed"]:
            raise ArtifactCheckError(
                f"{ground_truth}: check 'training object' failed: object seed {gt.metadata['object']['seed']}, but the "
                f"training split {train_path} was simulated on the object of seed {train.metadata['object']['seed']}"
            )
        targets = training.support_patches(gt.obj, positions, N)
        weights = probe_window(train.probe)
        rows = np.unique(groups)
        spreads = [training.target_spread(t[rows], weights) for t in targets]
        fit_model = obj_model
        fit_model.compile(optimizer=optimizer, loss=[models.SupportWeightedMAE(weights, s) for s in spreads])
        loss_name = (
            f"|P|^2-weighted MAE of amplitude / {spreads[0]:.4g} + |P|^2-weighted MAE of phase (rad) / {spreads[1]:.4g} "
            "(each over its training targets' weighted mean absolute deviation)"
        )

    split_meta = train.metadata["split"]
    strip = training.validation_strip(positions, groups, tcfg.validation_fraction, split_meta["axis"], float(split_meta["guard_px"]))
    tr_idx, va_idx = strip.train, strip.validation
    batches = training.GroupBatches(train.diffraction, positions, groups[tr_idx], tcfg.batch_size, rng=rng, targets=targets)
    val = training.GroupBatches(train.diffraction, positions, groups[va_idx], tcfg.batch_size, targets=targets) if va_idx.size else None
    log.info(
        "%s: %d training and %d validation samples (strip, %d dropped in its guard band) of %d channel(s), N=%d, input scale %.6g, canvas %s",
        method.value, tr_idx.size, va_idx.size, strip.n_dropped_in_guard, channels, N, scale, canvas,
    )
    t_fit = time.perf_counter()
    history = training.fit(fit_model, batches, val, tcfg).history
    fit_seconds = time.perf_counter() - t_fit
    n_epochs = len(history["loss"])
    samples_per_s = tr_idx.size * n_epochs / fit_seconds

    losses = np.asarray(history["loss"], dtype=np.float64)
    checks: dict = {
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
    if not np.all(np.isfinite(losses)):
        raise ArtifactCheckError(f"{out_model}: check 'finite loss' failed: loss history {losses.tolist()}")
    if not losses.min() < losses[0]:
        raise ArtifactCheckError(f"{out_model}: check 'loss decreased' failed: initial {losses[0]:.6g}, best {losses.min():.6g}")

    # Predictions on a fixed probe batch: not degenerate, and reproduced by the reloaded bundle.
    probe_rows = groups[:32]
    x = np.moveaxis(train.diffraction[probe_rows], 1, -1)
    amp_pred, phase_pred = (np.asarray(a) for a in obj_model.predict(x, verbose=0))
    checks["pred_amplitude_mean"] = float(amp_pred.mean())
    checks["pred_amplitude_std"] = float(amp_pred.std())
    checks["pred_phase_std"] = float(phase_pred.std())
    checks["pred_phase_std_in_probe_disc_median"] = phase_std_in_probe_disc(phase_pred, float(train.metadata["probe"]["fwhm_diameter_px"]))
    for key in ("pred_amplitude_std", "pred_phase_std"):
        if not checks[key] > 1e-4:
            raise ArtifactCheckError(f"{out_model}: check 'non-degenerate predictions' failed: {key} = {checks[key]:.3g}")
    if not checks["pred_phase_std_in_probe_disc_median"] > SATURATED_PHASE_STD:
        raise ArtifactCheckError(
            f"{out_model}: check 'phase not saturated' failed: the median phase std inside the probe's FWHM disc is "
            f"{checks['pred_phase_std_in_probe_disc_median']:.3g} rad (a phase output stuck at a constant, e.g. +-pi where "
            f"pi * tanh saturates); lower training.learning_rate"
        )
    if not np.all(np.isfinite(amp_pred)) or not np.all(np.isfinite(phase_pred)):
        raise ArtifactCheckError(f"{out_model}: check 'finite predictions' failed")

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
        "architecture": {"filters": list(arch.filters), "amplitude_max": arch.amplitude_max, "precision": arch.precision},
        "compute": compute_record(fit_model),
        "training": {**study.to_dict()["training"], "seed": seed_int, "loss": loss_name},
        "history": {k: v for k, v in checks.items() if k.endswith("loss") or k == "epochs_run"},
        "data": {
            "dose": float(dose),
            "view": view_name,
            "seed": int(seed),
            "train": {"path": str(train_path), "sha256": sha256_file(train_path)},
            "view_file": {"path": str(view_path), "sha256": sha256_file(view_path)},
            "n_samples_train": int(tr_idx.size),
            "n_samples_validation": int(va_idx.size),
            "validation": strip.record(),
        },
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "provenance": provenance(study),
    }
    save_bundle(out_model, out_sidecar, obj_model, sidecar)
    checks["reload_max_abs_difference"] = verify_reload(obj_model, out_model, out_sidecar, x, N=N, channels=channels, probe=train.probe)

    atomic_write_text(out_history, history_csv(history))
    loss_figure(out_figure, history, f"{method.value}, dose {dose:.3g}, view {view_name}, seed {seed}: {loss_name}")
    write_sentinel(
        sentinel_path,
        step="phase_e.train",
        inputs=[str(train_path), str(view_path), *map(str, input_sentinels)] + ([str(ground_truth)] if spec.supervised else []),
        outputs=[str(out_model), str(out_sidecar), str(out_history), str(out_figure)],
        checks=checks,
        config_hash=study.config_hash(),
        wall_time_s=time.perf_counter() - t_start,
        extra={"method": method.value, "dose": float(dose), "view": view_name, "seed": int(seed)},
    )
    log.info("%s trained: %s", method.value, json.dumps(checks))
    return checks
