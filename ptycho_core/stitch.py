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
and memory are O(total pixels): patches are processed in fixed chunks
(``chunk`` patches per scatter-add, held in complex64), shifted in
cache-sized FFT blocks; the separable window is shifted with 1-D transforms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft


#: Patches per FFT block inside a chunk (keeps the transforms in cache).
FFT_BLOCK = 128


def taper_1d(P: int, taper: int | None = None) -> np.ndarray:
    """Raised-cosine profile: 1 in the middle, falling to 0 over ``taper`` pixels at each edge."""
    taper = max(1, P // 4) if taper is None else int(taper)
    edge = np.minimum(np.arange(P), np.arange(P)[::-1]) + 0.5  # distance from the nearest edge
    return np.where(edge < taper, 0.5 - 0.5 * np.cos(np.pi * edge / taper), 1.0)


def taper_window(P: int, taper: int | None = None) -> np.ndarray:
    """Separable raised-cosine window (the outer product of :func:`taper_1d` with itself)."""
    w1 = taper_1d(P, taper)
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
    ry = np.exp(-2j * np.pi * fy[:, None] * f[None, :])  # separable phase ramps
    rx = np.exp(-2j * np.pi * fx[:, None] * f[None, :])
    spectrum = scipy.fft.fft2(patches, workers=-1)
    spectrum *= ry[:, :, None]
    spectrum *= rx[:, None, :]
    return scipy.fft.ifft2(spectrum, workers=-1, overwrite_x=True)


def _shifted_window(w1: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """The separable window w1 x w1 moved by (+fx, +fy): two 1-D shifts per patch, (n, P, P) real."""
    P = w1.size
    f = np.fft.fftfreq(P)
    W1 = np.fft.fft(w1)
    wy = np.fft.ifft(W1[None, :] * np.exp(-2j * np.pi * fy[:, None] * f[None, :])).real
    wx = np.fft.ifft(W1[None, :] * np.exp(-2j * np.pi * fx[:, None] * f[None, :])).real
    return wy[:, :, None] * wx[:, None, :]


class Stitcher:
    """Accumulates patches into an object frame chunk by chunk (bounded memory).

    ``add`` may be called any number of times; ``result`` divides the weighted
    sums. Pixels a patch would place outside the frame are dropped.
    """

    def __init__(self, shape: tuple[int, int], P: int, window_1d: np.ndarray | None = None, chunk: int = 2048):
        self.shape = (int(shape[0]), int(shape[1]))
        self.P = int(P)
        self.w1 = taper_1d(P) if window_1d is None else np.asarray(window_1d, dtype=np.float64)
        self.window = np.outer(self.w1, self.w1)
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
        P = self.P
        offs = np.arange(P) - P // 2
        for start in range(0, n, self.chunk):
            stop = min(start + self.chunk, n)
            base = np.floor(positions[start:stop]).astype(np.int64)
            frac = positions[start:stop] - base
            weighted = np.empty((stop - start, P, P), dtype=np.complex64)
            wshift = np.empty((stop - start, P, P), dtype=np.float32)
            for s0 in range(0, stop - start, FFT_BLOCK):  # cache-sized FFT blocks
                b = slice(s0, s0 + FFT_BLOCK)
                weighted[b] = _fractional_shift(patches[start:stop][b] * self.window, frac[b, 0], frac[b, 1])
                wshift[b] = _shifted_window(self.w1, frac[b, 0], frac[b, 1])
            rows = base[:, 1, None, None] + offs[None, :, None]
            cols = base[:, 0, None, None] + offs[None, None, :]
            inside = np.broadcast_to((rows >= 0) & (rows < H) & (cols >= 0) & (cols < W), weighted.shape)
            flat = np.broadcast_to(rows * W + cols, weighted.shape)[inside]
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
    window_1d: np.ndarray | None = None,
    min_weight: float = 0.1,
    chunk: int = 2048,
) -> Stitched:
    """Stitch complex patches (n, P, P) at positions (n, 2) = (x, y) into an object of ``shape``.

    The weight window is the outer product of ``window_1d`` (default
    :func:`taper_1d`) with itself. See :class:`Stitcher`.
    """
    patches = np.asarray(patches)
    if patches.ndim != 3 or patches.shape[1] != patches.shape[2]:
        raise ValueError(f"stitch: expected patches (n, P, P), found {patches.shape}")
    stitcher = Stitcher(shape, patches.shape[1], window_1d, chunk)
    stitcher.add(patches, positions)
    return stitcher.result(min_weight)


def stitch_patches_loop(
    patches: np.ndarray, positions: np.ndarray, shape: tuple[int, int], window_1d: np.ndarray | None = None, min_weight: float = 0.1
) -> Stitched:
    """Reference implementation: one patch at a time, plain 2-D FFT shifts (for the benchmark and tests)."""
    n, P, _ = patches.shape
    H, W = shape
    w1 = taper_1d(P) if window_1d is None else np.asarray(window_1d, dtype=np.float64)
    w = np.outer(w1, w1)
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
        if r0 + P <= 0 or c0 + P <= 0 or r0 >= H or c0 >= W:
            continue  # entirely outside the frame
        rs, cs = slice(max(r0, 0), min(r0 + P, H)), slice(max(c0, 0), min(c0 + P, W))
        pr, pc = slice(rs.start - r0, rs.stop - r0), slice(cs.start - c0, cs.stop - c0)
        acc[rs, cs] += v[pr, pc]
        acc_w[rs, cs] += ws[pr, pc]
    covered = acc_w > min_weight
    obj = np.zeros((H, W), dtype=np.complex128)
    obj[covered] = acc[covered] / acc_w[covered]
    return Stitched(obj=obj, weight=acc_w, covered=covered)
