"""Test-time refinement (method PtychoPINN_TTR); its workflow step is :mod:`ptycho_core.steps.refine`.

An unsupervised network can be refined on the very counts it reconstructs:
a copy of the trained PtychoPINN bundle is fine-tuned on the view's test
groups with the same physics (:class:`ptycho_core.nn.models.DiffractionPhysics`,
the known probe) and the same Poisson loss. It sees the test split's
measured counts and positions only, exactly the data the iterative arm
gets; never a label, never the ground truth.

**Counted in optimiser steps.** The test groups are served as one endless
shuffled stream (:class:`RoundBatches`, a new permutation per pass), cut
into checks of ``steps_per_check`` optimiser steps, so that a view's
refinement costs what its steps cost whatever its number of groups (the
sparse view has a sixteenth of the dense view's groups: counted in passes
it got 2 steps where the dense view got 18).

**Stopping: free pixels** (``stopping`` in the configuration, the rule
PtyChi follows too; :mod:`ptycho_core.sampling.free_pixels`). A fixed random
fraction of the detector pixels, the same in every pattern of the replicate,
is held out: the loss is the mean Poisson NLL, I - k log I, over the fitted
pixels only, and the network's input has each free pixel replaced by the
mean of its fitted neighbours (:func:`fill_free_pixels`: a physics-informed
network nearly reproduces its input pattern, so a free pixel's own noise
must not reach it). After every check's steps, the network (inference
mode) is evaluated on a fixed check set of test groups (all of them, or
``check_groups`` drawn once with the refinement's seed): the loss of the
saturated model (I = k) is a constant of the data, so 2 (NLL - saturated)
is the mean Poisson deviance per pixel, >= 0, on the fitted pixels
(``deviance``) and on the free ones (``free_deviance``, never a gradient).
A check improves when the free deviance falls by more than
``min_improvement`` of the best so far, the starting network's included;
after ``patience`` checks without improvement the refinement stops and the
best weights are restored, which may be the starting network's (the
refinement then changed nothing, and says so). Reaching ``max_steps``
first is recorded as not converged. The reconstruction step then predicts
from the full patterns.

Plain PtychoPINN stays in the study: the two answer different questions
(amortised inference vs per-scan refinement); the wall time of this step is
reported beside PtyChi's.
"""

from __future__ import annotations

import logging
import math
import time

import keras
import numpy as np

from ptycho_core.config import RefinementConfig, StoppingConfig
from ptycho_core.nn.physics import EPS

log = logging.getLogger(__name__)


def saturated_nll(sqrt_counts: np.ndarray, rows: np.ndarray, pixels: np.ndarray | None = None) -> float:
    """Mean of k - k log(k + EPS) over the pixels of ``rows`` (only the (N, N) mask ``pixels`` where given): the
    loss of the model I = k.

    ``rows`` with repetitions, as the loss sees them: every member of every
    group (``groups.ravel()``). Keras' epoch loss is the mean over groups
    (batches weighted by their size) of each group's pixel mean, so a
    pattern shared by two groups counts twice; the unique rows would give
    another mean and a deviance off by a constant (negative, for bright
    patterns counted more than once).
    """
    total, n = 0.0, 0
    for start in range(0, rows.size, 1024):
        k = np.square(sqrt_counts[rows[start : start + 1024]], dtype=np.float64)
        if pixels is not None:
            k = k[:, pixels]
        total += float(np.sum(k - k * np.log(k + EPS)))
        n += k.size
    return total / n


def fill_free_pixels(sqrt_counts: np.ndarray, free: np.ndarray) -> np.ndarray:
    """The refinement's network input: each free pixel (``free`` (N, N) True) replaced by the mean of its fitted
    4-neighbours (periodic; 0 if all four are free), every fitted pixel unchanged (float32)."""
    fit = (~free).astype(np.float32)
    x = np.asarray(sqrt_counts, dtype=np.float32)
    shifts = ((1, -2), (-1, -2), (1, -1), (-1, -1))
    total = sum(np.roll(x * fit, s, axis=a) for s, a in shifts)
    count = sum(np.roll(fit, s, axis=a + 2) for s, a in shifts)
    filled = np.where(count > 0, total / np.maximum(count, 1.0), 0.0).astype(np.float32)
    return np.where(free, filled, x)


def masked_poisson_loss(pixels: np.ndarray, name: str):
    """Mean Poisson NLL, I - k log I, over the pixels of the (N, N) mask ``pixels`` of each sample's patterns (counts
    and intensity (B, N, N, C); returns (B,)); a Keras loss or metric called ``name``."""
    from keras import ops

    weight = (pixels / pixels.mean()).astype(np.float32)[None, :, :, None]

    def loss(counts, intensity):
        # one value per sample (group): Keras averages them over the epoch sample by sample, for a loss and a
        # metric alike (a scalar per batch would weigh a short last batch like a full one)
        return ops.mean(weight * (intensity - counts * ops.log(intensity + EPS)), axis=(1, 2, 3))

    loss.__name__ = name
    return loss


class RoundBatches(keras.utils.PyDataset):
    """An endless stream of batches over the groups of ``batches``, a new permutation per pass (drawn from ``seed``
    and the pass number, so the stream is a function of the seed alone), cut into rounds of ``steps`` batches: one
    Keras epoch per round, one stopping check after each."""

    def __init__(self, batches, steps: int, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.batches, self.steps, self.seed, self.round = batches, int(steps), int(seed), 0
        self.n_samples = len(batches.groups)
        self.per_pass = math.ceil(self.n_samples / batches.batch_size)
        self._pass, self._order = -1, None  # the permutation of the pass last served

    def __len__(self):
        return self.steps

    def __getitem__(self, i):
        p, b = divmod(self.round * self.steps + int(i), self.per_pass)
        if p != self._pass:
            self._pass, self._order = p, np.random.default_rng([self.seed, 0, p]).permutation(self.n_samples)
        size = self.batches.batch_size
        return self.batches.batch(self._order[b * size : (b + 1) * size])

    def on_epoch_end(self):
        self.round += 1


def check_set(n_groups: int, size: int, seed: int) -> np.ndarray:
    """The groups (sorted indices) on which every check evaluates the deviances: all ``n_groups`` if at most
    ``size``, else ``size`` of them drawn without replacement from ``seed``."""
    if n_groups <= size:
        return np.arange(n_groups)
    return np.sort(np.random.default_rng([int(seed), 1]).choice(n_groups, size=int(size), replace=False))


class FreeDevianceStop(keras.callbacks.Callback):
    """Stop when the free pixels' Poisson deviance stops improving by a relative margin; keep the best weights.

    Reads the check set's losses (``val_loss``: fitted pixels, ``val_free_nll``: free pixels) and adds
    ``deviance`` and ``free_deviance``, 2 (NLL - saturated) each, to each check's logs, before the learning-rate
    schedule and the history read them. The starting network is the first candidate (``start``: its free
    deviance), so the result is never worse on the free pixels of the check set.
    """

    def __init__(self, saturated: float, saturated_free: float, start: float, min_improvement: float, patience: int):
        super().__init__()
        self.saturated, self.saturated_free = float(saturated), float(saturated_free)
        self.min_improvement = float(min_improvement)
        self.patience = int(patience)
        self.best, self.best_check, self.wait, self.converged = float(start), 0, 0, False
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.best_weights = self.model.get_weights()  # the starting network

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["deviance"] = 2.0 * (float(logs["val_loss"]) - self.saturated)
        free = 2.0 * (float(logs["val_free_nll"]) - self.saturated_free)
        logs["free_deviance"] = free
        if math.isfinite(free) and free < self.best - self.min_improvement * abs(self.best):
            self.best, self.best_check, self.wait = free, epoch + 1, 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.converged = True
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.model.set_weights(self.best_weights)


def refine(
    obj_model: keras.Model,
    sqrt_counts: np.ndarray,
    positions: np.ndarray,
    groups: np.ndarray,
    probe: np.ndarray,
    cfg: RefinementConfig,
    stopping: StoppingConfig,
    free: np.ndarray,
    seed: int,
    verbose: int = 2,
) -> dict:
    """Fine-tune ``obj_model`` in place on ``groups`` of the measured counts, the free pixels ``free`` (N, N) held
    out (:mod:`ptycho_core.sampling.free_pixels`); returns history and stopping record."""
    from ptycho_core.nn import models, training
    from ptycho_core.nn.backend import compute_record

    keras.utils.set_random_seed(int(seed))
    free = np.asarray(free, dtype=bool)
    canvas = models.canvas_size_for(training.group_offsets(positions, groups), probe.shape[-1])
    fit_model = models.build_pinn_training_model(obj_model, probe, canvas)
    fit_model.compile(
        optimizer=keras.optimizers.Adam(cfg.learning_rate, name="adam"),
        loss=masked_poisson_loss(~free, "fitted_nll"),
        metrics=[masked_poisson_loss(free, "free_nll")],
    )
    inputs = fill_free_pixels(sqrt_counts, free)
    batches = training.GroupBatches(sqrt_counts, positions, groups, cfg.batch_size, inputs=inputs)
    stream = RoundBatches(batches, cfg.steps_per_check, seed)
    checked = groups[check_set(len(groups), cfg.check_groups, seed)]
    check = training.GroupBatches(sqrt_counts, positions, checked, cfg.batch_size, inputs=inputs)
    members = checked.ravel()
    saturated, saturated_free = saturated_nll(sqrt_counts, members, ~free), saturated_nll(sqrt_counts, members, free)
    loss0, free0 = (float(v) for v in fit_model.evaluate(check, verbose=0))
    before, before_free = 2.0 * (loss0 - saturated), 2.0 * (free0 - saturated_free)
    stop = FreeDevianceStop(saturated, saturated_free, before_free, stopping.min_improvement, stopping.patience)
    callbacks = [
        stop,
        keras.callbacks.ReduceLROnPlateau(
            monitor="free_deviance", factor=0.5, patience=cfg.lr_patience, min_lr=1e-6, min_delta=0.0, mode="min"
        ),
    ]
    max_checks = math.ceil(cfg.max_steps / cfg.steps_per_check)
    t0 = time.perf_counter()
    history = fit_model.fit(
        stream, validation_data=check, epochs=max_checks, callbacks=callbacks, verbose=verbose
    ).history
    seconds = time.perf_counter() - t0
    checks_run = len(history["loss"])
    return {
        "history": history,
        "deviance_before": before,
        "free_deviance_before": before_free,
        "free_deviance_best": stop.best,
        "best_check": stop.best_check,
        "best_step": stop.best_check * cfg.steps_per_check,
        "improved": stop.best_check > 0,
        "checks_run": checks_run,
        "steps_run": checks_run * cfg.steps_per_check,
        "passes_run": checks_run * cfg.steps_per_check / stream.per_pass,
        "converged": stop.converged,
        "refine_seconds": seconds,
        "n_check_groups": int(len(checked)),
        "canvas_size": canvas,
        "saturated_nll": saturated,
        "saturated_nll_free": saturated_free,
        "n_free_pixels": int(free.sum()),
        "compute": compute_record(fit_model),
    }
