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
