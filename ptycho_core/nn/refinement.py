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
mode) is scored on a fixed check set of test groups (all of them, or
``check_groups`` drawn once with the refinement's seed; :class:`CheckSet`):
the mean Poisson deviance per pixel of each group's counts under the
predicted intensities, on the fitted pixels (``deviance``) and on the free
ones (``free_deviance``, never a gradient). A check improves when its free
deviance is below the best iterate's, the starting network's included, by
more than ``standard_errors`` standard errors of the paired per-group
difference (:func:`ptycho_core.sampling.free_pixels.improvement`); after
``patience`` checks without improvement the refinement stops and the best
weights are restored, which may be the starting network's (the refinement
then changed nothing, and says so). The refinement keeps this reference
even where a later check is within the noise of it (PtyChi keeps such a
later iterate, :mod:`ptycho_core.recon.ptychi`): it starts from a trained
network, an estimate it leaves only on evidence. Reaching ``max_steps``
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
from ptycho_core.sampling.free_pixels import improvement, pattern_deviance

log = logging.getLogger(__name__)


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


def masked_poisson_loss(pixels: np.ndarray):
    """Mean Poisson NLL, I - k log I, over the pixels of the (N, N) mask ``pixels`` of each sample's patterns (counts
    and intensity (B, N, N, C); returns (B,)); the refinement's Keras loss."""
    from keras import ops

    weight = (pixels / pixels.mean()).astype(np.float32)[None, :, :, None]

    def loss(counts, intensity):
        # one value per sample (group): Keras averages them over the epoch sample by sample, for a loss and a
        # metric alike (a scalar per batch would weigh a short last batch like a full one)
        return ops.mean(weight * (intensity - counts * ops.log(intensity + EPS)), axis=(1, 2, 3))

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


class CheckSet:
    """The fixed check set of test groups on which every check scores the network: the Poisson deviance of the
    measured counts under the network's predicted intensities (inference mode), per group, on the free pixels and on
    the fitted ones (:func:`ptycho_core.sampling.free_pixels.pattern_deviance`, the function PtyChi's checks use)."""

    def __init__(self, batches, free: np.ndarray):
        self.batches = batches
        self.free = np.asarray(free, dtype=bool)
        # the measured counts of the check groups (G, C, N, N), integers (squared float32 amplitudes, rounded)
        self.counts = np.rint(np.square(batches.sqrt_counts[batches.groups].astype(np.float64)))

    def deviances(self, model: keras.Model) -> tuple[np.ndarray, np.ndarray]:
        """(free, fitted): per check group, the mean Poisson deviance of its patterns' free and fitted pixels."""
        intensity = np.moveaxis(np.asarray(model.predict(self.batches, verbose=0), dtype=np.float64), -1, 1)
        per_pattern = (pattern_deviance(self.counts, intensity, m) for m in (self.free, ~self.free))
        free, fitted = (np.mean(d, axis=1) for d in per_pattern)
        return free, fitted


class FreeDevianceStop(keras.callbacks.Callback):
    """Stop when the free pixels' Poisson deviance stops improving beyond its noise; keep the best weights.

    After each check's steps the check set is scored (:class:`CheckSet`); ``deviance`` and ``free_deviance``
    (means over the check groups) and the paired comparison of the free deviance with the best iterate's
    (``free_gain``, ``free_gain_se``: :func:`ptycho_core.sampling.free_pixels.improvement`) are added to the
    check's logs, before the learning-rate schedule and the history read them. The starting network is the first
    candidate (``start``: its per-group free deviances), so the result is never worse on the free pixels of the
    check set.
    """

    def __init__(self, check: CheckSet, start: np.ndarray, standard_errors: float, patience: int):
        super().__init__()
        self.check = check
        self.standard_errors = float(standard_errors)
        self.patience = int(patience)
        self.best_units = np.asarray(start, dtype=np.float64)
        self.best, self.best_check, self.wait, self.converged = float(np.mean(start)), 0, 0, False
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.best_weights = self.model.get_weights()  # the starting network

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        free, fitted = self.check.deviances(self.model)
        step = improvement(free, self.best_units, self.standard_errors)
        logs["deviance"], logs["free_deviance"] = float(np.mean(fitted)), float(np.mean(free))
        # nan where there was nothing to compare (a non-finite check, which the refine step then rejects)
        logs["free_gain"] = math.nan if step.gain is None else step.gain
        logs["free_gain_se"] = math.nan if step.standard_error is None else step.standard_error
        if step.improved:
            self.best_units, self.best, self.best_check, self.wait = free, float(np.mean(free)), epoch + 1, 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.converged = True
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.model.set_weights(self.best_weights)


class WarmUp(keras.callbacks.Callback):
    """The learning rate rises linearly to ``rate`` over the first ``steps`` optimiser steps (step k: rate (k + 1) /
    steps), then is left to the other callbacks."""

    def __init__(self, rate: float, steps: int):
        super().__init__()
        self.rate, self.steps, self.step = float(rate), int(steps), 0

    def on_train_batch_begin(self, batch, logs=None):
        if self.step < self.steps:
            self.model.optimizer.learning_rate = self.rate * (self.step + 1) / self.steps
        self.step += 1


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
    fit_model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate, name="adam"), loss=masked_poisson_loss(~free))
    inputs = fill_free_pixels(sqrt_counts, free)
    batches = training.GroupBatches(sqrt_counts, positions, groups, cfg.batch_size, inputs=inputs)
    stream = RoundBatches(batches, cfg.steps_per_check, seed)
    checked = groups[check_set(len(groups), cfg.check_groups, seed)]
    check = CheckSet(training.GroupBatches(sqrt_counts, positions, checked, cfg.batch_size, inputs=inputs), free)
    start_free, start_fitted = check.deviances(fit_model)
    stop = FreeDevianceStop(check, start_free, stopping.standard_errors, stopping.patience)
    callbacks = [WarmUp(cfg.learning_rate, cfg.warmup_steps)] if cfg.warmup_steps else []
    callbacks += [
        stop,
        keras.callbacks.ReduceLROnPlateau(
            monitor="free_deviance", factor=0.5, patience=cfg.lr_patience, min_lr=1e-6, min_delta=0.0, mode="min"
        ),
    ]
    max_checks = math.ceil(cfg.max_steps / cfg.steps_per_check)
    t0 = time.perf_counter()
    history = fit_model.fit(stream, epochs=max_checks, callbacks=callbacks, verbose=verbose).history
    seconds = time.perf_counter() - t0
    checks_run = len(history["loss"])
    return {
        "history": history,
        "deviance_before": float(np.mean(start_fitted)),
        "free_deviance_before": float(np.mean(start_free)),
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
        "n_free_pixels": int(free.sum()),
        "compute": compute_record(fit_model),
    }
