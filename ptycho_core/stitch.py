"""Stitch patches into one object: vectorised, weighted scatter-add in chunks.

A patch of size P x P belongs to a position (x, y) with the convention of
:mod:`ptycho_core.forward`: patch pixel [i, j] sits at X = x - P/2 + j,
Y = y - P/2 + i (for a network's N/2 x N/2 support patch, P = N/2 and this is
the same object pixel as the full patch's [i + N/4, j + N/4]).

Each patch is multiplied by a smooth weight window (zero at its edge), moved
by its fractional position with an exact Fourier shift, and added with its
weight into accumulators of the object frame through ``np.bincount`` on flat
pixel indices. The object is sum(w * O) / sum(w) where sum(w) exceeds
``min_weight``, NaN-free zero (and a False coverage flag) elsewhere. Work
and memory are O(total pixels): patches are processed in fixed chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def taper_window(P: int, taper: int | None = None) -> np.ndarray:
    """Separable raised-cosine window: 1 in the middle, falling to 0 over ``taper`` pixels at each edge."""
    taper = max(1, P // 8) if taper is None else int(taper)
    edge = np.minimum(np.arange(P), np.arange(P)[::-1]) + 0.5  # distance from the nearest edge
    w1 = np.where(edge < taper, 0.5 - 0.5 * np.cos(np.pi * edge / taper), 1.0)
    return np.outer(w1, w1)


@dataclass(frozen=True)
class Stitched:
    """A stitched object, its accumulated weight and coverage mask."""

    obj: np.ndarray
    weight: np.ndarray
    covered: np.ndarray


def _fractional_shift(patches: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Move each patch's content by (+fx, +fy) pixels: g(u) = f(u - s)."""
    P = patches.shape[-1]
    f = np.fft.fftfreq(P)
    ramp = np.exp(-2j * np.pi * (fy[:, None, None] * f[None, :, None] + fx[:, None, None] * f[None, None, :]))
    return np.fft.ifft2(np.fft.fft2(patches) * ramp)


class Stitcher:
    """Accumulates patches into an object frame chunk by chunk (bounded memory).

    ``add`` may be called any number of times; ``result`` divides the weighted
    sums. Pixels a patch would place outside the frame are dropped.
    """

    def __init__(self, shape: tuple[int, int], P: int, window: np.ndarray | None = None, chunk: int = 2048):
        self.shape = (int(shape[0]), int(shape[1]))
        self.P = int(P)
        self.window = taper_window(P) if window is None else np.asarray(window, dtype=np.float64)
        self.chunk = int(chunk)
        size = self.shape[0] * self.shape[1]
        self._re, self._im, self._w = np.zeros(size), np.zeros(size), np.zeros(size)
        self.n_patches = 0

    def add(self, patches: np.ndarray, positions: np.ndarray) -> None:
        patches = np.asarray(patches)
        positions = np.asarray(positions, dtype=np.float64)
        n = patches.shape[0]
        if patches.shape[1:] != (self.P, self.P) or positions.shape != (n, 2):
            raise ValueError(
                f"stitch: expected patches (n, {self.P}, {self.P}) and positions (n, 2), found {patches.shape} and {positions.shape}"
            )
        H, W = self.shape
        offs = np.arange(self.P) - self.P // 2
        for start in range(0, n, self.chunk):
            sl = slice(start, start + self.chunk)
            base = np.floor(positions[sl]).astype(np.int64)
            frac = positions[sl] - base
            weighted = _fractional_shift(patches[sl] * self.window, frac[:, 0], frac[:, 1])
            wshift = _fractional_shift(np.broadcast_to(self.window, weighted.shape).astype(np.complex128), frac[:, 0], frac[:, 1]).real
            rows, cols = np.broadcast_arrays(base[:, 1, None, None] + offs[None, :, None], base[:, 0, None, None] + offs[None, None, :])
            inside = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)
            flat = (rows * W + cols)[inside]
            self._re += np.bincount(flat, weights=weighted.real[inside], minlength=H * W)
            self._im += np.bincount(flat, weights=weighted.imag[inside], minlength=H * W)
            self._w += np.bincount(flat, weights=wshift[inside], minlength=H * W)
        self.n_patches += n

    def result(self, min_weight: float = 0.1) -> Stitched:
        weight = self._w.reshape(self.shape)
        covered = weight > min_weight
        obj = np.zeros(self.shape, dtype=np.complex128)
        obj[covered] = (self._re.reshape(self.shape)[covered] + 1j * self._im.reshape(self.shape)[covered]) / weight[covered]
        return Stitched(obj=obj, weight=weight, covered=covered)


def stitch_patches(
    patches: np.ndarray,
    positions: np.ndarray,
    shape: tuple[int, int],
    window: np.ndarray | None = None,
    min_weight: float = 0.1,
    chunk: int = 2048,
) -> Stitched:
    """Stitch complex patches (n, P, P) at positions (n, 2) = (x, y) into an object of ``shape``.

    ``window`` defaults to :func:`taper_window`. See :class:`Stitcher`.
    """
    patches = np.asarray(patches)
    if patches.ndim != 3 or patches.shape[1] != patches.shape[2]:
        raise ValueError(f"stitch: expected patches (n, P, P), found {patches.shape}")
    stitcher = Stitcher(shape, patches.shape[1], window, chunk)
    stitcher.add(patches, positions)
    return stitcher.result(min_weight)


def stitch_patches_loop(patches: np.ndarray, positions: np.ndarray, shape: tuple[int, int], window: np.ndarray | None = None, min_weight: float = 0.1) -> Stitched:
    """Reference implementation: one patch at a time (for the benchmark and tests)."""
    n, P, _ = patches.shape
    H, W = shape
    w = taper_window(P) if window is None else window
    acc = np.zeros((H, W), dtype=np.complex128)
    acc_w = np.zeros((H, W))
    half = P // 2
    for k in range(n):
        x, y = positions[k]
        bx, by = int(np.floor(x)), int(np.floor(y))
        fx, fy = np.array([x - bx]), np.array([y - by])
        v = _fractional_shift((patches[k] * w)[None], fx, fy)[0]
        ws = _fractional_shift(w[None].astype(np.complex128), fx, fy)[0].real
        r0, c0 = by - half, bx - half
        rs, cs = slice(max(r0, 0), min(r0 + P, H)), slice(max(c0, 0), min(c0 + P, W))
        pr, pc = slice(rs.start - r0, rs.stop - r0), slice(cs.start - c0, cs.stop - c0)
        acc[rs, cs] += v[pr, pc]
        acc_w[rs, cs] += ws[pr, pc]
    covered = acc_w > min_weight
    obj = np.zeros((H, W), dtype=np.complex128)
    obj[covered] = acc[covered] / acc_w[covered]
    return Stitched(obj=obj, weight=acc_w, covered=covered)
