"""Free pixels: the detector pixels both refiners hold out of their fit, and the deviance that stops them.

PtyChi and PtychoPINN_TTR fit the same Poisson likelihood to the same test
counts, so one data-only stopping rule serves both (``stopping`` in the
configuration). A fixed random fraction of the N x N detector pixels, the
same in every pattern of a replicate (:func:`free_pixel_mask`, from its own
recorded stream), is left out of both fits: pty-chi's ``valid_pixel_mask``,
the masked Poisson loss of the refinement. The Poisson noise of a free pixel
is independent of every fitted one, so a fit that starts to follow the noise
of the fitted pixels stops improving on the free ones: each refiner stops
where the mean Poisson deviance of the free pixels (:func:`free_deviance`)
stops falling, and keeps its best iterate (the free log-likelihood of
PyNX). Nothing here reads a ground truth.
"""

from __future__ import annotations

import numpy as np

from ptycho_core.streams import free_pixel_entropy

__all__ = ["free_deviance", "free_pixel_mask", "poisson_deviance"]


def free_pixel_mask(N: int, fraction: float, seed: int) -> np.ndarray:
    """(N, N) bool, True on the free (held-out) pixels: ``round(fraction * N**2)`` of them (at least one), drawn
    without replacement from the replicate's stream (:func:`ptycho_core.streams.free_pixel_entropy`); pixel
    ``[i, j]`` is the pattern's pixel in our convention (zero frequency at ``[N/2, N/2]``)."""
    if not 0 < fraction < 1:
        raise ValueError(f"free pixels: expected 0 < fraction < 1, found {fraction}")
    n = max(1, int(round(fraction * N * N)))
    rng = np.random.default_rng(free_pixel_entropy(seed))
    mask = np.zeros(N * N, dtype=bool)
    mask[rng.choice(N * N, size=n, replace=False)] = True
    return mask.reshape(N, N)


def poisson_deviance(counts: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per-pixel Poisson deviance 2 [k log(k / I) - (k - I)] of counts ``k`` under expected counts ``I`` (>= 0;
    0 where I = k; the k = 0 term is 2 I)."""
    k = np.asarray(counts, dtype=np.float64)
    lam = np.maximum(np.asarray(expected, dtype=np.float64), 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_term = np.where(k > 0, k * np.log(k / lam), 0.0)
    return 2.0 * (log_term - (k - lam))


def free_deviance(counts: np.ndarray, expected: np.ndarray, mask: np.ndarray) -> float:
    """Mean Poisson deviance over the free pixels ``mask`` (N, N) of every pattern of ``counts`` and ``expected``
    (..., N, N)."""
    counts, expected = np.asarray(counts), np.asarray(expected)
    if counts.shape != expected.shape or counts.shape[-2:] != mask.shape:
        raise ValueError(
            f"free deviance: expected counts and expected counts of one shape (..., N, N) and a mask (N, N), "
            f"found {counts.shape}, {expected.shape}, {mask.shape}"
        )
    return float(np.mean(poisson_deviance(counts[..., mask], expected[..., mask])))
