"""Probe synthesis and probe-diameter measurement.

Conventions (shared with :mod:`ptycho_core.physics.forward`): arrays are N x N with the
optical axis at pixel (N/2, N/2); the probe returned here has unit peak
amplitude. Its absolute scale (sqrt(photons) per pixel) is set later, at
simulation, from the dose.

Kind ``file`` reads the probe from an NPZ file (:func:`load_probe_file`),
never unpickled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ptycho_core.config import ProbeConfig
from ptycho_core.io.npz import DataContractError
from ptycho_core.physics.objects import read_npz_source

#: The least fraction of a probe file's intensity within the centred disc of diameter N/2 (:func:`energy_within`).
#: The networks reconstruct the object on the central N/2 x N/2 support only, and their physics forms the exit wave
#: P * O with the object zero outside it, so the probe's intensity outside the support is light the model cannot
#: account for; the inscribed disc's fraction is a lower bound of the support's. 0.9: at most 10 % of each
#: pattern's photons come from outside what the model reconstructs. Centred probes are far above it (the example
#: probe file 0.994, the study's focused probes 0.996 to 0.998), a probe whose optical axis is not at pixel
#: (N/2, N/2) far below (the example probe fftshift-ed: 4e-5).
MIN_ENERGY_WITHIN_SUPPORT = 0.9


def _centred_radius(N: int) -> np.ndarray:
    """Distance in pixels of every pixel from the centre pixel (N/2, N/2)."""
    idx = np.arange(N) - N // 2
    return np.hypot(idx[None, :], idx[:, None])


def focused_probe(
    N: int, pupil_diameter: float, central_stop: float = 0.0, defocus_waves: float = 0.0, apodisation: float = 0.0
) -> np.ndarray:
    """Focused-beam probe in the sample plane.

    The pupil is a disc of ``pupil_diameter`` pixels in the detector (Fourier)
    plane, optionally with a central stop of ``central_stop`` times that
    diameter, with amplitude exp(-apodisation * (rho/rho_max)**2) (a soft edge,
    which suppresses the slowly decaying Airy tails of a hard pupil), carrying
    a defocus phase 2*pi*defocus_waves*(rho/rho_max)**2.
    The sample-plane probe is its inverse FFT, centred, with unit peak
    amplitude. Because the probe is band-limited by the pupil, its far-field
    pattern through a slowly varying object stays on the detector.
    """
    rho = _centred_radius(N)
    rho_max = pupil_diameter / 2.0
    pupil = (rho <= rho_max) * np.exp(-apodisation * (rho / rho_max) ** 2) + 0j
    if central_stop > 0:
        pupil[rho < central_stop * rho_max] = 0.0
    pupil *= np.exp(2j * np.pi * defocus_waves * (rho / rho_max) ** 2)
    probe = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(pupil)))
    return (probe / np.abs(probe).max()).astype(np.complex128)


def disk_probe(N: int, diameter: float) -> np.ndarray:
    """Idealised flat disk of ``diameter`` pixels, unit amplitude, flat phase."""
    return (_centred_radius(N) <= diameter / 2.0).astype(np.complex128)


def make_probe(N: int, cfg: ProbeConfig) -> np.ndarray:
    """Probe of unit peak amplitude from the study's probe configuration."""
    if cfg.kind == "focused":
        return focused_probe(N, cfg.pupil_diameter, cfg.central_stop, cfg.defocus_waves, cfg.apodisation)
    if cfg.kind == "disk":
        return disk_probe(N, cfg.disk_diameter)
    if cfg.kind == "file":
        return load_probe_file(N, cfg)
    raise ValueError(f"probe.kind: expected 'focused', 'disk' or 'file', found {cfg.kind!r}")


def load_probe_file(N: int, cfg: ProbeConfig) -> np.ndarray:
    """The probe of ``cfg.file`` (array ``cfg.key``), complex128 (N, N), scaled to unit peak amplitude.

    The file must hold a finite, non-zero complex N x N array sampled on the
    object's pixels with the optical axis at pixel (N/2, N/2): at least
    :data:`MIN_ENERGY_WITHIN_SUPPORT` of its intensity within the centred
    disc of diameter N/2, the networks' support. Nothing is resampled. Its
    scale does not matter (the dose sets it at simulation).
    Refusals are :class:`DataContractError` naming the file, the key, and what
    was expected and found.
    """
    if cfg.file is None:
        raise ValueError("probe: probe.kind is file but probe.file is null")
    path = Path(cfg.file)
    arrays = read_npz_source(path, "probe.file")
    label = f"{path} (probe.file): key '{cfg.key}'"
    if cfg.key not in arrays:
        raise DataContractError(
            f"{label}: expected a complex {N} x {N} array under this key, found keys {sorted(arrays)}"
        )
    probe = arrays[cfg.key]
    if probe.dtype.kind != "c" or probe.shape != (N, N):
        raise DataContractError(
            f"{label}: expected a complex array of shape ({N}, {N}) (N x N), found {probe.dtype} {probe.shape}"
        )
    if not np.isfinite(probe).all():
        raise DataContractError(
            f"{label}: expected finite values, found {np.count_nonzero(~np.isfinite(probe))} non-finite pixels"
        )
    peak = float(np.abs(probe).max())
    if not peak > 0:
        raise DataContractError(f"{label}: expected a probe with some intensity, found all zeros")
    probe = (probe.astype(np.complex128) / peak).astype(np.complex128)
    within = energy_within(probe, N / 2)
    if not within >= MIN_ENERGY_WITHIN_SUPPORT:
        row, col = np.unravel_index(np.argmax(np.abs(probe)), probe.shape)
        raise DataContractError(
            f"{label}: expected the optical axis at pixel (N/2, N/2) = ({N // 2}, {N // 2}), with at least "
            f"{MIN_ENERGY_WITHIN_SUPPORT:.0%} of the intensity within the centred disc of diameter N/2 = {N // 2} px "
            f"(the support the networks reconstruct), found {within:.3g} (peak at pixel ({row}, {col})); "
            "an fftshift-ed probe (axis at pixel (0, 0)): centre it with numpy.fft.fftshift"
        )
    return probe


def energy_within(probe: np.ndarray, diameter: float) -> float:
    """Fraction of the probe's intensity inside the centred disc of ``diameter`` pixels."""
    intensity = np.abs(probe) ** 2
    return float(intensity[_centred_radius(probe.shape[0]) <= diameter / 2].sum() / intensity.sum())


def photons_per_illuminated_pixel(dose: float, fwhm_diameter_px: float) -> float:
    """Dose in physical terms: photons per pattern spread over the probe's FWHM disc, per object pixel.

    ``dose / (pi (D/2)^2)`` with D the probe's measured FWHM diameter in object
    pixels (:func:`measure_fwhm_diameter`). Unlike photons per pattern, it
    carries between studies of different N and probe size: the same number of
    photons per pattern is a far lower dose per pixel under a larger probe.
    """
    if not (fwhm_diameter_px > 0 and np.isfinite(fwhm_diameter_px)):
        raise ValueError(f"probe FWHM diameter must be positive and finite, found {fwhm_diameter_px!r}")
    return float(dose) / (np.pi * (fwhm_diameter_px / 2.0) ** 2)


def measure_fwhm_diameter(probe: np.ndarray, upsample: int = 4) -> float:
    """Diameter (pixels) of the probe from the FWHM of its intensity.

    Defined as the diameter of the disc whose area equals the area where the
    intensity is at least half its maximum: D = 2 sqrt(A_half / pi). For any
    radially monotone profile this is exactly the full width at half maximum;
    for structured probes it stays well defined. The complex field is first
    interpolated ``upsample`` times by zero-padding its spectrum (exact for a
    band-limited probe), which makes the pixel-counting error of the area
    negligible (about 0.2 % for a 12-pixel Gaussian). A probe that is not
    band-limited (the idealised disk, whose spectrum reaches the edge of the
    detector) is measured on its own pixels, where interpolation would ring.
    """
    probe = np.asarray(probe)
    if probe.ndim != 2 or probe.shape[0] != probe.shape[1]:
        raise ValueError(f"probe: expected a square 2-D array, found shape {probe.shape}")
    N = probe.shape[0]
    spectrum = np.fft.fftshift(np.fft.fft2(probe))
    power = np.abs(spectrum) ** 2
    edge = _centred_radius(N) > 0.45 * N
    if power[edge].sum() > 1e-8 * power.sum():
        upsample = 1
    M = N * upsample
    padded = np.zeros((M, M), dtype=np.complex128)
    lo = (M - N) // 2
    padded[lo : lo + N, lo : lo + N] = spectrum
    fine = np.fft.ifft2(np.fft.ifftshift(padded)) * upsample**2
    intensity = np.abs(fine) ** 2
    peak = intensity.max()
    if not np.isfinite(peak) or peak <= 0:
        raise ValueError("probe: intensity is zero or not finite; cannot measure a diameter")
    area = np.count_nonzero(intensity >= 0.5 * peak) / upsample**2
    return float(2.0 * np.sqrt(area / np.pi))
