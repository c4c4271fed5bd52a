"""Seeded procedural test objects (complex transmission functions).

An object is O = A * exp(i * phi) on a square grid of ``size`` pixels with
amplitude A = 1 - amplitude_contrast * f in (0, 1] and phase
phi = phase_max * g in [0, phase_max], where f and g are two independent
maps in [0, 1] drawn from the chosen family. Independent maps make amplitude
and phase separately identifiable: cross-talk between them shows up as error.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from ptycho_core.config import ObjectConfig
from ptycho_core.streams import object_entropy

#: Stream identifiers of the object generator's random draws (see rng policy
#: in :mod:`ptycho_core.physics.simulate`): amplitude map, phase map.


def _normalise(img: np.ndarray, upper_percentile: float = 100.0) -> np.ndarray:
    """Map ``img`` linearly onto [0, 1]: min -> 0, the given percentile -> 1 (clipped)."""
    lo, hi = img.min(), np.percentile(img, upper_percentile)
    if hi - lo <= 0:
        raise ValueError("object map is constant; increase n_lines or the object size")
    return np.clip((img - lo) / (hi - lo), 0.0, 1.0)


def lines_map(size: int, n_lines: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Blurred random line segments, normalised to [0, 1].

    Each segment joins two uniform random points, carries a uniform random
    weight in [0.3, 1], and is rasterised by dense point sampling (half-pixel
    steps); the sum is blurred with a Gaussian of ``sigma`` pixels and mapped
    to [0, 1] with the 99.5th percentile as 1, so that the few crossings of
    many lines saturate instead of compressing the contrast of single lines.
    """
    img = np.zeros((size, size))
    for _ in range(n_lines):
        (x0, y0), (x1, y1) = rng.uniform(0, size - 1, size=(2, 2))
        weight = rng.uniform(0.3, 1.0)
        n_pts = int(np.ceil(2 * np.hypot(x1 - x0, y1 - y0))) + 2
        t = np.linspace(0.0, 1.0, n_pts)
        cols = np.rint(x0 + t * (x1 - x0)).astype(int)
        rows = np.rint(y0 + t * (y1 - y0)).astype(int)
        line = np.zeros_like(img)
        line[rows, cols] = weight  # a pixel is hit once per segment
        img += line
    return _normalise(gaussian_filter(img, sigma, mode="wrap"), upper_percentile=99.5)


def grf_map(size: int, correlation_length: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field (white noise * Gaussian kernel), normalised to [0, 1]."""
    noise = rng.standard_normal((size, size))
    return _normalise(gaussian_filter(noise, correlation_length, mode="wrap"))


def _family_map(cfg: ObjectConfig, rng: np.random.Generator) -> np.ndarray:
    if cfg.family == "lines":
        return lines_map(cfg.size, cfg.n_lines, cfg.feature_size, rng)
    if cfg.family == "grf":
        return grf_map(cfg.size, cfg.feature_size, rng)
    raise ValueError(f"object.family: expected 'lines' or 'grf', found {cfg.family!r}")


def make_object(cfg: ObjectConfig) -> np.ndarray:
    """The study's ground-truth object, complex128 (size, size).

    Deterministic in ``cfg.seed``: the amplitude and phase maps come from two
    independent streams of ``SeedSequence([cfg.seed, stream])``.
    """
    f = _family_map(cfg, np.random.default_rng(object_entropy(cfg.seed, "amplitude")))
    g = _family_map(cfg, np.random.default_rng(object_entropy(cfg.seed, "phase")))
    amplitude = 1.0 - cfg.amplitude_contrast * f
    phase = cfg.phase_max * g
    return amplitude * np.exp(1j * phase)
