"""Training data and training loops for PtychoPINN and the Baseline.

Batches are gathered on the fly from the ungrouped phase C arrays through the
phase D group indices (:class:`GroupBatches`), so the grouped data set is
never materialised, whatever the oversampling.
"""

from __future__ import annotations

import logging
import math

import keras
import numpy as np

from .config import TrainingConfig
from .forward import extract_patches

log = logging.getLogger(__name__)

TRAIN_STREAM = 4


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


class GroupBatches(keras.utils.PyDataset):
    """Batches of groups gathered from ungrouped arrays.

    PtychoPINN (``targets`` None): inputs (sqrt counts (b, N, N, C), offsets
    (b, C, 2)), target counts (b, N, N, C). Baseline (``targets`` = (amplitude,
    phase) per row, C = 1): input sqrt counts (b, N, N, 1), targets amplitude
    and phase (b, N/2, N/2, 1).
    """

    def __init__(self, sqrt_counts, positions, groups, batch_size, rng=None, targets=None, **kwargs):
        super().__init__(**kwargs)
        self.sqrt_counts = sqrt_counts
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
        g = self.groups[self.order[i * self.batch_size : (i + 1) * self.batch_size]]
        x = np.moveaxis(self.sqrt_counts[g], 1, -1)  # (b, N, N, C)
        if self.targets is not None:
            amp, phase = self.targets
            return x, (np.moveaxis(amp[g], 1, -1), np.moveaxis(phase[g], 1, -1))
        return (x, group_offsets(self.positions, g)), np.square(x)

    def on_epoch_end(self):
        if self.rng is not None:
            self.rng.shuffle(self.order)


def split_validation(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random (seeded) split of n samples into training and validation indices."""
    perm = rng.permutation(n)
    n_val = max(1, int(round(fraction * n))) if fraction > 0 else 0
    if n - n_val < 1:
        raise ValueError(f"validation split: {n} samples leave none for training with fraction {fraction}")
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def fit(model: keras.Model, train: GroupBatches, val: GroupBatches | None, fit_cfg: TrainingConfig, verbose: int = 2):
    """Adam with plateau learning-rate decay and early stopping (best weights restored)."""
    monitor = "val_loss" if val is not None else "loss"
    callbacks = [
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=fit_cfg.lr_patience, min_lr=1e-5),
        keras.callbacks.EarlyStopping(monitor=monitor, patience=fit_cfg.early_stopping_patience, restore_best_weights=True),
    ]
    return model.fit(train, validation_data=val, epochs=fit_cfg.epochs, callbacks=callbacks, verbose=verbose)
