"""Training data and training loops for PtychoPINN and the Baseline.

Batches are gathered on the fly from the ungrouped simulated arrays through the
view's group indices (:class:`GroupBatches`), so the grouped data set is
never materialised, whatever the oversampling.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass

import keras
import numpy as np

from ptycho_core.config import TrainingConfig
from ptycho_core.physics.forward import extract_patches

log = logging.getLogger(__name__)


def input_scale(sqrt_counts: np.ndarray, N: int) -> float:
    """Normalisation of the network input: scale * sqrt(counts) has mean sum of squares (N/2)^2 per pattern."""
    mean_counts = float(np.mean(np.sum(np.square(sqrt_counts, dtype=np.float64), axis=(-2, -1))))
    if not mean_counts > 0:
        raise ValueError("input scale: the training patterns hold no counts")
    return math.sqrt((N / 2) ** 2 / mean_counts)


def group_offsets(positions: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Positions of each group's members relative to the group centre, (G, C, 2) float32."""
    p = positions[groups]
    return (p - p.mean(axis=1, keepdims=True)).astype(np.float32)


def support_patches(obj: np.ndarray, positions: np.ndarray, N: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth amplitude and phase on the central N/2 x N/2 support at each position."""
    patches = extract_patches(obj, positions[:, 0], positions[:, 1], N)
    q = N // 4
    centre = patches[:, q : q + N // 2, q : q + N // 2]
    return np.abs(centre).astype(np.float32), np.angle(centre).astype(np.float32)


def target_spread(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean absolute deviation of support patches (n, P, P) about their weighted mean.

    The MAE of the best constant prediction (up to the median/mean
    difference): the natural unit of a quantity's error.
    """
    w = np.broadcast_to(weights, values.shape).astype(np.float64)
    mean = float(np.sum(w * values) / np.sum(w))
    spread = float(np.sum(w * np.abs(values - mean)) / np.sum(w))
    if not spread > 0:
        raise ValueError("target spread: the training targets are constant where the probe is bright")
    return spread


class GroupBatches(keras.utils.PyDataset):
    """Batches of groups gathered from ungrouped arrays.

    PtychoPINN (``targets`` None): inputs (sqrt counts (b, N, N, C), offsets
    (b, C, 2)), target counts (b, N, N, C); ``inputs`` (same shape as
    ``sqrt_counts``), when given, is what the network sees instead of the
    measured sqrt counts (test-time refinement: free pixels filled). Baseline (``targets`` = (amplitude,
    phase) per row, C = 1): input sqrt counts (b, N, N, 1), targets amplitude
    and phase (b, N/2, N/2, 1).
    """

    def __init__(self, sqrt_counts, positions, groups, batch_size, rng=None, targets=None, inputs=None, **kwargs):
        super().__init__(**kwargs)
        self.sqrt_counts = sqrt_counts
        self.inputs = (
            sqrt_counts if inputs is None else inputs
        )  # what the network sees (refinement: free pixels filled)
        self.positions = positions
        self.groups = groups
        self.batch_size = int(batch_size)
        self.rng = rng
        self.targets = targets
        self.order = np.arange(len(groups))
        if rng is not None:
            rng.shuffle(self.order)

    def __len__(self):
        return math.ceil(len(self.groups) / self.batch_size)

    def __getitem__(self, i):
        return self.batch(self.order[i * self.batch_size : (i + 1) * self.batch_size])

    def batch(self, samples: np.ndarray):
        """The batch of the samples (indices into ``groups``) ``samples``."""
        g = self.groups[samples]
        x = np.moveaxis(self.inputs[g], 1, -1)  # (b, N, N, C)
        if self.targets is not None:
            amp, phase = self.targets
            return x, (np.moveaxis(amp[g], 1, -1), np.moveaxis(phase[g], 1, -1))
        counts = x if self.inputs is self.sqrt_counts else np.moveaxis(self.sqrt_counts[g], 1, -1)
        return (x, group_offsets(self.positions, g)), np.square(counts)

    def on_epoch_end(self):
        if self.rng is not None:
            self.rng.shuffle(self.order)


@dataclass(frozen=True)
class ValidationStrip:
    """A spatially held-out validation strip of the training region (indices into the sample list)."""

    train: np.ndarray
    validation: np.ndarray
    axis: str
    cut_px: float  # validation samples have their centre below this coordinate
    validation_reach_px: float  # largest member coordinate of a validation sample
    guard_px: float
    n_dropped_in_guard: int

    def record(self) -> dict:
        return {
            "policy": "spatial strip at the training region's far end from the test region, guard band between",
            "axis": self.axis,
            "cut_px": self.cut_px,
            "validation_reach_px": self.validation_reach_px,
            "guard_px": self.guard_px,
            "n_train": int(self.train.size),
            "n_validation": int(self.validation.size),
            "n_dropped_in_guard": int(self.n_dropped_in_guard),
        }


def validation_strip(
    positions: np.ndarray, groups: np.ndarray, fraction: float, axis: str, guard: float
) -> ValidationStrip:
    """Hold out a strip of the training region for validation, with a guard band.

    The training region lies below the split boundary along ``axis`` (phase
    C puts the test region above it), so the strip is taken at the low end,
    farthest from the test region: the samples (groups, or single rows as
    groups of one) whose centre lies in the lowest ``fraction`` of sample
    centres. Samples with any member closer than ``guard`` pixels to the
    strip's farthest member are dropped, so that no training pattern
    illuminates what a validation pattern illuminates (the split's own
    guard, one probe FWHM diameter by default). Early stopping then sees
    over-fitting to the training object instead of its overlapping
    neighbours. ``fraction`` 0 means no validation (every sample trains).
    """
    if axis not in ("x", "y"):
        raise ValueError(f"validation strip: axis expected 'x' or 'y', found {axis!r}")
    n = len(groups)
    if fraction <= 0:
        return ValidationStrip(np.arange(n), np.arange(0), axis, -math.inf, -math.inf, float(guard), 0)
    coord = positions[:, 0 if axis == "x" else 1][groups]  # (n, C)
    centre = coord.mean(axis=1)
    order = np.argsort(centre, kind="stable")
    n_val = max(1, int(round(fraction * n)))
    if n_val >= n:
        raise ValueError(f"validation strip: {n} samples leave none for training with fraction {fraction}")
    cut = float(centre[order[n_val - 1]])
    validation = np.flatnonzero(centre <= cut)
    reach = float(coord[validation].max())
    train = np.flatnonzero(coord.min(axis=1) >= reach + guard)
    if train.size == 0:
        raise ValueError(
            f"validation strip: no training sample lies {guard:.1f} px beyond the validation strip (which reaches "
            f"{axis} = {reach:.1f} px); lower training.validation_fraction or enlarge the training region"
        )
    return ValidationStrip(train, validation, axis, cut, reach, float(guard), n - train.size - validation.size)


#: Final learning rate of the cosine schedule, as a fraction of the initial one.
COSINE_FINAL_FRACTION = 0.01


def optimizer(fit_cfg: TrainingConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam at ``fit_cfg.learning_rate``; under the cosine schedule, decaying over ``epochs * steps_per_epoch``
    steps, the first ``warmup_epochs`` of them a linear rise from 0 (the decay then spans the rest)."""
    rate = fit_cfg.learning_rate
    if fit_cfg.schedule == "cosine":
        total = fit_cfg.epochs * steps_per_epoch
        warmup = int(round(fit_cfg.warmup_epochs * steps_per_epoch))
        if not 0 <= warmup < total:
            raise ValueError(
                f"training.warmup_epochs: {fit_cfg.warmup_epochs} epochs of {steps_per_epoch} steps leave no decay "
                f"in {fit_cfg.epochs} epochs"
            )
        rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else rate,
            decay_steps=total - warmup,
            alpha=COSINE_FINAL_FRACTION,
            warmup_target=rate if warmup else None,
            warmup_steps=warmup,
        )
    elif fit_cfg.warmup_epochs:
        raise ValueError(f"training.warmup_epochs: expected 0 with schedule {fit_cfg.schedule!r}")
    elif fit_cfg.schedule != "plateau":
        raise ValueError(f"training.schedule: expected 'plateau' or 'cosine', found {fit_cfg.schedule!r}")
    return keras.optimizers.Adam(rate, name="adam")  # named: bundle bytes independent of process history


class LearningRateLog(keras.callbacks.Callback):
    """Logs the optimiser's learning rate at the end of each epoch (a schedule is not logged by Keras)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def fit(model: keras.Model, train: GroupBatches, val: GroupBatches | None, fit_cfg: TrainingConfig, verbose: int = 2):
    """Fit by the schedule of ``fit_cfg`` (the model compiled with :func:`optimizer`), early stopping (best weights
    restored) on the validation loss."""
    monitor = "val_loss" if val is not None else "loss"
    if fit_cfg.schedule == "plateau":
        rate = keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=fit_cfg.lr_patience, min_lr=1e-5)
    else:
        rate = LearningRateLog()
    callbacks = [
        rate,
        keras.callbacks.EarlyStopping(
            monitor=monitor, patience=fit_cfg.early_stopping_patience, restore_best_weights=True
        ),
    ]
    return model.fit(train, validation_data=val, epochs=fit_cfg.epochs, callbacks=callbacks, verbose=verbose)


def history_csv(history: dict, index: str = "epoch") -> str:
    """One row per epoch (or per ``index``: a refinement's checks), numbered from 1."""
    keys = list(history)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([index, *keys])
    for i in range(len(history[keys[0]])):
        w.writerow([i + 1, *(repr(float(history[k][i])) for k in keys)])
    return buf.getvalue()


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
