"""The networks' learning-rate schedules (ptycho_core.nn.training.optimizer and fit; `training.schedule`).

A cosine schedule must decay from the configured rate to COSINE_FINAL_FRACTION of it over exactly
``epochs`` epochs of batches (the formula of Loshchilov & Hutter without restarts), log the rate of every
epoch in the history, and leave early stopping with its restored best weights in place; the plateau
schedule keeps halving on validation plateaus. The models are a single Dense layer on toy data, so the
file runs in seconds.
"""

from __future__ import annotations

import dataclasses
import math
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ptycho_core.config import TrainingConfig  # noqa: E402
from ptycho_core.nn import training  # noqa: E402

BASE = TrainingConfig(
    filters=(4, 8, 8),
    amplitude_max=2.0,
    epochs=5,
    batch_size=4,
    learning_rate=0.01,
    validation_fraction=0.1,
    early_stopping_patience=10,
    lr_patience=1,
    schedule="cosine",
    precision="float32",
    seed_draw=0,
    warmup_epochs=0,
)


class Batches(keras.utils.PyDataset):
    """Four batches of a noisy linear map, fixed order."""

    def __init__(self, seed: int):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(4, 4, 3)).astype(np.float32)
        self.y = (self.x @ np.array([1.0, -2.0, 0.5], np.float32))[..., None] + 0.1 * rng.normal(size=(4, 4, 1))

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return self.x[i], self.y[i].astype(np.float32)


def fitted(cfg: TrainingConfig):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    train = Batches(0)
    model.compile(optimizer=training.optimizer(cfg, len(train)), loss="mse")
    return training.fit(model, train, Batches(1), cfg, verbose=0).history


def expected_cosine(cfg: TrainingConfig, step: int, steps_per_epoch: int) -> float:
    total = cfg.epochs * steps_per_epoch
    alpha = training.COSINE_FINAL_FRACTION
    t = min(step, total) / total
    return cfg.learning_rate * (alpha + (1 - alpha) * 0.5 * (1 + math.cos(math.pi * t)))


def test_cosine_rate_at_the_start_middle_and_end_of_the_budget():
    opt = training.optimizer(BASE, steps_per_epoch=4)
    schedule = opt._learning_rate  # the schedule object the optimiser evaluates at its iteration count
    for step in (0, 10, 20, 25):
        assert float(schedule(step)) == pytest.approx(expected_cosine(BASE, step, 4), rel=1e-6)
    assert float(schedule(20)) == pytest.approx(BASE.learning_rate * training.COSINE_FINAL_FRACTION, rel=1e-6)


def test_a_warmup_rises_linearly_from_zero_then_the_cosine_decays_over_the_remaining_epochs():
    cfg = dataclasses.replace(BASE, warmup_epochs=1.5)  # 6 of 20 steps
    schedule = training.optimizer(cfg, steps_per_epoch=4)._learning_rate
    for step in (0, 3, 6):
        assert float(schedule(step)) == pytest.approx(cfg.learning_rate * step / 6, rel=1e-6, abs=1e-12)
    alpha = training.COSINE_FINAL_FRACTION
    for step in (6, 13, 20):
        t = (step - 6) / 14
        expected = cfg.learning_rate * (alpha + (1 - alpha) * 0.5 * (1 + math.cos(math.pi * t)))
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-6)
    assert float(schedule(20)) == pytest.approx(cfg.learning_rate * alpha, rel=1e-6)  # the run still ends at 1 %


def test_a_warmup_without_the_cosine_or_without_steps_left_to_decay_is_refused():
    with pytest.raises(ValueError, match="training.warmup_epochs"):
        training.optimizer(dataclasses.replace(BASE, schedule="plateau", warmup_epochs=1), steps_per_epoch=4)
    with pytest.raises(ValueError, match="leave no decay"):
        training.optimizer(dataclasses.replace(BASE, warmup_epochs=5), steps_per_epoch=4)


def test_cosine_fit_logs_the_decaying_rate_of_every_epoch():
    history = fitted(BASE)
    rates = history["learning_rate"]
    assert len(rates) == BASE.epochs == len(history["val_loss"])
    # logged at the end of epoch e, after 4 e optimiser steps
    for e, rate in enumerate(rates, start=1):
        assert rate == pytest.approx(expected_cosine(BASE, 4 * e, 4), rel=1e-5)
    assert rates[-1] == pytest.approx(BASE.learning_rate * training.COSINE_FINAL_FRACTION, rel=1e-5)


def test_plateau_schedule_halves_the_rate_on_validation_plateaus():
    # a rate far too high for the problem: the validation loss stops improving, the rate halves
    cfg = dataclasses.replace(BASE, schedule="plateau", learning_rate=5.0, epochs=6)
    rates = fitted(cfg)["learning_rate"]
    assert rates[0] == pytest.approx(5.0)
    assert min(rates) < 5.0
    assert all(r in (pytest.approx(5.0 / 2**k) for k in range(7)) for r in rates)


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="training.schedule"):
        training.optimizer(dataclasses.replace(BASE, schedule="linear"), steps_per_epoch=4)
