"""Stitch patches into one object: vectorised, weighted scatter-add in chunks.

A patch of size P x P belongs to a position (x, y) with the convention of
:mod:`ptycho_core.physics.forward`: patch pixel [i, j] sits at X = x - P/2 + j,
Y = y - P/2 + i (for a network's N/2 x N/2 support patch, P = N/2 and this is
the same object pixel as the full patch's [i + N/4, j + N/4]).

Each patch is multiplied by a weight window w (P x P, real, small at its
edge), moved by its fractional position with an exact Fourier shift, and
added with its shifted weight into accumulators of the object frame through
``np.bincount`` on flat pixel indices. The window is any non-negative P x P
array: the network arms use the probe intensity |P|^2 on the support
(:func:`probe_window`, the ptychographic estimate sum |P|^2 O / sum |P|^2),
the default is the separable raised cosine :func:`taper_window`. The object is sum(w * O) / sum(w) where sum(w) exceeds
``min_weight``, NaN-free zero (and a False coverage flag) elsewhere.
:func:`illuminated` applies the same rule to a scan alone (every patch 1, the
probe window as weight): the coverage every method is held to. Work
and memory are O(total pixels): patches are processed in fixed chunks
(``chunk`` patches per scatter-add, held in complex64), shifted in
cache-sized FFT blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

#: Patches per FFT block inside a chunk (keeps the transforms in cache).
FFT_BLOCK = 128

#: Summed stitching weight (probe intensity, peak 1) above which a pixel counts as covered.
MIN_WEIGHT = 0.1


def taper_1d(P: int, taper: int | None = None) -> np.ndarray:
    """Raised-cosine profile: 1 in the middle, falling to 0 over ``taper`` pixels at each edge."""
    taper = max(1, P // 4) if taper is None else int(taper)
    edge = np.minimum(np.arange(P), np.arange(P)[::-1]) + 0.5  # distance from the nearest edge
    return np.where(edge < taper, 0.5 - 0.5 * np.cos(np.pi * edge / taper), 1.0)


def taper_window(P: int, taper: int | None = None) -> np.ndarray:
    """Separable raised-cosine window (the outer product of :func:`taper_1d` with itself)."""
    w1 = taper_1d(P, taper)
    return np.outer(w1, w1)


def probe_window(probe: np.ndarray, taper: int = 2) -> np.ndarray:
    """Stitching weights of a network's N/2 x N/2 support: |P|^2 there, peak 1.

    The support pixel [i, j] is the full patch's [i + N/4, j + N/4], so the
    weight is the probe intensity the forward model puts on that object
    pixel: the data constrain the object where it is bright. A raised-cosine
    edge of ``taper`` pixels makes the weight vanish at the support edge
    (for the study's focused probes |P|^2 is already below 0.2 % of its peak
    there, so the taper changes nothing; it guards broad or disk probes
    against the ringing of a Fourier shift of a step).
    """
    probe = np.asarray(probe)
    N = probe.shape[-1]
    if probe.shape != (N, N) or N % 4:
        raise ValueError(f"probe window: expected a square probe (N, N) with N divisible by 4, found {probe.shape}")
    q, P = N // 4, N // 2
    intensity = np.abs(probe[q : q + P, q : q + P].astype(np.complex128)) ** 2
    peak = float(intensity.max())
    if not peak > 0:
        raise ValueError("probe window: the probe is zero on the object support")
    return intensity / peak * taper_window(P, taper)


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


def to_grid(
    patches: np.ndarray, window: np.ndarray, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted patches and weights moved onto the integer pixel grid.

    Returns shift(w * O) (n, P, P) complex64, shift(w) (n, P, P) float32 and
    the integer base position (n, 2) = floor(x, y): pixel [i, j] of both
    arrays sits at object pixel (base_y - P//2 + i, base_x - P//2 + j).
    Shifts are done in cache-sized FFT blocks.
    """
    n, P = patches.shape[0], patches.shape[-1]
    base = np.floor(positions).astype(np.int64)
    frac = positions - base
    weighted = np.empty((n, P, P), dtype=np.complex64)
    wshift = np.empty((n, P, P), dtype=np.float32)
    for s0 in range(0, n, FFT_BLOCK):
        b = slice(s0, s0 + FFT_BLOCK)
        weighted[b] = _fractional_shift(patches[b] * window, frac[b, 0], frac[b, 1])
        wshift[b] = _fractional_shift(np.broadcast_to(window, weighted[b].shape), frac[b, 0], frac[b, 1]).real
    return weighted, wshift, base


def _check_window(window: np.ndarray | None, P: int) -> np.ndarray:
    if window is None:
        return taper_window(P)
    window = np.asarray(window, dtype=np.float64)
    if window.shape != (P, P) or not np.all(np.isfinite(window)) or window.min() < 0 or not window.max() > 0:
        raise ValueError(f"stitch: expected a finite non-negative ({P}, {P}) weight window, found shape {window.shape}")
    return window


class Stitcher:
    """Accumulates patches into an object frame chunk by chunk (bounded memory).

    ``add`` may be called any number of times; ``result`` divides the weighted
    sums. Pixels a patch would place outside the frame are dropped.
    """

    def __init__(self, shape: tuple[int, int], P: int, window: np.ndarray | None = None, chunk: int = 2048):
        self.shape = (int(shape[0]), int(shape[1]))
        self.P = int(P)
        self.window = _check_window(window, self.P)
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
                f"stitch: expected patches (n, {self.P}, {self.P}) and positions (n, 2), "
                f"found {patches.shape} and {positions.shape}"
            )
        H, W = self.shape
        P = self.P
        offs = np.arange(P) - P // 2
        for start in range(0, n, self.chunk):
            stop = min(start + self.chunk, n)
            weighted, wshift, base = to_grid(patches[start:stop], self.window, positions[start:stop])
            rows = base[:, 1, None, None] + offs[None, :, None]
            cols = base[:, 0, None, None] + offs[None, None, :]
            inside = np.broadcast_to((rows >= 0) & (rows < H) & (cols >= 0) & (cols < W), weighted.shape)
            flat = np.broadcast_to(rows * W + cols, weighted.shape)[inside]
            self._re += np.bincount(flat, weights=weighted.real[inside], minlength=H * W)
            self._im += np.bincount(flat, weights=weighted.imag[inside], minlength=H * W)
            self._w += np.bincount(flat, weights=wshift[inside], minlength=H * W)
        self.n_patches += n

    def result(self, min_weight: float = MIN_WEIGHT) -> Stitched:
        weight = self._w.reshape(self.shape)
        covered = weight > min_weight
        obj = np.zeros(self.shape, dtype=np.complex128)
        obj[covered] = (self._re.reshape(self.shape)[covered] + 1j * self._im.reshape(self.shape)[covered]) / weight[
            covered
        ]
        return Stitched(obj=obj, weight=weight, covered=covered)


def stitch_patches(
    patches: np.ndarray,
    positions: np.ndarray,
    shape: tuple[int, int],
    window: np.ndarray | None = None,
    min_weight: float = MIN_WEIGHT,
    chunk: int = 2048,
) -> Stitched:
    """Stitch complex patches (n, P, P) at positions (n, 2) = (x, y) into an object of ``shape``.

    ``window`` is the (P, P) weight of every patch (default
    :func:`taper_window`). See :class:`Stitcher`.
    """
    patches = np.asarray(patches)
    if patches.ndim != 3 or patches.shape[1] != patches.shape[2]:
        raise ValueError(f"stitch: expected patches (n, P, P), found {patches.shape}")
    stitcher = Stitcher(shape, patches.shape[1], window, chunk)
    stitcher.add(patches, positions)
    return stitcher.result(min_weight)


def stitch_patches_loop(
    patches: np.ndarray,
    positions: np.ndarray,
    shape: tuple[int, int],
    window: np.ndarray | None = None,
    min_weight: float = MIN_WEIGHT,
) -> Stitched:
    """Reference implementation: one patch at a time, plain 2-D FFT shifts (for the benchmark and tests)."""
    n, P, _ = patches.shape
    H, W = shape
    w = _check_window(window, P)
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


def illuminated(
    positions: np.ndarray, probe: np.ndarray, shape: tuple[int, int], min_weight: float = MIN_WEIGHT
) -> np.ndarray:
    """Pixels of ``shape`` the scan illuminates: sum over positions of |P|^2 / peak above ``min_weight``.

    The coverage rule of the network arms' stitching (:func:`probe_window`
    weights, :func:`stitch_patches` threshold), computed for the positions
    (n, 2) = (x, y) alone, so that the iterative arm is held to the same
    region. Unlike the union of FWHM discs, it does not leave holes between
    the positions of a sparse raster (step above D / sqrt 2, linear overlap
    below 29 %), where the probe's flanks still illuminate the object.
    """
    window = probe_window(probe)
    P = window.shape[0]
    positions = np.asarray(positions, dtype=np.float64)
    ones = np.ones((positions.shape[0], P, P), dtype=np.complex64)
    return stitch_patches(ones, positions, shape, window=window, min_weight=min_weight).covered
