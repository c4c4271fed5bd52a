"""Evaluation metrics of the score step (docs/DESIGN.md section 7 and lessons 8, 12, 13, 15).

A reconstruction is scored against the ground-truth object, identically for
every method, in three steps:

1. **The known frame.** Every method reconstructs at the known scan
   positions with the known probe, so its frame is the ground truth's and
   the true shift is 0: nothing is searched or shifted. A translation search
   against the ground truth would only add noise (it moved low-dose
   reconstructions by pixels and cut their scores). The residual shift that
   the cross-correlation with the ground truth would pick
   (:func:`register_translation`: scikit-image ``phase_cross_correlation`` on
   the complex images, windowed and refined) is reported as a diagnostic
   only. Sign convention: ``shift_image(moving, register_translation(ref,
   moving))`` aligns ``moving`` onto ``ref``.
2. **Gauge.** The global phase offset is removed with the complex inner
   product over the region (reported, radians); a linear phase ramp can be
   removed as well (optional, reported). The amplitude is compared **raw**;
   the least-squares amplitude scale is reported as its own number and never
   applied by any function of this module (the secondary paper-style rows,
   below, apply their own ratio of means, to themselves only).
3. **Metrics** on the amplitude and on the phase (radians): MAE, RMSE, PSNR
   with an explicit data range (the ground truth's max - min in the region,
   never a 255 peak), SSIM (unclipped: a negative value is anticorrelated
   structure), MS-SSIM only with at least :data:`MIN_MS_SSIM_SCALES` scales
   (number recorded; its negative terms are clipped to 0, the published
   convention, so SSIM is the row that shows a negative correlation), and
   the FRC curve on a square of at least :data:`FRC_MIN_SIDE` px with its
   resolution at the 0.5 and 1/7 thresholds, in cycles/pixel (Nyquist = 0.5).

Regions: pointwise metrics (MAE, RMSE, PSNR, phase offset, amplitude scale)
accept any boolean mask; the window- and Fourier-based ones (SSIM, MS-SSIM,
FRC, registration) need a rectangle, given as a tuple of two step-1 slices or
as a boolean mask that fills its bounding box.

A NaN or infinite metric, non-finite input or a degenerate reconstruction
raises :class:`MetricError`: a metric is never written as NaN.

**Secondary "paper-style" metrics** (:func:`paper_phase_metrics`,
:func:`paper_amplitude_metrics`; ``score_reconstruction(...)["paper"]``).
The strict metrics above are the primary results. Next to them, and only so
that results can be set beside published figures (Hoidn et al., PtychoPINN,
and the earlier implementation of this study), the conventions of that
literature are computed on the *same* offset-removed reconstruction:

* phase: a best-fit plane a + b*y + c*x (unweighted least squares over the
  region, y and x pixel indices) is removed from the reconstructed phase and,
  separately, from the ground-truth phase (each image its own plane: a
  detrending of each image, not a fit of one onto the other); each is mapped
  to (phi + pi) / (2 pi); SSIM (same 7 x 7 window), MS-SSIM and PSNR with
  data range 1;
* amplitude: the reconstructed amplitude multiplied by the ratio of means
  mean|gt| / mean|recon| over the region (``mean_ratio``, recorded); SSIM,
  MS-SSIM and PSNR with the ground truth's max - min in the region as data
  range, like the strict ones. The ratio is applied to these secondary
  numbers only; the strict amplitude stays raw.

In the tidy tables of the score step and the report they are the quantities
``amplitude_paper`` and ``phase_paper`` (metrics ``ssim``, ``ms_ssim``,
``psnr``; ``amplitude_paper`` also ``mean_ratio``), never ``amplitude`` or
``phase``: the quantity name alone tells a secondary row from a primary one
(version 2 of the tidy rows, :data:`ptycho_core.io.records.METRIC_ROWS_VERSION`).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import fourier_shift, uniform_filter
from scipy.optimize import minimize
from scipy.signal import windows
from skimage.metrics import structural_similarity
from skimage.registration import phase_cross_correlation

#: Wang, Simoncelli & Bovik (2003) MS-SSIM weights, finest scale first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: scikit-image's default SSIM window (uniform, 7 x 7); the coarsest MS-SSIM
#: scale must be at least this many pixels on each side.
SSIM_WIN = 7
#: MS-SSIM is computed only where at least this many scales run (coarsest side >= SSIM_WIN px, so a
#: side of at least 28 px): with one or two scales it is SSIM of a region too small to say anything
#: at coarse scales, and the report would name it what it is not.
MIN_MS_SSIM_SCALES = 3
#: FRC needs a square of at least this side (12 rings up to Nyquist): on 8-12 px squares the curve
#: never left its maximum (36 of 48 phase rows of an earlier default study sat at Nyquist).
FRC_MIN_SIDE = 24
#: FRC thresholds reported by :func:`score_reconstruction`.
FRC_THRESHOLDS = {"frc50": 0.5, "frc1_7": 1.0 / 7.0}
#: Nyquist frequency in cycles/pixel.
NYQUIST = 0.5
#: Data range of the paper-style phase metrics: the phase is mapped to
#: (phi + pi) / (2 pi), so a range of 2 pi radians is 1.
PAPER_PHASE_DATA_RANGE = 1.0
#: A reconstruction whose amplitude std and phase std in the region are both
#: below this value is degenerate (constant) and is not scored.
DEGENERATE_STD = 1e-6


class MetricError(ValueError):
    """A metric cannot be computed or is not finite; the scoring job must fail."""


# --------------------------------------------------------------------------
# regions and input checks
# --------------------------------------------------------------------------


def region_mask(region, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of ``shape`` for ``region``: None (whole image), two slices, or a mask.

    Raises ValueError for anything else or for an empty region.
    """
    if region is None:
        mask = np.ones(shape, dtype=bool)
    elif isinstance(region, tuple):
        if len(region) != 2 or not all(isinstance(s, slice) for s in region):
            raise ValueError(f"region: expected a tuple of two slices, found {region!r}")
        mask = np.zeros(shape, dtype=bool)
        mask[region] = True
    else:
        mask = np.asarray(region)
        if mask.dtype != bool or mask.shape != tuple(shape):
            raise ValueError(
                f"region: expected a boolean mask of shape {tuple(shape)}, "
                f"found dtype {mask.dtype} and shape {mask.shape}"
            )
    if not mask.any():
        raise ValueError("region: expected at least one pixel, found an empty region")
    return mask


def region_box(region, shape: tuple[int, int]) -> tuple[slice, slice]:
    """The rectangle (two step-1 slices) that ``region`` must be, for window/Fourier metrics.

    Raises ValueError when the region is not a filled rectangle.
    """
    mask = region_mask(region, shape)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    if not mask[box].all() or mask.sum() != mask[box].size:
        raise ValueError(
            "region: expected a rectangle (two step-1 slices or a mask filling its bounding box) "
            "for SSIM, MS-SSIM, FRC and registration, found a non-rectangular region"
        )
    return box


def _image_pair(name: str, ref, img, complex_ok: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Validate two 2-D images of the same shape (real unless ``complex_ok``), finite."""
    ref, img = np.asarray(ref), np.asarray(img)
    if ref.ndim != 2 or ref.shape != img.shape:
        raise ValueError(f"{name}: expected two 2-D images of the same shape, found {ref.shape} and {img.shape}")
    for label, a in (("reference", ref), ("image", img)):
        if not complex_ok and np.iscomplexobj(a):
            raise ValueError(f"{name}: expected a real {label} image, found dtype {a.dtype}")
        if not np.isfinite(a).all():
            raise MetricError(f"{name}: {label} image contains NaN or inf")
    dtype = np.complex128 if complex_ok else np.float64
    return ref.astype(dtype, copy=False), img.astype(dtype, copy=False)


def _require_data_range(name: str, data_range: float) -> float:
    data_range = float(data_range)
    if not (np.isfinite(data_range) and data_range > 0):
        raise MetricError(f"{name}: expected a finite data_range > 0, found {data_range}")
    return data_range


# --------------------------------------------------------------------------
# registration and gauge
# --------------------------------------------------------------------------


def register_translation(
    reference: np.ndarray, moving: np.ndarray, upsample: int = 100, max_iter: int = 10
) -> tuple[float, float]:
    """Subpixel shift (dy, dx) in pixels that registers ``moving`` onto ``reference``.

    ``shift_image(moving, register_translation(reference, moving))`` ≈ ``reference``.
    Pass crops of the same region of both (complex or real) images.

    Policy (the same for every method): scikit-image ``phase_cross_correlation``
    on the complex images, precision 1/``upsample`` px, with

    * plain cross-correlation (``normalization=None``): the phase-normalised
      variant whitens the spectrum and lets noise at frequencies where a smooth
      object has no power pull the peak (errors of 0.3-1 px seen in tests);
    * each image's window-weighted mean removed and a 2-D Hann window applied,
      so that the non-periodic crop edges do not dominate the correlation;
    * iterative refinement: ``moving`` is Fourier-shifted by the current
      estimate and the residual shift is added, until both residual components
      are within 1/``upsample`` px (at most ``max_iter`` rounds). The fixed
      window biases a single estimate; the bias vanishes as the images align;
    * a final Nelder-Mead maximisation of the same windowed correlation, which
      removes what the rounds leave on a narrow region (tenths of a pixel on
      an 18-px-wide region otherwise).

    Complex registration works when the contrast is only in the phase, and the
    correlation peak does not depend on a global phase offset.
    """
    reference, moving = _image_pair("register_translation", reference, moving, complex_ok=True)
    if upsample < 1 or max_iter < 1:
        raise ValueError(
            f"register_translation: expected upsample >= 1 and max_iter >= 1, found {upsample}, {max_iter}"
        )
    w = np.outer(windows.hann(reference.shape[0], sym=False), windows.hann(reference.shape[1], sym=False))

    def prepared(x: np.ndarray) -> np.ndarray:
        return (x - np.sum(x * w) / np.sum(w)) * w

    ref_w = prepared(reference)
    total = np.zeros(2)
    for _ in range(max_iter):
        residual, _, _ = phase_cross_correlation(
            ref_w, prepared(shift_image(moving, tuple(total))), upsample_factor=upsample, normalization=None
        )
        total += residual
        if np.all(np.abs(residual) <= 1.0 / upsample):
            break

    # The windowed estimate converges slowly along a narrow axis (each round
    # recovers only part of the residual); finish by maximising the windowed
    # correlation |<ref, shifted moving>| / ||shifted moving|| directly.
    def cost(s: np.ndarray) -> float:
        m = prepared(shift_image(moving, (float(s[0]), float(s[1]))))
        return -float(np.abs(np.vdot(ref_w, m)) / (np.linalg.norm(m) + 1e-300))

    simplex = total + np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1]])
    best = minimize(
        cost,
        total,
        method="Nelder-Mead",
        options={"initial_simplex": simplex, "xatol": 1e-4, "fatol": 1e-14, "maxiter": 400},
    )
    if best.fun <= cost(total):
        total = best.x
    # reported to 1e-4 px: far below the registration's accuracy, and free of
    # the optimiser's last-digit noise (a global phase offset leaves it unchanged)
    dy, dx = (round(float(s), 4) for s in total)
    return dy, dx


def shift_image(img: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """Translate ``img`` by ``shift`` = (dy, dx) pixels (content moves to higher indices for > 0).

    Fourier shift (scipy.ndimage.fourier_shift), hence periodic over the whole
    frame: content leaving one edge re-enters at the opposite one. Real input
    gives real output; a zero shift returns an unchanged copy.
    """
    img = np.asarray(img)
    if img.ndim != 2:
        raise ValueError(f"shift_image: expected a 2-D image, found shape {img.shape}")
    dy, dx = (float(s) for s in shift)
    if dy == 0.0 and dx == 0.0:
        return img.copy()
    out = np.fft.ifft2(fourier_shift(np.fft.fft2(img), (dy, dx)))
    return out if np.iscomplexobj(img) else out.real


def remove_global_phase(reference: np.ndarray, recon: np.ndarray, mask=None) -> tuple[np.ndarray, float]:
    """Remove the global phase of ``recon`` relative to ``reference`` over ``mask``.

    offset = angle(sum(reference * conj(recon))) in radians (the phase that
    maximises the real inner product); returns (recon * exp(i offset), offset).
    """
    reference, recon = _image_pair("remove_global_phase", reference, recon, complex_ok=True)
    m = region_mask(mask, reference.shape)
    inner = np.sum(reference[m] * np.conj(recon[m]))
    if inner == 0:
        raise MetricError("phase offset: the inner product of reference and recon is 0 in the region")
    offset = float(np.angle(inner))
    return recon * np.exp(1j * offset), offset


def remove_phase_ramp(reference: np.ndarray, recon: np.ndarray, mask=None) -> tuple[np.ndarray, dict]:
    """Remove a linear phase ramp of ``recon`` relative to ``reference`` over ``mask``.

    The global phase is removed first; then the wrapped phase difference
    angle(reference * conj(recon)) is fitted by a + b*y + c*x (y, x pixel
    indices of the full frame) by least squares weighted by
    |reference| * |recon|, and recon * exp(i (a + b*y + c*x)) is returned.
    Valid while the residual difference stays within (-pi, pi] in the region.
    Returns (aligned recon, {"offset": radians incl. the global offset,
    "slope_y": rad/px, "slope_x": rad/px}).
    """
    reference, recon = _image_pair("remove_phase_ramp", reference, recon, complex_ok=True)
    m = region_mask(mask, reference.shape)
    recon, offset = remove_global_phase(reference, recon, m)
    y, x = np.nonzero(m)
    diff = np.angle(reference[m] * np.conj(recon[m]))
    w = np.sqrt(np.abs(reference[m]) * np.abs(recon[m]))
    design = np.stack([np.ones_like(diff), y.astype(float), x.astype(float)], axis=1)
    coef, *_ = np.linalg.lstsq(design * w[:, None], diff * w, rcond=None)
    if not np.isfinite(coef).all():
        raise MetricError("phase ramp: least-squares fit is not finite")
    yy, xx = np.indices(reference.shape)
    ramp = coef[0] + coef[1] * yy + coef[2] * xx
    coeffs = {"offset": offset + float(coef[0]), "slope_y": float(coef[1]), "slope_x": float(coef[2])}
    return recon * np.exp(1j * ramp), coeffs


def amplitude_scale(reference_amp: np.ndarray, recon_amp: np.ndarray, mask=None) -> float:
    """Least-squares s minimising ||reference_amp - s * recon_amp||^2 over ``mask``.

    s = sum(ref * recon) / sum(recon^2). Reported only: no function of this
    module applies it.
    """
    ref, rec = _image_pair("amplitude_scale", reference_amp, recon_amp)
    m = region_mask(mask, ref.shape)
    denom = float(np.sum(rec[m] ** 2))
    if denom == 0:
        raise MetricError("amplitude scale: the reconstructed amplitude is 0 in the region")
    return float(np.sum(ref[m] * rec[m]) / denom)


def remove_plane(img: np.ndarray, mask=None) -> tuple[np.ndarray, dict]:
    """``img`` minus its own least-squares plane a + b*y + c*x fitted over ``mask``.

    Unweighted least squares over the mask's pixels (y, x: pixel indices of the
    full frame; the fit is done on centred coordinates, for conditioning); the
    plane is subtracted from the whole frame. One image only: this detrends an
    image, it does not fit one image onto another. Used by the paper-style
    phase metrics (:func:`paper_phase_metrics`), on each phase separately.
    Returns (detrended image, {"offset": a (value at y = x = 0),
    "slope_y": b, "slope_x": c}). Non-finite input or a fit that is not
    finite raises MetricError; a mask whose pixels do not span a plane (one
    row, one column) raises MetricError.
    """
    img = np.asarray(img)
    if img.ndim != 2 or np.iscomplexobj(img):
        raise ValueError(f"remove_plane: expected a real 2-D image, found dtype {img.dtype} and shape {img.shape}")
    if not np.isfinite(img).all():
        raise MetricError("remove_plane: image contains NaN or inf")
    img = img.astype(np.float64, copy=False)
    m = region_mask(mask, img.shape)
    y, x = (v.astype(float) for v in np.nonzero(m))
    yc, xc = y.mean(), x.mean()
    design = np.stack([np.ones_like(y), y - yc, x - xc], axis=1)
    coef, _, rank, _ = np.linalg.lstsq(design, img[m], rcond=None)
    if rank < 3:
        raise MetricError("plane fit: the region's pixels do not span a plane (a single row or column)")
    if not np.isfinite(coef).all():
        raise MetricError("plane fit: least-squares coefficients are not finite")
    yy, xx = np.indices(img.shape)
    plane = coef[0] + coef[1] * (yy - yc) + coef[2] * (xx - xc)
    coeffs = {
        "offset": float(coef[0] - coef[1] * yc - coef[2] * xc),
        "slope_y": float(coef[1]),
        "slope_x": float(coef[2]),
    }
    return img - plane, coeffs


def mean_ratio(reference_amp: np.ndarray, recon_amp: np.ndarray, mask=None) -> float:
    """Ratio of means mean(reference_amp) / mean(recon_amp) over ``mask``.

    The amplitude normalisation of the PtychoPINN literature; applied only by
    :func:`paper_amplitude_metrics` (the secondary rows), never to the strict
    amplitude metrics. A reconstruction whose mean is 0 in the region, or a
    ratio that is not finite, raises MetricError.
    """
    ref, rec = _image_pair("mean_ratio", reference_amp, recon_amp)
    m = region_mask(mask, ref.shape)
    denom = float(np.mean(rec[m]))
    if denom == 0:
        raise MetricError("mean ratio: the reconstructed amplitude's mean is 0 in the region")
    ratio = float(np.mean(ref[m])) / denom
    if not np.isfinite(ratio):
        raise MetricError(f"mean ratio: not finite ({ratio!r})")
    return ratio


def unit_phase(phase: np.ndarray) -> np.ndarray:
    """(phase + pi) / (2 pi): radians in [-pi, pi] onto [0, 1] (the paper-style phase scale).

    An affine map, not a wrap: values outside [-pi, pi] land outside [0, 1].
    """
    return (np.asarray(phase, dtype=np.float64) + np.pi) / (2.0 * np.pi)


# --------------------------------------------------------------------------
# scalar metrics on real images
# --------------------------------------------------------------------------


def mae(ref: np.ndarray, img: np.ndarray, region=None) -> float:
    """Mean absolute error over ``region`` (None, two slices or a boolean mask)."""
    ref, img = _image_pair("mae", ref, img)
    m = region_mask(region, ref.shape)
    return float(np.mean(np.abs(ref[m] - img[m])))


def rmse(ref: np.ndarray, img: np.ndarray, region=None) -> float:
    """Root mean squared error over ``region`` (None, two slices or a boolean mask)."""
    ref, img = _image_pair("rmse", ref, img)
    m = region_mask(region, ref.shape)
    return float(np.sqrt(np.mean((ref[m] - img[m]) ** 2)))


def psnr(ref: np.ndarray, img: np.ndarray, data_range: float, region=None) -> float:
    """Peak signal-to-noise ratio 10 log10(data_range^2 / MSE) in dB over ``region``.

    ``data_range`` is required: pass the ground truth's max - min in the
    region (never 255). Returns inf when the images are equal (MSE = 0).
    """
    data_range = _require_data_range("psnr", data_range)
    ref, img = _image_pair("psnr", ref, img)
    m = region_mask(region, ref.shape)
    mse = float(np.mean((ref[m] - img[m]) ** 2))
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def _crop_pair(name: str, ref, img, region) -> tuple[np.ndarray, np.ndarray]:
    ref, img = _image_pair(name, ref, img)
    box = region_box(region, ref.shape)
    ref, img = ref[box], img[box]
    if min(ref.shape) < SSIM_WIN:
        raise ValueError(f"{name}: expected a region of at least {SSIM_WIN} x {SSIM_WIN} pixels, found {ref.shape}")
    return ref, img


def ssim(ref: np.ndarray, img: np.ndarray, data_range: float, region=None) -> float:
    """Mean SSIM (scikit-image defaults: 7 x 7 uniform window, K1 = 0.01, K2 = 0.03).

    Computed on the rectangle ``region`` with the explicit ``data_range``.
    """
    data_range = _require_data_range("ssim", data_range)
    ref, img = _crop_pair("ssim", ref, img, region)
    return float(structural_similarity(ref, img, data_range=data_range, win_size=SSIM_WIN))


def _ssim_and_cs(ref: np.ndarray, img: np.ndarray, data_range: float) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term, same algorithm as scikit-image's SSIM.

    Uniform 7 x 7 window, sample covariance, K1 = 0.01, K2 = 0.03, means over
    the image minus a 3-pixel border.
    """
    np_win = SSIM_WIN**2
    cov_norm = np_win / (np_win - 1)
    ux, uy = uniform_filter(ref, SSIM_WIN), uniform_filter(img, SSIM_WIN)
    vx = cov_norm * (uniform_filter(ref * ref, SSIM_WIN) - ux * ux)
    vy = cov_norm * (uniform_filter(img * img, SSIM_WIN) - uy * uy)
    vxy = cov_norm * (uniform_filter(ref * img, SSIM_WIN) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    cs = (2 * vxy + c2) / (vx + vy + c2)
    lum = (2 * ux * uy + c1) / (ux**2 + uy**2 + c1)
    pad = (SSIM_WIN - 1) // 2
    inner = (slice(pad, -pad), slice(pad, -pad))
    return float((lum * cs)[inner].mean()), float(cs[inner].mean())


def ms_ssim_scales(shape: tuple[int, int]) -> int:
    """Number of MS-SSIM scales (1..5) for an image of ``shape``.

    The coarsest scale, after dyadic downsampling, must keep at least 7
    pixels (the SSIM window) on each side.
    """
    side = min(shape)
    if side < SSIM_WIN:
        raise ValueError(f"ms_ssim: expected an image of at least {SSIM_WIN} pixels per side, found {tuple(shape)}")
    n = 1
    while n < len(MS_SSIM_WEIGHTS) and side // 2**n >= SSIM_WIN:
        n += 1
    return n


def _downsample2(img: np.ndarray) -> np.ndarray:
    """2 x 2 block average (a trailing odd row or column is dropped)."""
    h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    img = img[:h, :w]
    return 0.25 * (img[0::2, 0::2] + img[1::2, 0::2] + img[0::2, 1::2] + img[1::2, 1::2])


def ms_ssim(ref: np.ndarray, img: np.ndarray, data_range: float, region=None) -> tuple[float, int]:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003) on the rectangle ``region``.

    MS-SSIM = prod_{j < M} cs_j^{w_j} * ssim_M^{w_M}: the mean
    contrast-structure term at the M - 1 finer scales and the mean SSIM at the
    coarsest one, scales obtained by 2 x 2 averaging, each computed like
    :func:`ssim`. M is as large as the size allows (coarsest side >= 7 px,
    at most 5, see :func:`ms_ssim_scales`) and at least
    :data:`MIN_MS_SSIM_SCALES` (a smaller region raises ValueError); the
    first M standard weights are renormalised to sum 1. Negative terms (anticorrelated structure) are
    clipped to 0 before the powers, as tf.image.ssim_multiscale does, so the
    value lies in [0, 1] and is never NaN. Returns (value, M).
    """
    data_range = _require_data_range("ms_ssim", data_range)
    ref, img = _crop_pair("ms_ssim", ref, img, region)
    n = ms_ssim_scales(ref.shape)
    if n < MIN_MS_SSIM_SCALES:
        raise ValueError(
            f"ms_ssim: expected a region of at least {SSIM_WIN * 2 ** (MIN_MS_SSIM_SCALES - 1)} px per side "
            f"({MIN_MS_SSIM_SCALES} scales), found {tuple(ref.shape)} ({n} scale(s))"
        )
    weights = np.asarray(MS_SSIM_WEIGHTS[:n])
    weights = weights / weights.sum()
    terms = []
    for scale in range(n):
        s, cs = _ssim_and_cs(ref, img, data_range)
        terms.append(s if scale == n - 1 else cs)
        if scale < n - 1:
            ref, img = _downsample2(ref), _downsample2(img)
    terms = np.maximum(np.asarray(terms), 0.0)
    return float(np.prod(terms**weights)), n


# --------------------------------------------------------------------------
# Fourier ring correlation
# --------------------------------------------------------------------------


def _window2d(n: int, window: str | None, tukey_alpha: float) -> np.ndarray:
    if window is None:
        return np.ones((n, n))
    if window == "tukey":
        w = windows.tukey(n, alpha=tukey_alpha, sym=False)
    elif window == "hann":
        w = windows.hann(n, sym=False)
    else:
        raise ValueError(f"frc: expected window 'tukey', 'hann' or None, found {window!r}")
    return np.outer(w, w)


def frc(
    img1: np.ndarray,
    img2: np.ndarray,
    region=None,
    window: str | None = "tukey",
    tukey_alpha: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """Fourier ring correlation of two real images; returns (freq, curve).

    The rectangle ``region`` is cropped to its central square of side N.
    Each image has its window-weighted mean removed and is multiplied by a
    separable window (default Tukey, alpha 0.25: flat centre, cosine edges),
    which suppresses the spurious correlation of the non-periodic frame edges.
    Ring k (k = 1 .. N // 2) holds the frequencies with round(|f| * N) = k and
    is reported at freq = k / N cycles/pixel (up to Nyquist 0.5 for even N);
    the DC pixel (ring 0, the removed mean) is excluded.
    curve_k = Re sum F1 F2* / sqrt(sum |F1|^2 sum |F2|^2): 1 for identical
    images, ~0 (within ~1/sqrt(ring pixel count)) for independent noise.
    A constant image or a ring without power raises MetricError.
    """
    a, b = _image_pair("frc", img1, img2)
    box = region_box(region, a.shape)
    a, b = a[box], b[box]
    n = min(a.shape)
    if n < FRC_MIN_SIDE:
        raise ValueError(f"frc: expected a region of at least {FRC_MIN_SIDE} px per side, found {a.shape}")
    oy, ox = (a.shape[0] - n) // 2, (a.shape[1] - n) // 2
    a, b = a[oy : oy + n, ox : ox + n], b[oy : oy + n, ox : ox + n]
    w = _window2d(n, window, tukey_alpha)
    spectra = []
    for label, x in (("img1", a), ("img2", b)):
        if np.std(x) <= 1e-12 * max(1.0, float(np.max(np.abs(x)))):
            raise MetricError(f"frc: {label} is constant, the correlation is undefined")
        x = x - np.sum(x * w) / np.sum(w)
        spectra.append(np.fft.fft2(x * w))
    f1, f2 = spectra
    k = np.fft.fftfreq(n) * n
    ring = np.rint(np.hypot(k[:, None], k[None, :])).astype(int).ravel()
    n_rings = n // 2
    keep = (ring >= 1) & (ring <= n_rings)
    ring = ring[keep]
    cross = np.bincount(ring, weights=np.real(f1 * np.conj(f2)).ravel()[keep], minlength=n_rings + 1)[1:]
    p1 = np.bincount(ring, weights=(np.abs(f1) ** 2).ravel()[keep], minlength=n_rings + 1)[1:]
    p2 = np.bincount(ring, weights=(np.abs(f2) ** 2).ravel()[keep], minlength=n_rings + 1)[1:]
    if np.any(p1 <= 0) or np.any(p2 <= 0):
        raise MetricError("frc: a ring has no power in one of the images, the correlation is undefined")
    curve = cross / np.sqrt(p1 * p2)
    freq = np.arange(1, n_rings + 1) / n
    return freq, curve


def frc_resolution(freq: np.ndarray, curve: np.ndarray, threshold: float) -> float:
    """First frequency (cycles/pixel) at which ``curve`` drops below ``threshold``.

    Linear interpolation between the last ring at or above the threshold and
    the first ring below it. If the first ring is already below, its frequency
    is returned. If the curve never drops below the threshold, the Nyquist
    frequency 0.5 is returned (resolution limited by the sampling).
    """
    freq, curve = np.asarray(freq, dtype=float), np.asarray(curve, dtype=float)
    if freq.ndim != 1 or freq.shape != curve.shape or freq.size == 0:
        raise ValueError(
            f"frc_resolution: expected 1-D freq and curve of equal length, found {freq.shape}, {curve.shape}"
        )
    if not (np.isfinite(freq).all() and np.isfinite(curve).all()):
        raise MetricError("frc_resolution: freq or curve contains NaN or inf")
    if not 0 < threshold < 1:
        raise ValueError(f"frc_resolution: expected 0 < threshold < 1, found {threshold}")
    below = np.flatnonzero(curve < threshold)
    if below.size == 0:
        return NYQUIST
    i = int(below[0])
    if i == 0:
        return float(freq[0])
    f0, f1, c0, c1 = freq[i - 1], freq[i], curve[i - 1], curve[i]
    return float(f0 + (c0 - threshold) * (f1 - f0) / (c0 - c1))


# --------------------------------------------------------------------------
# the whole scoring
# --------------------------------------------------------------------------


def _check_finite(value, metric: str, quantity: str) -> None:
    if not np.all(np.isfinite(value)):
        raise MetricError(f"{quantity} {metric}: not finite ({value!r})")


def is_degenerate(recon: np.ndarray, mask: np.ndarray) -> bool:
    """True when ``recon`` is constant in ``mask``: std of amplitude and of phase both < 1e-6.

    The phase std is taken about the region's mean phase (the values are
    rotated so that it is 0 first), so a constant phase near +-pi does not wrap.
    """
    vals = np.asarray(recon)[mask]
    amp = np.abs(vals)
    mean = np.mean(vals)
    rot = np.exp(-1j * np.angle(mean)) if mean != 0 else 1.0
    phase = np.angle(vals * rot)
    return bool(np.std(amp) < DEGENERATE_STD and np.std(phase) < DEGENERATE_STD)


def _quantity_metrics(ref: np.ndarray, img: np.ndarray, mask: np.ndarray, box, quantity: str) -> dict:
    vals = ref[mask]
    data_range = float(vals.max() - vals.min())
    if not data_range > 0:
        raise MetricError(f"{quantity} psnr: the ground truth is constant in the region (data range 0)")
    ms_value, n_scales = ms_ssim(ref, img, data_range, box)
    freq, curve = frc(ref, img, box)
    out = {
        "mae": mae(ref, img, mask),
        "rmse": rmse(ref, img, mask),
        "data_range": data_range,
        "psnr": psnr(ref, img, data_range, mask),
        "ssim": ssim(ref, img, data_range, box),
        "ms_ssim": ms_value,
        "ms_ssim_scales": n_scales,
    }
    for name, threshold in FRC_THRESHOLDS.items():
        out[name] = frc_resolution(freq, curve, threshold)
    for name, value in out.items():
        _check_finite(value, name, quantity)
    _check_finite(curve, "frc curve", quantity)
    out["frc_freq"], out["frc_curve"] = freq, curve
    return out


def _finite_dict(out: dict, quantity: str) -> dict:
    for name, value in out.items():
        if not isinstance(value, dict):
            _check_finite(value, name, quantity)
    return out


def paper_phase_metrics(gt_phase: np.ndarray, rec_phase: np.ndarray, region) -> dict:
    """Secondary, paper-style phase metrics (tidy quantity ``phase_paper``).

    ``gt_phase`` and ``rec_phase`` are real phase images in radians, the
    reconstruction in the known frame with its global offset removed (pass the
    phases the strict metrics use, as :func:`score_reconstruction` does; this
    function does not shift). Each has its own least-squares plane removed
    over ``region`` (:func:`remove_plane`), is mapped by :func:`unit_phase`
    to (phi + pi) / (2 pi), and the pair is scored with data range 1
    (:data:`PAPER_PHASE_DATA_RANGE`): ``ssim`` (:func:`ssim`, 7 x 7 window),
    ``ms_ssim`` and ``ms_ssim_scales`` (:func:`ms_ssim`), ``psnr``
    (:func:`psnr`). Also returns ``data_range`` (1.0) and the two planes
    ``plane_gt`` and ``plane_recon`` ({"offset", "slope_y", "slope_x"},
    radians and rad/px). ``region`` must be a rectangle. A non-finite value
    (including an infinite PSNR: identical detrended phases) raises
    MetricError naming ``phase_paper``.
    """
    quantity = "phase_paper"
    gt_phase, rec_phase = _image_pair(quantity, gt_phase, rec_phase)
    mask = region_mask(region, gt_phase.shape)
    box = region_box(mask, gt_phase.shape)
    gt_flat, plane_gt = remove_plane(gt_phase, mask)
    rec_flat, plane_recon = remove_plane(rec_phase, mask)
    out = _paper_scores(unit_phase(gt_flat), unit_phase(rec_flat), PAPER_PHASE_DATA_RANGE, mask, box)
    _finite_dict(out, quantity)
    out["plane_gt"], out["plane_recon"] = plane_gt, plane_recon
    return out


def paper_amplitude_metrics(gt_amp: np.ndarray, rec_amp: np.ndarray, region) -> dict:
    """Secondary, paper-style amplitude metrics (tidy quantity ``amplitude_paper``).

    ``rec_amp`` (in the known frame, as for the strict metrics) is multiplied by
    ``mean_ratio`` = mean(gt_amp) / mean(rec_amp) over ``region``
    (:func:`mean_ratio`) -- for these secondary numbers only -- and scored
    against ``gt_amp`` with the ground truth's max - min in the region as
    data range (as the strict amplitude metrics): ``ssim``, ``ms_ssim``,
    ``ms_ssim_scales``, ``psnr``. Also returns ``mean_ratio`` and
    ``data_range``. ``region`` must be a rectangle. A constant ground truth
    in the region, a reconstruction of mean 0, or a non-finite value
    (including an infinite PSNR: identical after rescaling) raises
    MetricError naming ``amplitude_paper``.
    """
    quantity = "amplitude_paper"
    gt_amp, rec_amp = _image_pair(quantity, gt_amp, rec_amp)
    mask = region_mask(region, gt_amp.shape)
    box = region_box(mask, gt_amp.shape)
    vals = gt_amp[mask]
    data_range = float(vals.max() - vals.min())
    if not data_range > 0:
        raise MetricError(f"{quantity} psnr: the ground truth is constant in the region (data range 0)")
    ratio = mean_ratio(gt_amp, rec_amp, mask)
    out = {"mean_ratio": ratio, **_paper_scores(gt_amp, ratio * rec_amp, data_range, mask, box)}
    return _finite_dict(out, quantity)


def _paper_scores(ref: np.ndarray, img: np.ndarray, data_range: float, mask: np.ndarray, box) -> dict:
    """The paper-style rows' scores of one prepared pair: SSIM, MS-SSIM (with its scales), PSNR."""
    ms_value, n_scales = ms_ssim(ref, img, data_range, box)
    return {
        "data_range": data_range,
        "ssim": ssim(ref, img, data_range, box),
        "ms_ssim": ms_value,
        "ms_ssim_scales": n_scales,
        "psnr": psnr(ref, img, data_range, mask),
    }


def score_reconstruction(
    gt: np.ndarray,
    recon: np.ndarray,
    region,
    upsample: int = 100,
    remove_ramp: bool = False,
) -> dict:
    """Score complex ``recon`` against the complex ground truth ``gt`` on ``region``, in the known frame.

    ``region``: two slices or a boolean mask (rectangular: SSIM, MS-SSIM, FRC
    and the residual-shift diagnostic use it as a rectangle). Steps, identical
    for every method:

    1. ``recon`` constant in the region (:func:`is_degenerate`) -> MetricError;
    2. no translation: ``recon`` is in the ground truth's frame (known
       positions, known probe). ``residual_shift`` (dy, dx) is what
       :func:`register_translation` on the region's crops would apply: a
       diagnostic, reported, never applied;
    3. global phase offset removed (:func:`remove_global_phase`), and the
       phase ramp too if ``remove_ramp`` (:func:`remove_phase_ramp`);
    4. amplitude: |gt| vs |recon| raw; ``amplitude_scale`` reported only;
       phase: angle(gt) vs angle(gt) + angle(recon * conj(gt)), i.e. the
       reconstructed phase on the branch nearest the ground truth (radians);
    5. per quantity: mae, rmse, data_range (gt max - min in the region), psnr,
       ssim (unclipped), ms_ssim, ms_ssim_scales (at least
       :data:`MIN_MS_SSIM_SCALES`), frc50 and frc1_7 (cycles/pixel),
       frc_freq and frc_curve (arrays);
    6. secondary, paper-style metrics on the same images as step 4:
       ``paper["phase"]`` = :func:`paper_phase_metrics` (each phase's own
       plane removed, mapped to (phi + pi) / (2 pi), data range 1) and
       ``paper["amplitude"]`` = :func:`paper_amplitude_metrics` (recon
       amplitude times the ratio of means, applied there only). Tidy
       quantities ``phase_paper`` and ``amplitude_paper``.

    The reconstructed phase of both the strict and the paper metrics is
    angle(gt) + angle(recon * conj(gt)), not angle(recon): the two agree up
    to a multiple of 2 pi, but angle(recon) wraps at +-pi wherever the
    object's phase (plus any residual ramp) leaves (-pi, pi], and a plane
    fitted to a wrapped phase is meaningless; the branch nearest the ground
    truth wraps only where the *error* exceeds pi.

    Returns {"residual_shift": (dy, dx), "phase_offset" (rad), "phase_ramp"
    (dict or None), "amplitude_scale", "region_pixels", "region_shape",
    "amplitude": {...}, "phase": {...}, "paper": {"amplitude": {...},
    "phase": {...}}}. Any NaN or inf metric raises MetricError naming the
    metric and the quantity; so does an exact copy of the ground truth (MSE
    0, infinite PSNR). A region too small for MS-SSIM's scales or the FRC
    raises ValueError.
    """
    gt, recon = _image_pair("score_reconstruction", gt, recon, complex_ok=True)
    mask = region_mask(region, gt.shape)
    box = region_box(mask, gt.shape)
    if is_degenerate(recon, mask):
        raise MetricError(
            f"reconstruction is degenerate: amplitude and phase std in the region both < {DEGENERATE_STD}"
        )
    residual = register_translation(gt[box], recon[box], upsample)
    _check_finite(residual, "residual shift", "complex")
    if remove_ramp:
        recon, ramp = remove_phase_ramp(gt, recon, mask)
        offset = ramp["offset"]
    else:
        recon, offset = remove_global_phase(gt, recon, mask)
        ramp = None
    _check_finite(offset, "phase offset", "phase")
    gt_amp, rec_amp = np.abs(gt), np.abs(recon)
    scale = amplitude_scale(gt_amp, rec_amp, mask)
    _check_finite(scale, "amplitude scale", "amplitude")
    gt_phase = np.angle(gt)
    rec_phase = gt_phase + np.angle(recon * np.conj(gt))
    return {
        "residual_shift": residual,
        "phase_offset": offset,
        "phase_ramp": ramp,
        "amplitude_scale": scale,
        "region_pixels": int(mask.sum()),
        "region_shape": (box[0].stop - box[0].start, box[1].stop - box[1].start),
        "amplitude": _quantity_metrics(gt_amp, rec_amp, mask, box, "amplitude"),
        "phase": _quantity_metrics(gt_phase, rec_phase, mask, box, "phase"),
        "paper": {
            "amplitude": paper_amplitude_metrics(gt_amp, rec_amp, mask),
            "phase": paper_phase_metrics(gt_phase, rec_phase, mask),
        },
    }
