"""Free pixels: the detector pixels both refiners hold out of their fit, and the deviance that stops them.

PtyChi and PtychoPINN_TTR fit the same Poisson likelihood to the same test
counts, so one data-only stopping rule serves both (``stopping`` in the
configuration). A fixed random fraction of the N x N detector pixels, the
same in every pattern of a replicate (:func:`free_pixel_mask`, from its own
recorded stream), is left out of both fits: pty-chi's ``valid_pixel_mask``,
the masked Poisson loss of the refinement. The Poisson noise of a free pixel
is independent of every fitted one, so a fit that starts to follow the noise
of the fitted pixels stops improving on the free ones: each refiner stops
where the mean Poisson deviance of the free pixels (:func:`pattern_deviance`)
stops falling, and keeps its best iterate (the free log-likelihood of
PyNX). Nothing here reads a ground truth.

**When a check improves** (:func:`improvement`). The free deviance of an
iterate is itself a draw: the free pixels' Poisson noise. Two iterates are
scored on the same free pixels, so their difference is paired: per unit
(a pattern for PtyChi, a check group for PtychoPINN_TTR) the incumbent's
free deviance minus the candidate's. The candidate replaces the incumbent
(the best iterate so far) only where the mean of these differences exceeds
``standard_errors`` times its standard error. A relative margin alone
accepted noise: a refinement at 30 photons per pattern kept an iterate whose
free deviance was 0.7 % lower than its start's and whose phase was
0.13 MS-SSIM worse. A slow real improvement still counts: each candidate
is compared with the incumbent, not with the previous check, so the
differences add up until they stand clear of the noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ptycho_core.streams import free_pixel_entropy

__all__ = ["Improvement", "free_pixel_mask", "improvement", "pattern_deviance", "poisson_deviance"]


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


def pattern_deviance(counts: np.ndarray, expected: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean Poisson deviance over the pixels ``mask`` (N, N) of each pattern of ``counts`` and ``expected``
    (..., N, N): an array of shape ``counts.shape[:-2]``."""
    counts, expected, mask = np.asarray(counts), np.asarray(expected), np.asarray(mask, dtype=bool)
    if counts.shape != expected.shape or counts.shape[-2:] != mask.shape:
        raise ValueError(
            f"free deviance: expected counts and expected counts of one shape (..., N, N) and a mask (N, N), "
            f"found {counts.shape}, {expected.shape}, {mask.shape}"
        )
    return np.mean(poisson_deviance(counts[..., mask], expected[..., mask]), axis=-1)


@dataclass(frozen=True)
class Improvement:
    """A candidate iterate against the incumbent (the best so far) on the same free pixels.

    ``gain``: the incumbent's mean free deviance minus the candidate's (> 0: the candidate fits them better);
    ``standard_error``: that of the mean of the paired per-unit differences (both None where there is nothing to
    compare: no incumbent, or a non-finite candidate); ``improved``: the gain exceeds the rule's number of standard
    errors.
    """

    improved: bool
    gain: float | None
    standard_error: float | None


def improvement(candidate: np.ndarray, incumbent: np.ndarray | None, standard_errors: float) -> Improvement:
    """Whether ``candidate`` (per-unit mean free deviances, (n,)) improves on ``incumbent`` (the same units' values
    for the best iterate so far) by more than ``standard_errors`` standard errors of the paired mean difference.

    Without an incumbent (the first candidate) a finite candidate improves. A non-finite candidate never does.
    With one unit there is no standard error, and the gain has to be positive.
    """
    cand = np.asarray(candidate, dtype=np.float64).ravel()
    if not np.all(np.isfinite(cand)):
        return Improvement(False, None, None)
    if incumbent is None:
        return Improvement(True, None, None)
    inc = np.asarray(incumbent, dtype=np.float64).ravel()
    if inc.shape != cand.shape:
        raise ValueError(f"free deviance: expected paired units, found {inc.size} and {cand.size}")
    diff = inc - cand
    gain = float(np.mean(diff))
    se = float(np.std(diff, ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else 0.0
    return Improvement(bool(gain > 0 and gain > standard_errors * se), gain, se)
