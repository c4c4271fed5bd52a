"""Ground-truth objects (complex transmission functions): seeded procedural ones, or read from a file.

An object is O = A * exp(i * phi) on a square grid of ``size`` pixels with
amplitude A = 1 - amplitude_contrast * f in (0, 1] and phase
phi = phase_max * g in [0, phase_max], where f and g are two independent
maps in [0, 1] drawn from the chosen family. Independent maps make amplitude
and phase separately identifiable: cross-talk between them shows up as error.

Family ``file`` reads the object instead (:func:`load_object_file`): a complex
array from an NPZ file, or amplitude and phase TIFF images, never unpickled;
resampled by ``file_pixel_size`` (study pixels per file pixel) and cropped to
``size`` about its centre. Every refusal is a :class:`DataContractError`
naming the file, the configuration key, the array key and what was expected
and found.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter, zoom

from ptycho_core.config import ObjectConfig
from ptycho_core.io.npz import DataContractError, read_npz
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


def make_object(cfg: ObjectConfig, *, training: bool = False) -> np.ndarray:
    """The study's ground-truth object (or, ``training``, its separate training object), complex128 (size, size).

    Procedural families are deterministic in the seed (``cfg.seed``, or
    ``train_seed`` for the training object): the amplitude and phase maps come
    from two independent streams of ``SeedSequence([seed, stream])``. Family
    ``file`` reads :meth:`ObjectConfig.source_files` (:func:`load_object_file`).
    """
    if cfg.family == "file":
        return load_object_file(cfg, training=training)
    if training:
        if cfg.train_seed is None:
            raise ValueError("training object: the configuration has no object.train_seed")
        cfg = cfg.training_object()
    f = _family_map(cfg, np.random.default_rng(object_entropy(cfg.seed, "amplitude")))
    g = _family_map(cfg, np.random.default_rng(object_entropy(cfg.seed, "phase")))
    amplitude = 1.0 - cfg.amplitude_contrast * f
    phase = cfg.phase_max * g
    return amplitude * np.exp(1j * phase)


def _image(path: Path, config_key: str) -> np.ndarray:
    """A 2-D real image from a TIFF file, as float64 (tifffile, which scikit-image installs)."""
    import tifffile

    if not path.is_file():
        raise DataContractError(f"{path} ({config_key}): file not found")
    try:
        img = tifffile.imread(path)
    except Exception as exc:  # tifffile raises several types for a file that is not a TIFF
        raise DataContractError(
            f"{path} ({config_key}): not a readable TIFF image ({type(exc).__name__}: {exc})"
        ) from exc
    img = np.squeeze(np.asarray(img))
    if img.ndim != 2 or img.dtype.kind not in "uif":
        raise DataContractError(
            f"{path} ({config_key}): image: expected a 2-D real image (one channel), found {img.dtype} {img.shape}"
        )
    return img.astype(np.float64)


def read_npz_source(path: Path, config_key: str) -> dict[str, np.ndarray]:
    """:func:`read_npz` (never unpickles) with the configuration key in any refusal: ``"{file} ({key}): ..."``."""
    try:
        return read_npz(path)
    except DataContractError as exc:
        text = str(exc)
        prefix = f"{path}: "
        raise DataContractError(
            f"{path} ({config_key}): {text[len(prefix) :] if text.startswith(prefix) else text}"
        ) from exc


def _read_source(sources: dict[str, str], key: str) -> tuple[np.ndarray, str]:
    """The complex array of the sources (an NPZ's ``key``, or amplitude * exp(i phase)); and a label for messages."""
    if len(sources) == 1:
        ((config_key, name),) = sources.items()
        path = Path(name)
        arrays = read_npz_source(path, config_key)
        label = f"{path} ({config_key}): key '{key}'"
        if key not in arrays:
            raise DataContractError(
                f"{label}: expected a complex 2-D array under this key, found keys {sorted(arrays)}"
            )
        arr = arrays[key]
        if arr.ndim != 2 or arr.dtype.kind != "c":
            raise DataContractError(
                f"{label}: expected a complex 2-D array (complex64 or complex128), found {arr.dtype} {arr.shape}"
            )
        return arr.astype(np.complex128), label
    (amp_key, amp_name), (phase_key, phase_name) = sources.items()
    amp, phase = _image(Path(amp_name), amp_key), _image(Path(phase_name), phase_key)
    label = f"{amp_name} ({amp_key}): image"
    if amp.shape != phase.shape:
        raise DataContractError(
            f"{phase_name} ({phase_key}): image: expected the shape of {amp_name}, {amp.shape}, found {phase.shape}"
        )
    if not np.isfinite(phase).all():
        raise DataContractError(
            f"{phase_name} ({phase_key}): image: expected finite phases (radians), "
            f"found {np.count_nonzero(~np.isfinite(phase))} non-finite pixels"
        )
    if not np.isfinite(amp).all():
        raise DataContractError(
            f"{label}: expected finite amplitudes, found {np.count_nonzero(~np.isfinite(amp))} non-finite pixels"
        )
    return amp * np.exp(1j * phase), label


def load_object_file(cfg: ObjectConfig, *, training: bool = False) -> np.ndarray:
    """A family-``file`` object (or its training object), complex128 (size, size), transmission in (0, 1].

    1. Read: the complex array under ``cfg.key`` of ``file``, or
       ``amplitude_file`` * exp(i ``phase_file``) (TIFF, phase in radians).
    2. Amplitude: finite, > 0 (an opaque pixel), and at most 1 (a transmission)
       unless ``normalise`` divides it by its maximum.
    3. Resample by ``file_pixel_size`` (study pixels per file pixel):
       ``scipy.ndimage.zoom`` of the real and imaginary parts, order 1
       (linear), ``grid_mode`` (pixel edges aligned, so the factor is exactly
       the ratio of pixel sizes), edges repeated; round(shape * factor)
       pixels. Linear interpolation of the field is a convex combination, so
       it never raises the amplitude above the file's. Factor 1: untouched.
    4. Crop ``size`` x ``size`` about the centre (start (H - size) // 2);
       refused when the resampled object is smaller.
    """
    sources = cfg.source_files(training=training)
    if not sources:
        raise ValueError(
            f"object: no {'training ' if training else ''}object file in the configuration (family {cfg.family!r})"
        )
    obj, label = _read_source(sources, cfg.key)
    if not np.isfinite(obj).all():
        raise DataContractError(
            f"{label}: expected finite values, found {np.count_nonzero(~np.isfinite(obj))} non-finite pixels"
        )
    amp = np.abs(obj)
    if amp.max() > 1 + 1e-6:
        if not cfg.normalise:
            raise DataContractError(
                f"{label}: expected amplitude at most 1 (a transmission), found maximum {amp.max():.6g}; "
                "rescale the file or set object.normalise: true (divides by the maximum)"
            )
    if amp.min() <= 0:
        raise DataContractError(
            f"{label}: expected amplitude > 0 everywhere (no opaque pixel), found minimum {amp.min():.6g}"
        )
    if cfg.normalise:
        obj = obj / amp.max()
    file_shape = obj.shape
    if cfg.file_pixel_size != 1.0:
        resample = lambda part: zoom(part, cfg.file_pixel_size, order=1, mode="nearest", grid_mode=True)  # noqa: E731
        obj = resample(obj.real) + 1j * resample(obj.imag)
    H, W = obj.shape
    if H < cfg.size or W < cfg.size:
        raise DataContractError(
            f"{label}: expected at least object.size x object.size = {cfg.size} x {cfg.size} pixels "
            f"after resampling by object.file_pixel_size {cfg.file_pixel_size}, "
            f"found {H} x {W} (file {file_shape[0]} x {file_shape[1]})"
        )
    r0, c0 = (H - cfg.size) // 2, (W - cfg.size) // 2
    obj = obj[r0 : r0 + cfg.size, c0 : c0 + cfg.size]
    if np.abs(obj).min() <= 0:
        raise DataContractError(
            f"{label}: expected amplitude > 0 after resampling, found minimum {np.abs(obj).min():.6g}"
        )
    return np.ascontiguousarray(obj, dtype=np.complex128)
