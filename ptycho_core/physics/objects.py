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
and found; besides the format, the loader refuses implausible content before
any job: negative amplitudes, a phase range that cannot be radians, a file
too large for the memory bound, and an object without phase contrast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter, zoom

from ptycho_core.config import ObjectConfig
from ptycho_core.io.npz import DataContractError, read_npz
from ptycho_core.physics.limits import BOUND, MAX_ARRAY_PIXELS, resampled_shape
from ptycho_core.streams import object_entropy

#: Stream identifiers of the object generator's random draws (see rng policy
#: in :mod:`ptycho_core.physics.simulate`): amplitude map, phase map.

#: The least phase contrast of a study object: the standard deviation of its phase (numpy.angle, radians) over the
#: size x size object, as the ground_truth step stores it (complex64). The study scores the phase, so an object
#: without phase contrast has nothing to score; a file object is refused at load on this criterion, and the
#: ground_truth step's output check ("phase has contrast") uses the same.
MIN_PHASE_STD = 1e-3

#: The largest range (max - min) of a phase image, in radians: 4 pi. A phase in radians is meaningful modulo 2 pi, so a
#: wrapped map spans at most 2 pi; twice that leaves room for an unwrapped phase of a thick object (two turns), and a
#: larger range loses nothing by wrapping (numpy.angle(numpy.exp(1j * phase)) is the same transmission). A map in
#: degrees spans more than 4 pi = 12.6 units as soon as its contrast exceeds 12.6 degrees (0.22 rad), so a degree map
#: (0 to 360) or one in grey levels is refused rather than read as tens of radians, which resampling would average
#: away (the amplitude falls towards 0).
MAX_PHASE_RANGE = 4 * np.pi


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
    """A 2-D real image from a TIFF file, in its own dtype (tifffile, which scikit-image installs)."""
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
    return img


def _check_size(label: str, shape: tuple[int, int], factor: float) -> None:
    """Refuse a file whose array, as read or resampled by ``factor``, exceeds the memory bound.

    Called with the shape as read, before the array is converted (complex128) or resampled: the sizes come from the
    shape alone (:mod:`ptycho_core.physics.limits`), so the refusal comes before the large array is made.
    """
    (H, W), (h, w) = shape, resampled_shape(shape, factor)
    if H * W > MAX_ARRAY_PIXELS:
        raise DataContractError(
            f"{label}: expected a file within {BOUND}, found {H} x {W} = {H * W} pixels; crop or bin the file"
        )
    if h * w > MAX_ARRAY_PIXELS:
        raise DataContractError(
            f"{label}: expected the object resampled by object.file_pixel_size {factor:g} within {BOUND}, "
            f"found {h} x {w} = {h * w} pixels (file {H} x {W}); lower object.file_pixel_size"
        )


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


def _read_source(sources: dict[str, str], key: str, factor: float) -> tuple[np.ndarray, str]:
    """The complex array of the sources (an NPZ's ``key``, or amplitude * exp(i phase)); and a label for messages.

    Plausibility checks, each a :class:`DataContractError` naming the file and configuration key: the array's size
    against the memory bound, as read and as resampled by ``factor`` (before either is made, :func:`_check_size`);
    for images, amplitudes >= 0 (a background-subtracted image is not a transmission; its negative pixels would
    become a pi phase jump) and a phase range max - min of at most :data:`MAX_PHASE_RANGE` (radians, not degrees).
    An NPZ's complex array has amplitude |O| >= 0 by construction and a phase only modulo 2 pi.
    """
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
        _check_size(label, arr.shape, factor)
        return arr.astype(np.complex128), label
    (amp_key, amp_name), (phase_key, phase_name) = sources.items()
    amp, phase = _image(Path(amp_name), amp_key), _image(Path(phase_name), phase_key)
    label = f"{amp_name} ({amp_key}): image"
    phase_label = f"{phase_name} ({phase_key}): image"
    if amp.shape != phase.shape:
        raise DataContractError(f"{phase_label}: expected the shape of {amp_name}, {amp.shape}, found {phase.shape}")
    _check_size(label, amp.shape, factor)
    amp, phase = amp.astype(np.float64), phase.astype(np.float64)
    if not np.isfinite(phase).all():
        raise DataContractError(
            f"{phase_label}: expected finite phases (radians), "
            f"found {np.count_nonzero(~np.isfinite(phase))} non-finite pixels"
        )
    if not np.isfinite(amp).all():
        raise DataContractError(
            f"{label}: expected finite amplitudes, found {np.count_nonzero(~np.isfinite(amp))} non-finite pixels"
        )
    if amp.min() < 0:
        raise DataContractError(
            f"{label}: expected amplitudes >= 0 (the modulus of the transmission; its phase is {phase_name}), "
            f"found {np.count_nonzero(amp < 0)} negative pixels, minimum {amp.min():.6g}; "
            "a background-subtracted image is not an amplitude: give the transmitted amplitude itself"
        )
    lo, hi = float(phase.min()), float(phase.max())
    if hi - lo > MAX_PHASE_RANGE:
        raise DataContractError(
            f"{phase_label}: expected a phase in radians, max - min at most 4 pi = {MAX_PHASE_RANGE:.4g}, "
            f"found [{lo:.6g}, {hi:.6g}] (range {hi - lo:.6g}); a phase in degrees: convert it to radians "
            "(numpy.deg2rad, times pi/180); an unwrapped phase of more than two turns: wrap it, "
            "numpy.angle(numpy.exp(1j * phase)), the same transmission"
        )
    return amp * np.exp(1j * phase), label


def load_object_file(cfg: ObjectConfig, *, training: bool = False) -> np.ndarray:
    """A family-``file`` object (or its training object), complex128 (size, size), transmission in (0, 1].

    1. Read: the complex array under ``cfg.key`` of ``file``, or
       ``amplitude_file`` * exp(i ``phase_file``) (TIFF, phase in radians);
       refused before any larger array is made if the file, or the file
       resampled by ``file_pixel_size``, exceeds the memory bound
       (:mod:`ptycho_core.physics.limits`); images: amplitudes >= 0, phase
       range at most :data:`MAX_PHASE_RANGE` (:func:`_read_source`).
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
    5. Phase contrast: the std of the cropped object's phase above
       :data:`MIN_PHASE_STD`, the ground_truth step's criterion, so that a
       file without phase contrast is refused here, naming its key, and not
       by that step's output check. Amplitude contrast is not required.
    """
    sources = cfg.source_files(training=training)
    if not sources:
        raise ValueError(
            f"object: no {'training ' if training else ''}object file in the configuration (family {cfg.family!r})"
        )
    obj, label = _read_source(sources, cfg.key, cfg.file_pixel_size)
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
    phase_std = float(np.angle(obj.astype(np.complex64)).std())  # as the ground_truth step stores and checks it
    if not phase_std > MIN_PHASE_STD:
        raise DataContractError(
            f"{label}: expected phase contrast, a phase std above {MIN_PHASE_STD:g} rad over the "
            f"{cfg.size} x {cfg.size} object (after resampling and cropping), found {phase_std:.3g} rad; "
            "the study scores the phase, so the object must have some (a pure phase object is fine, "
            "one without phase is not)"
        )
    return np.ascontiguousarray(obj, dtype=np.complex128)
