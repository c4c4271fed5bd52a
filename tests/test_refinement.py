"""Test-time refinement's convergence measure (ptycho_core.nn.refinement).

The refinement stops on the Poisson deviance, loss - saturated, where the
saturated value is the loss of the model I = k. That value must be the one
Keras' epoch loss reaches for that model, over the same groups (patterns
shared by overlapping groups counted as often as the loss counts them), so
that the deviance is >= 0 and 0 exactly at I = k.
"""

from __future__ import annotations

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ptycho_core.nn import models, training  # noqa: E402
from ptycho_core.nn.refinement import saturated_nll  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def test_saturated_nll_is_the_epoch_loss_of_the_model_that_predicts_the_counts():
    rng = np.random.default_rng(3)
    n, N = 12, 16
    # patterns of very different brightness, so that counting one twice moves the mean
    sqrt_counts = np.sqrt(rng.poisson(rng.uniform(0.1, 400.0, size=(n, 1, 1)) * np.ones((1, N, N)))).astype(np.float32)
    positions = rng.uniform(20, 40, size=(n, 2))
    groups = np.array([[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 0], [9, 10, 11, 3], [3, 0, 6, 9]])  # overlapping groups
    batches = training.GroupBatches(sqrt_counts, positions, groups, batch_size=2)
    # Keras' epoch loss: batch losses averaged with the batch sizes as weights
    total, count = 0.0, 0
    for i in range(len(batches)):
        (x, _), y = batches[i]
        total += float(np.asarray(models.poisson_loss(y.astype(np.float64), y.astype(np.float64)))) * x.shape[0]
        count += x.shape[0]
    epoch_loss = total / count
    # the batches square float32 amplitudes in float32 (relative rounding 6e-8 per count), saturated_nll in float64
    assert saturated_nll(sqrt_counts, groups.ravel()) == pytest.approx(epoch_loss, rel=1e-6)
    # counting each pattern once is a different number here: the check can fail
    assert abs(saturated_nll(sqrt_counts, np.unique(groups)) - epoch_loss) > 1.0


# --------------------------------------------------------------------------
# free pixels: held out of the fit, of the network's input, and the stopping rule
# --------------------------------------------------------------------------


def test_free_pixels_never_reach_the_network_input():
    from ptycho_core.nn.refinement import fill_free_pixels
    from ptycho_core.sampling.free_pixels import free_pixel_mask

    rng = np.random.default_rng(5)
    N = 16
    free = free_pixel_mask(N, 0.1, seed=0)
    assert free.sum() == round(0.1 * N * N)
    x = np.sqrt(rng.poisson(50.0, size=(3, N, N))).astype(np.float32)
    filled = fill_free_pixels(x, free)
    np.testing.assert_array_equal(filled[:, ~free], x[:, ~free])  # fitted pixels unchanged
    # a free pixel's own value does not matter: garbage there leaves the input unchanged
    garbage = x.copy()
    garbage[:, free] = 1e4
    np.testing.assert_array_equal(fill_free_pixels(garbage, free), filled)
    # and it is the mean of its fitted 4-neighbours
    r, c = np.argwhere(free)[0]
    neighbours = [((r + dr) % N, (c + dc) % N) for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    fitted = [x[0, i, j] for i, j in neighbours if not free[i, j]]
    assert filled[0, r, c] == pytest.approx(np.mean(fitted) if fitted else 0.0, rel=1e-6)


def test_the_masked_losses_split_the_pixels_and_vanish_at_the_saturated_model():
    from ptycho_core.nn.refinement import masked_poisson_loss, saturated_nll
    from ptycho_core.sampling.free_pixels import free_deviance, free_pixel_mask

    rng = np.random.default_rng(6)
    n, N = 10, 16
    free = free_pixel_mask(N, 0.2, seed=3)
    sqrt_counts = np.sqrt(rng.poisson(rng.uniform(1, 300, size=(n, 1, 1)) * np.ones((1, N, N)))).astype(np.float32)
    k = np.square(sqrt_counts.astype(np.float64))[..., None]  # (n, N, N, 1)
    lam = k * rng.uniform(0.5, 1.5, size=k.shape) + 0.1
    fitted, held = masked_poisson_loss(~free, "fitted_nll"), masked_poisson_loss(free, "free_nll")
    nll = lam - k * np.log(lam + 1e-6)
    assert np.asarray(fitted(k, lam)).shape == (n,)  # one value per sample
    assert np.mean(fitted(k, lam)) == pytest.approx(nll[:, ~free].mean(), rel=1e-5)
    assert np.mean(held(k, lam)) == pytest.approx(nll[:, free].mean(), rel=1e-5)
    assert fitted.__name__ == "fitted_nll" and held.__name__ == "free_nll"
    # the saturated model I = k: the free loss equals its saturated value, so the free deviance is 0 there
    rows = np.arange(n)
    assert np.mean(held(k, k)) == pytest.approx(saturated_nll(sqrt_counts, rows, free), rel=1e-6)
    # 2 (NLL - saturated) is the mean Poisson deviance of sampling.free_pixels (the rule PtyChi follows)
    expected = free_deviance(k[..., 0], lam[..., 0], free)
    assert 2 * (np.mean(held(k, lam)) - saturated_nll(sqrt_counts, rows, free)) == pytest.approx(expected, rel=1e-4)


def test_the_free_metric_averaged_over_an_epoch_is_the_saturated_value_at_i_equals_k():
    """Keras averages a metric over an epoch batch by batch; with a short last batch and patterns of very different
    brightness, only per-sample values give the member-weighted mean that saturated_nll computes (a scalar per batch
    gave a free deviance of -1.6 in a real refinement)."""
    import keras

    from ptycho_core.nn.refinement import masked_poisson_loss, saturated_nll
    from ptycho_core.sampling.free_pixels import free_pixel_mask

    rng = np.random.default_rng(8)
    n, N = 12, 16
    free = free_pixel_mask(N, 0.1, seed=1)
    sqrt_counts = np.sqrt(rng.poisson(rng.uniform(0.1, 400.0, size=(n, 1, 1)) * np.ones((1, N, N)))).astype(np.float32)
    groups = np.array([[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 0], [9, 10, 11, 3], [3, 0, 6, 9]])
    batches = training.GroupBatches(sqrt_counts, rng.uniform(20, 40, size=(n, 2)), groups, batch_size=2)
    metric = keras.metrics.MeanMetricWrapper(masked_poisson_loss(free, "free_nll"))
    for i in range(len(batches)):  # 2 + 2 + 1 groups, as fit sees them
        _, y = batches[i]
        metric.update_state(y.astype(np.float64), y.astype(np.float64))
    assert float(metric.result()) == pytest.approx(saturated_nll(sqrt_counts, groups.ravel(), free), rel=1e-5)


def test_the_stop_keeps_the_starting_network_when_the_free_deviance_never_falls():
    import keras

    from ptycho_core.nn.refinement import FreeDevianceStop

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    start = [w.copy() for w in model.get_weights()]
    stop = FreeDevianceStop(saturated=0.0, saturated_free=0.0, start=1.0, min_improvement=0.01, patience=2)
    stop.set_model(model)
    stop.on_train_begin()
    for epoch, free_nll in enumerate((0.7, 0.6)):  # free deviance 1.4, 1.2: worse than the start (1.0)
        model.set_weights([w + 1.0 for w in model.get_weights()])
        logs = {"val_loss": 0.1, "val_free_nll": free_nll}
        stop.on_epoch_end(epoch, logs)
        assert logs["free_deviance"] == pytest.approx(2 * free_nll) and logs["deviance"] == pytest.approx(0.2)
    assert stop.converged and model.stop_training and stop.best_check == 0
    stop.on_train_end()
    for a, b in zip(model.get_weights(), start):
        np.testing.assert_array_equal(a, b)


def test_the_stop_keeps_the_best_check():
    import keras

    from ptycho_core.nn.refinement import FreeDevianceStop

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    stop = FreeDevianceStop(saturated=0.0, saturated_free=0.0, start=1.0, min_improvement=0.01, patience=3)
    stop.set_model(model)
    stop.on_train_begin()
    kept = None
    for epoch, free_nll in enumerate((0.45, 0.30, 0.299, 0.35, 0.40)):  # 0.299: not a 1 % improvement on 0.30
        model.set_weights([w + 1.0 for w in model.get_weights()])
        if epoch == 1:
            kept = [w.copy() for w in model.get_weights()]
        stop.on_epoch_end(epoch, {"val_loss": 0.1, "val_free_nll": free_nll})
    assert stop.best_check == 2 and stop.best == pytest.approx(0.6) and stop.converged
    stop.on_train_end()
    for a, b in zip(model.get_weights(), kept):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------
# counted in optimiser steps: an endless stream of groups, checked on a fixed set
# --------------------------------------------------------------------------


def test_the_step_stream_serves_every_group_once_per_pass_and_is_a_function_of_its_seed():
    from ptycho_core.nn.refinement import RoundBatches

    rng = np.random.default_rng(11)
    n, N = 10, 8
    sqrt_counts = rng.uniform(0, 3, size=(n, N, N)).astype(np.float32)
    groups = np.arange(n)[:, None] * np.ones((1, 4), dtype=int)  # group g: pattern g four times
    batches = training.GroupBatches(sqrt_counts, rng.uniform(0, 9, size=(n, 2)), groups, batch_size=3)

    def served(stream, rounds):
        seen = []
        for _ in range(rounds):
            for i in range(len(stream)):
                (x, _), _ = stream[i]
                seen += [int(np.argmin(np.abs(sqrt_counts - x[j, ..., 0]).sum(axis=(1, 2)))) for j in range(len(x))]
            stream.on_epoch_end()
        return seen

    stream = RoundBatches(batches, steps=5, seed=7)
    assert stream.per_pass == 4 and len(stream) == 5  # 10 groups in batches of 3: 3 + 3 + 3 + 1
    seen = served(stream, rounds=4)  # 20 batches: five passes, each a permutation of the ten groups
    passes = [seen[p * 10 : (p + 1) * 10] for p in range(5)]
    assert all(sorted(p) == list(range(n)) for p in passes)
    assert len({tuple(p) for p in passes}) > 1  # reshuffled between passes
    assert served(RoundBatches(batches, steps=5, seed=7), rounds=4) == seen  # a function of the seed
    assert served(RoundBatches(batches, steps=5, seed=8), rounds=4) != seen


def test_the_check_set_is_every_group_or_a_fixed_draw():
    from ptycho_core.nn.refinement import check_set

    np.testing.assert_array_equal(check_set(40, 256, seed=3), np.arange(40))
    drawn = check_set(1444, 256, seed=3)
    assert drawn.size == 256 and np.unique(drawn).size == 256 and np.all(np.diff(drawn) > 0)
    np.testing.assert_array_equal(check_set(1444, 256, seed=3), drawn)
    assert not np.array_equal(check_set(1444, 256, seed=4), drawn)
