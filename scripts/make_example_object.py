"""Write the shipped example object, training object and probe of config/test_file_object.yaml.

    python scripts/make_example_object.py [--out config/examples]

Deterministic (fixed seeds, values rounded to 1e-6 before the cast to
complex64, NPZ written by ``ptycho_core.io.npz.write_npz``): rerunning it
rewrites the three files byte for byte (``tests/test_object_file.py`` checks).

``object.npz`` / ``train_object.npz`` (key ``object``, complex64 96 x 96): a
field of cell-like particles, a phase object with weak absorption. Each cell
is an ellipse with a smooth thickness profile t = sqrt(1 - r^2) and a denser
nucleus; a blurred random texture (organelles inside the cells, a thin film
outside) gives structure at the probe's scale; small dense granules absorb.
Phase = 1.0 rad per unit of cell thickness + 0.5 rad per nucleus + up to 0.8
rad of texture; amplitude = exp(-(0.12 * cells + 0.5 *
granules)), in (0, 1]. The study samples it at 0.8 study pixels per file pixel
(object.file_pixel_size), 77 pixels, cropped to 72.

``probe.npz`` (key ``probe``, complex64 32 x 32): a measured-looking focused
probe for N = 32: an apodised pupil of 14 detector pixels with 0.7 waves of
defocus and 0.3 waves of astigmatism, inverse-FFT'd to the sample plane, unit
peak amplitude.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from ptycho_core.io.npz import write_npz

ROOT = Path(__file__).resolve().parents[1]
SIZE = 96
N = 32


def _ellipses(
    rng: np.random.Generator, n: int, radius: tuple[float, float], yy: np.ndarray, xx: np.ndarray
) -> tuple[np.ndarray, list]:
    """Sum of ``n`` random ellipses' thickness profiles sqrt(1 - r^2); and their (centre, axes, angle)."""
    total = np.zeros_like(xx)
    shapes = []
    for _ in range(n):
        cy, cx = rng.uniform(0, SIZE, size=2)
        a, b = rng.uniform(*radius, size=2)
        theta = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
        v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
        r2 = (u / a) ** 2 + (v / b) ** 2
        total += np.sqrt(np.clip(1.0 - r2, 0.0, None))
        shapes.append((cy, cx, a, b, theta))
    return total, shapes


def cell_field(seed: int) -> np.ndarray:
    """The complex transmission of a field of cells, complex64 (SIZE, SIZE), values rounded to 1e-6."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    cells, shapes = _ellipses(rng, 40, (6.0, 12.0), yy, xx)
    nuclei = np.zeros_like(cells)
    for cy, cx, a, b, theta in shapes:  # a nucleus inside each cell, a third of its size
        r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / (min(a, b) / 3.0) ** 2
        nuclei += np.sqrt(np.clip(1.0 - r2, 0.0, None))
    granules = np.zeros_like(cells)
    rows, cols = rng.integers(0, SIZE, size=(2, 60))
    granules[rows, cols] = 1.0
    granules = gaussian_filter(granules, 0.8) / gaussian_filter(np.pad([[1.0]], 3), 0.8).max()
    cells, nuclei = gaussian_filter(cells, 1.0), gaussian_filter(nuclei, 1.0)
    texture = gaussian_filter(rng.standard_normal((SIZE, SIZE)), 1.2)  # organelles, and a thin textured film outside
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    inside = np.clip(cells / 0.3, 0.0, 1.0)
    phase = 1.0 * cells / cells.max() + 0.5 * nuclei / max(nuclei.max(), 1e-12) + (0.2 + 0.6 * inside) * texture
    amplitude = np.exp(-(0.12 * cells / cells.max() + 0.5 * np.clip(granules, 0.0, 1.0)))
    field = amplitude * np.exp(1j * phase)
    return (np.round(field.real, 6) + 1j * np.round(field.imag, 6)).astype(np.complex64)


def example_probe() -> np.ndarray:
    """An apodised, defocused, astigmatic focused probe, complex64 (N, N), unit peak amplitude, rounded to 1e-6."""
    idx = np.arange(N) - N // 2
    ky, kx = np.meshgrid(idx, idx, indexing="ij")
    rho_max = 14.0 / 2
    rho = np.hypot(kx, ky) / rho_max
    angle = np.arctan2(ky, kx)
    pupil = (
        (rho <= 1.0) * np.exp(-4.0 * rho**2) * np.exp(2j * np.pi * (0.7 * rho**2 + 0.3 * rho**2 * np.cos(2 * angle)))
    )
    probe = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(pupil)))
    probe /= np.abs(probe).max()
    return (np.round(probe.real, 6) + 1j * np.round(probe.imag, 6)).astype(np.complex64)


def write_examples(out: Path) -> list[Path]:
    """Write object.npz, train_object.npz and probe.npz into ``out``; return their paths."""
    files = {
        out / "object.npz": {"object": cell_field(seed=2024)},
        out / "train_object.npz": {"object": cell_field(seed=2025)},
        out / "probe.npz": {"probe": example_probe()},
    }
    for path, arrays in files.items():
        write_npz(path, arrays)
    return list(files)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "config" / "examples", help="output folder (default config/examples)"
    )
    for p in write_examples(parser.parse_args().out):
        print(p, p.stat().st_size, "bytes")
