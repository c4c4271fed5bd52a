"""Test-time refinement's convergence measure (ptycho_core.nn.refinement) and the stopping rule both refiners
share (ptycho_core.sampling.free_pixels).

The refinement fits the fitted pixels' Poisson NLL and stops on the free
pixels' Poisson deviance, scored per check group on a fixed check set with
the same function PtyChi's checks use. A check improves only where the
paired per-unit gain on the best iterate exceeds ``standard_errors``
standard errors: a gain within the free pixels' Poisson noise is no
improvement.
"""

from __future__ import annotations

import math
import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ptycho_core.nn import training  # noqa: E402
from ptycho_core.sampling.free_pixels import free_pixel_mask, improvement, pattern_deviance  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


# --------------------------------------------------------------------------
# the rule: a gain counts only beyond the free pixels' noise
# --------------------------------------------------------------------------


def test_the_rule_compares_paired_units_against_their_standard_error():
    rng = np.random.default_rng(0)
    incumbent = rng.uniform(0.5, 1.5, size=400)
    noise = rng.normal(0.0, 0.1, size=400)  # the standard error of the mean difference: 0.1 / 20 = 0.005
    se = float(np.std(noise, ddof=1) / 20)
    for shift, expected in ((3 * se, True), (1 * se, False), (-3 * se, False)):
        step = improvement(incumbent - shift - (noise - noise.mean()), incumbent, standard_errors=2.0)
        assert step.gain == pytest.approx(shift, rel=1e-9) and step.standard_error == pytest.approx(se, rel=1e-9)
        assert step.improved is expected
    # pairing: a common offset of every unit is no noise (unpaired, the spread of the units, 0.29, would hide it)
    assert improvement(incumbent - 1e-3, incumbent, standard_errors=2.0).improved
    # the first candidate improves if finite; a non-finite one never does
    assert improvement(incumbent, None, 2.0).improved and not improvement(incumbent * np.nan, None, 2.0).improved
    assert not improvement(incumbent * np.nan, incumbent, 0.0).improved
    with pytest.raises(ValueError, match="paired units"):
        improvement(incumbent[:3], incumbent, 2.0)


def test_the_rule_rarely_accepts_a_model_no_better_on_the_free_pixels_and_always_a_better_one():
    """Poisson counts of a known intensity; units of 50 free pixels (a pattern's worth at N = 32, 5 %). Two models
    off by +-5 % are equally good in expectation (to O(eps^3)): the candidate wins by noise alone, and z = 2 accepts
    it at the one-sided normal rate 2.3 % (binomial sd over 600 draws: 0.6 %). The true intensity against a model
    off by 30 % is a real gain: accepted every time."""
    rng = np.random.default_rng(1)
    units, pixels, draws = 300, 50, 600
    intensity = rng.uniform(0.05, 3.0, size=(units, pixels))  # a low-dose pattern's free pixels
    accepted_null = accepted_real = 0
    for _ in range(draws):
        k = rng.poisson(intensity).astype(np.float64)

        def units_of(model):
            return pattern_deviance(k[..., None, None], model[..., None, None], np.ones((1, 1), dtype=bool)).mean(
                axis=-1
            )

        accepted_null += improvement(units_of(intensity * 0.95), units_of(intensity * 1.05), 2.0).improved
        accepted_real += improvement(units_of(intensity), units_of(intensity * 1.3), 2.0).improved
    rate = accepted_null / draws
    one_sided = 0.5 * math.erfc(2.0 / math.sqrt(2.0))
    assert abs(rate - one_sided) <= 4 * math.sqrt(one_sided * (1 - one_sided) / draws), rate
    assert accepted_real == draws


# --------------------------------------------------------------------------
# free pixels: held out of the fit, of the network's input, and scored on the check set
# --------------------------------------------------------------------------


def test_free_pixels_never_reach_the_network_input():
    from ptycho_core.nn.refinement import fill_free_pixels

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


def test_the_masked_loss_fits_only_the_fitted_pixels():
    from ptycho_core.nn.refinement import masked_poisson_loss

    rng = np.random.default_rng(6)
    n, N = 10, 16
    free = free_pixel_mask(N, 0.2, seed=3)
    k = rng.poisson(rng.uniform(1, 300, size=(n, 1, 1)) * np.ones((1, N, N))).astype(np.float64)[..., None]
    lam = k * rng.uniform(0.5, 1.5, size=k.shape) + 0.1
    fitted = masked_poisson_loss(~free)
    nll = lam - k * np.log(lam + 1e-6)
    assert np.asarray(fitted(k, lam)).shape == (n,)  # one value per sample
    assert np.mean(fitted(k, lam)) == pytest.approx(nll[:, ~free].mean(), rel=1e-5)
    # garbage on the free pixels does not move it: the check can fail (garbage on a fitted pixel does)
    garbage = k.copy()
    garbage[:, free] = 1e4
    assert np.mean(fitted(garbage, lam)) == pytest.approx(np.mean(fitted(k, lam)), rel=1e-6)
    garbage[:, ~free] += 1.0
    assert abs(np.mean(fitted(garbage, lam)) - np.mean(fitted(k, lam))) > 1e-3


class _Echo:
    """A stand-in for the refinement model: predicts ``scale`` times the intensity ``truth`` of each group."""

    def __init__(self, truth):
        self.truth, self.scale = truth, 1.0

    def predict(self, batches, verbose=0):
        return self.scale * self.truth[batches.order]  # in the order the batches serve the groups


def _check_cell(seed=7, n=12, N=16, C=4):
    rng = np.random.default_rng(seed)
    intensity = rng.uniform(0.1, 50.0, size=(n, 1, 1)) * rng.uniform(0.5, 1.5, size=(n, N, N))
    sqrt_counts = np.sqrt(rng.poisson(intensity)).astype(np.float32)
    groups = np.array([[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 0], [9, 10, 11, 3], [3, 0, 6, 9]])
    batches = training.GroupBatches(sqrt_counts, rng.uniform(20, 40, size=(n, 2)), groups, batch_size=2)
    return intensity, sqrt_counts, groups, batches


def test_the_check_set_scores_each_group_with_the_deviance_ptychi_uses():
    from ptycho_core.nn.refinement import CheckSet

    intensity, sqrt_counts, groups, batches = _check_cell()
    free = free_pixel_mask(16, 0.1, seed=1)
    check = CheckSet(batches, free)
    model = _Echo(np.moveaxis(intensity[groups], 1, -1))  # (G, N, N, C), as the refinement model predicts
    free_dev, fitted_dev = check.deviances(model)
    counts = np.rint(np.square(sqrt_counts.astype(np.float64)))
    for g, members in enumerate(groups):
        assert free_dev[g] == pytest.approx(pattern_deviance(counts[members], intensity[members], free).mean())
        assert fitted_dev[g] == pytest.approx(pattern_deviance(counts[members], intensity[members], ~free).mean())
    # the model I = k has deviance 0 (the saturated model); the true intensity does not
    model.truth = np.moveaxis(counts[groups], 1, -1)
    assert np.allclose(check.deviances(model), 0.0) and free_dev.min() > 0


def _stop_run(free_per_check, start, standard_errors=2.0, patience=2):
    """Run a FreeDevianceStop over checks whose per-group free deviances are ``free_per_check``; the model's weights
    change every check. Returns (stop, weights kept at each check, model)."""
    import keras

    from ptycho_core.nn.refinement import FreeDevianceStop

    class Scripted:
        def __init__(self):
            self.i = -1

        def deviances(self, model):
            self.i += 1
            return np.asarray(free_per_check[self.i]), np.zeros(len(start))

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    stop = FreeDevianceStop(Scripted(), np.asarray(start), standard_errors, patience)
    stop.set_model(model)
    stop.on_train_begin()
    weights = [[w.copy() for w in model.get_weights()]]
    for epoch in range(len(free_per_check)):
        if getattr(model, "stop_training", False):
            break
        model.set_weights([w + 1.0 for w in model.get_weights()])
        weights.append([w.copy() for w in model.get_weights()])
        logs = {}
        stop.on_epoch_end(epoch, logs)
        assert logs["free_deviance"] == pytest.approx(np.mean(free_per_check[epoch]))
        assert {"deviance", "free_gain", "free_gain_se"} <= set(logs)
    stop.on_train_end()
    return stop, weights, model


def test_the_stop_keeps_the_starting_network_when_the_free_deviance_never_falls():
    start = np.linspace(1.0, 2.0, 20)
    stop, weights, model = _stop_run([start + 0.4, start + 0.2], start)
    assert stop.converged and model.stop_training and stop.best_check == 0
    for a, b in zip(model.get_weights(), weights[0]):
        np.testing.assert_array_equal(a, b)


def test_the_stop_keeps_the_best_check_and_ignores_gains_within_the_noise():
    rng = np.random.default_rng(3)
    start = np.linspace(1.0, 2.0, 100)
    noise = rng.normal(0, 0.05, size=(5, 100))  # standard error of a paired mean: about 0.007
    noise[2] += noise[1].mean() - noise[2].mean()  # check 3 is 0.005 lower than check 2 on average, exactly
    checks = [
        start - 0.3 + noise[0],  # a real gain (40 standard errors)
        start - 0.5 + noise[1],  # a real gain on the best
        start - 0.505 + noise[2],  # lower on average, within the noise: no improvement
        start - 0.4 + noise[3],
        start - 0.4 + noise[4],
    ]
    stop, weights, model = _stop_run(checks, start, patience=3)
    assert stop.best_check == 2 and stop.best == pytest.approx(np.mean(checks[1])) and stop.converged
    for a, b in zip(model.get_weights(), weights[2]):
        np.testing.assert_array_equal(a, b)
    # with no noise margin the 0.5 % gain would have counted
    stop, _, _ = _stop_run(checks, start, standard_errors=0.0, patience=3)
    assert np.mean(checks[1]) - np.mean(checks[2]) == pytest.approx(0.005) and stop.best_check == 3


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


# --------------------------------------------------------------------------
# the warm-up: a fresh Adam starts below the full rate
# --------------------------------------------------------------------------


def test_the_warm_up_raises_the_rate_linearly_then_leaves_it_at_the_full_rate():
    import keras

    from ptycho_core.nn.refinement import WarmUp

    class Rates(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_train_batch_begin(self, batch, logs=None):  # after the warm-up's own batch-begin
            self.seen.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    x = np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32)
    rates = Rates()
    model.fit(x, x[:, :1], batch_size=2, epochs=2, callbacks=[WarmUp(0.01, 4), rates], verbose=0)  # 12 steps
    assert rates.seen == pytest.approx([0.0025, 0.005, 0.0075, 0.01] + [0.01] * 8, rel=1e-6)
