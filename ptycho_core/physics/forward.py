"""Patch extraction and the far-field forward model (docs/DESIGN.md section 3).

Coordinates are object pixels, positions ``(x, y)`` = (column, row): object
pixel ``[r, c]`` sits at x = c, y = r.

**Patch convention.** The patch at position (x, y) is an N x N array whose
pixel ``[i, j]`` samples the object at

    X = x - N/2 + j,    Y = y - N/2 + i,

so the patch centre pixel ``[N/2, N/2]`` sits exactly on (x, y); increasing x
moves the window to the right over the object (the content moves left in the
patch). Subpixel positions are handled by an exact Fourier shift of a padded
crop (the object is treated as band-limited inside the crop).

**Far field.** psi = P * O_patch; F = fftshift(fft2(psi)); I = |F|^2 / N^2, so
that sum(I) = sum(|psi|^2) (Parseval) and the zero frequency sits at pixel
``[N/2, N/2]``.
"""

from __future__ import annotations

import numpy as np

#: Extra pixels on each side of the crop used for the subpixel Fourier shift;
#: wrap-around of the shift stays inside this margin.
SHIFT_MARGIN = 4


def patch_bounds(N: int) -> tuple[float, float]:
    """Offsets (low, high) of the object region a patch needs around its position.

    A position p needs object pixels from floor(p) - N/2 - margin to
    floor(p) + N/2 + margin inclusive.
    """
    return -(N // 2) - SHIFT_MARGIN, N // 2 + SHIFT_MARGIN


def valid_position_range(size: int, N: int) -> tuple[float, float]:
    """Closed interval of positions (along one axis) whose patch fits the object."""
    lo, hi = patch_bounds(N)
    return float(-lo), float(size - 1 - hi) + 0.999


def extract_patches(obj: np.ndarray, xcoords: np.ndarray, ycoords: np.ndarray, N: int, chunk: int = 256) -> np.ndarray:
    """Patches of ``obj`` (H, W) at positions (x, y): complex128 (n, N, N).

    Vectorised gather of padded crops plus a batched Fourier subpixel shift,
    processed in chunks of ``chunk`` positions to bound memory.
    """
    obj = np.asarray(obj)
    xcoords = np.asarray(xcoords, dtype=np.float64)
    ycoords = np.asarray(ycoords, dtype=np.float64)
    if xcoords.shape != ycoords.shape or xcoords.ndim != 1:
        raise ValueError(f"positions: expected two equal 1-D arrays, found {xcoords.shape} and {ycoords.shape}")
    H, W = obj.shape
    lo, hi = patch_bounds(N)
    M = hi - lo + 1  # odd crop size: no Nyquist bin, the shift is exact
    xi = np.floor(xcoords).astype(np.int64)
    yi = np.floor(ycoords).astype(np.int64)
    bad = (xi + lo < 0) | (yi + lo < 0) | (xi + hi >= W) | (yi + hi >= H)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"position {k} (x={xcoords[k]:.3f}, y={ycoords[k]:.3f}) needs object pixels "
            f"[{lo}, {hi}] around it, outside the {W}x{H} object"
        )
    freq = np.fft.fftfreq(M)
    offsets = np.arange(lo, hi + 1)
    out = np.empty((xcoords.size, N, N), dtype=np.complex128)
    for start in range(0, xcoords.size, chunk):
        sl = slice(start, start + chunk)
        rows = yi[sl, None] + offsets[None, :]
        cols = xi[sl, None] + offsets[None, :]
        crops = obj[rows[:, :, None], cols[:, None, :]]
        fx = (xcoords[sl] - xi[sl])[:, None, None]
        fy = (ycoords[sl] - yi[sl])[:, None, None]
        # C_shift(a, b) = C(a + fy, b + fx): multiply the spectrum by exp(+2 pi i f s)
        ramp = np.exp(2j * np.pi * (fy * freq[None, :, None] + fx * freq[None, None, :]))
        shifted = np.fft.ifft2(np.fft.fft2(crops) * ramp)
        start_px = -lo - N // 2
        out[sl] = shifted[:, start_px : start_px + N, start_px : start_px + N]
    return out


def far_field_intensity(exit_waves: np.ndarray) -> np.ndarray:
    """Expected far-field intensity |fftshift(fft2(psi))|^2 / N^2, float64.

    Works on (..., N, N); the normalisation makes sum(I) = sum(|psi|^2).
    """
    psi = np.asarray(exit_waves)
    N = psi.shape[-1]
    F = np.fft.fftshift(np.fft.fft2(psi, axes=(-2, -1)), axes=(-2, -1))
    return (np.abs(F) ** 2) / (N * N)


def expected_counts(probe: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """Expected counts per detector pixel for each patch: I = |FFT(P * O)|^2 / N^2."""
    return far_field_intensity(probe[None, :, :] * patches)
