"""Test-time refinement (method PtychoPINN_TTR); its workflow step is :mod:`ptycho_core.steps.refine`.

An unsupervised network can be refined on the very counts it reconstructs:
a copy of the trained PtychoPINN bundle is fine-tuned on the view's test
groups with the same physics (:class:`ptycho_core.nn.models.DiffractionPhysics`,
the known probe) and the same Poisson loss. It sees the test split's
measured counts and positions only, exactly the data the iterative arm
gets; never a label, never the ground truth.

**Convergence.** The loss is the mean Poisson NLL, I - k log I, per pixel.
Its value for the saturated model (I = k, the counts themselves) is a
constant of the data, so loss - saturated = the mean Poisson deviance per
pixel (/2), >= 0, the distance of the model from the data in units that do
not depend on the dose's offset. An epoch improves when the deviance falls
by more than ``min_improvement`` of the best so far; after ``patience``
epochs without improvement the refinement stops and the best weights are
restored. Reaching ``max_epochs`` first is recorded as not converged (the
result is still used and the sentinel says so).

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

from ptycho_core.config import RefinementConfig
from ptycho_core.nn.physics import EPS

log = logging.getLogger(__name__)


def saturated_nll(sqrt_counts: np.ndarray, rows: np.ndarray) -> float:
    """Mean of k - k log(k + EPS) over the pixels of ``rows``: the loss of the model I = k.

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
        total += float(np.sum(k - k * np.log(k + EPS)))
        n += k.size
    return total / n


class DevianceStop(keras.callbacks.Callback):
    """Stop when the Poisson deviance stops improving by a relative margin; keep the best weights.

    Adds ``deviance`` (loss - saturated) to each epoch's logs, before the
    learning-rate schedule and the history read them.
    """

    def __init__(self, saturated: float, min_improvement: float, patience: int):
        super().__init__()
        self.saturated = float(saturated)
        self.min_improvement = float(min_improvement)
        self.patience = int(patience)
        self.best = math.inf
        self.best_epoch = -1
        self.best_weights = None
        self.wait = 0
        self.converged = False

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        deviance = float(logs["loss"]) - self.saturated
        logs["deviance"] = deviance
        improved = math.isfinite(deviance) and (
            self.best_epoch < 0 or deviance < self.best - self.min_improvement * abs(self.best)
        )
        if improved:
            self.best, self.best_epoch, self.wait = deviance, epoch, 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.converged = True
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def refine(
    obj_model: keras.Model,
    sqrt_counts: np.ndarray,
    positions: np.ndarray,
    groups: np.ndarray,
    probe: np.ndarray,
    cfg: RefinementConfig,
    seed: int,
    verbose: int = 2,
) -> dict:
    """Fine-tune ``obj_model`` in place on ``groups`` of the measured counts; returns history and convergence record."""
    from ptycho_core.nn import models, training
    from ptycho_core.nn.backend import compute_record

    keras.utils.set_random_seed(int(seed))
    rng = np.random.default_rng(int(seed))
    canvas = models.canvas_size_for(training.group_offsets(positions, groups), probe.shape[-1])
    fit_model = models.build_pinn_training_model(obj_model, probe, canvas)
    fit_model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate, name="adam"), loss=models.poisson_loss)
    batches = training.GroupBatches(sqrt_counts, positions, groups, cfg.batch_size, rng=rng)
    saturated = saturated_nll(sqrt_counts, groups.ravel())
    before = float(fit_model.evaluate(batches, verbose=0)) - saturated
    stop = DevianceStop(saturated, cfg.min_improvement, cfg.patience)
    callbacks = [
        stop,
        keras.callbacks.ReduceLROnPlateau(
            monitor="deviance", factor=0.5, patience=cfg.lr_patience, min_lr=1e-6, min_delta=0.0, mode="min"
        ),
    ]
    t0 = time.perf_counter()
    history = fit_model.fit(batches, epochs=cfg.max_epochs, callbacks=callbacks, verbose=verbose).history
    seconds = time.perf_counter() - t0
    return {
        "history": history,
        "deviance_before": before,
        "deviance_best": stop.best,
        "best_epoch": stop.best_epoch + 1,
        "epochs_run": len(history["loss"]),
        "converged": stop.converged,
        "refine_seconds": seconds,
        "canvas_size": canvas,
        "saturated_nll": saturated,
        "compute": compute_record(fit_model),
    }
