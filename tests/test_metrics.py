"""Evaluation metrics of the score step (docs/DESIGN.md section 7, lessons 8 and 12).

Test objects are smooth random complex images (Gaussian-filtered noise,
amplitude in [0.5, 1], phase in [0, 1.5] rad), periodic so that a Fourier
shift is an exact translation. Expected values come from closed forms
written here (PSNR formula, least-squares scale, interpolated crossing,
FRC of signal + equal-power noise = 1/sqrt(2)), never from the code under
test. Tolerances: 1e-12 for closed forms in float64, 1e-9 for invariances
that go through FFTs, 0.05 px for registration (the issue's bound).

Paper-style (secondary) metrics: an image whose only defect is the one the
convention removes (a phase plane; an amplitude scale) scores SSIM 1 up to
float64 rounding of the plane fit or of the ratio (~1e-14, asserted to 1e-6
as the task's bound), while the strict metrics show the defect.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

from ptycho_core.evaluate import metrics as metrics_module
from ptycho_core.evaluate.metrics import (
    MetricError,
    amplitude_scale,
    frc,
    frc_resolution,
    is_degenerate,
    mae,
    mean_ratio,
    ms_ssim,
    ms_ssim_scales,
    paper_amplitude_metrics,
    paper_phase_metrics,
    psnr,
    region_mask,
    register_translation,
    remove_global_phase,
    remove_phase_ramp,
    remove_plane,
    rmse,
    score_reconstruction,
    shift_image,
    ssim,
    unit_phase,
)

EXACT = 1e-12
FFT = 1e-9
SHIFT_TOL = 0.05
REGION = (slice(16, 112), slice(16, 112))


def smooth_map(n: int, rng: np.random.Generator, sigma: float = 3.0) -> np.ndarray:
    """Periodic Gaussian-filtered noise mapped onto [0, 1]."""
    f = gaussian_filter(rng.standard_normal((n, n)), sigma, mode="wrap")
    return (f - f.min()) / (f.max() - f.min())


def smooth_object(n: int = 128, seed: int = 0, amplitude: bool = True) -> np.ndarray:
    """Amplitude in [0.5, 1] (flat 1 if not ``amplitude``), phase in [0, 1.5] rad."""
    rng = np.random.default_rng(seed)
    amp = 0.5 + 0.5 * smooth_map(n, rng) if amplitude else np.ones((n, n))
    return amp * np.exp(1j * 1.5 * smooth_map(n, rng))


def complex_noise(shape, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return sigma * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


def scalar_metrics(score: dict) -> dict:
    """The scalar metrics of both quantities, strict and paper-style, flattened (arrays and planes left out)."""
    out = {
        f"{q}.{k}": v for q in ("amplitude", "phase") for k, v in score[q].items() if k not in ("frc_freq", "frc_curve")
    }
    out.update(
        {
            f"paper.{q}.{k}": v
            for q in ("amplitude", "phase")
            for k, v in score["paper"][q].items()
            if not isinstance(v, dict)
        }
    )
    return out


def lstsq_plane(img: np.ndarray, box) -> np.ndarray:
    """The least-squares plane a + b*y + c*x of img over the rectangle box, on the whole frame (written here)."""
    yy, xx = np.indices(img.shape)
    design = np.stack([np.ones(img[box].size), yy[box].ravel(), xx[box].ravel()], axis=1)
    coef = np.linalg.lstsq(design, img[box].ravel(), rcond=None)[0]
    return coef[0] + coef[1] * yy + coef[2] * xx


# ---------------------------------------------------------------- perfect self


def test_metrics_of_an_image_against_itself_are_perfect():
    img = np.abs(smooth_object(64, seed=1))
    assert mae(img, img) == 0.0
    assert rmse(img, img) == 0.0
    assert psnr(img, img, data_range=float(img.max() - img.min())) == math.inf
    assert ssim(img, img, data_range=0.5) == pytest.approx(1.0, abs=EXACT)
    value, n = ms_ssim(img, img, data_range=0.5)
    assert value == pytest.approx(1.0, abs=EXACT) and n == 4
    freq, curve = frc(img, img)
    np.testing.assert_allclose(curve, 1.0, atol=EXACT)
    assert frc_resolution(freq, curve, 0.5) == 0.5


def test_exact_copy_scores_infinite_psnr_and_fails_the_job():
    gt = smooth_object(64, seed=2)
    with pytest.raises(MetricError, match="psnr"):
        score_reconstruction(gt, gt.copy(), (slice(8, 56), slice(8, 56)))


def test_a_phase_offset_copy_is_perfect_in_the_known_frame():
    gt = smooth_object(128, seed=3)
    # a copy 0.01 % off in amplitude and phase (an exact copy fails: infinite PSNR)
    recon = 1.0001 * np.abs(gt) * np.exp(1j * (1.0001 * np.angle(gt) + 0.4))
    s = score_reconstruction(gt, recon, REGION)
    np.testing.assert_allclose(s["residual_shift"], (0.0, 0.0), atol=SHIFT_TOL)
    assert s["phase_offset"] == pytest.approx(-0.4, abs=1e-3)
    for q in ("amplitude", "phase"):
        assert s[q]["mae"] < 1e-3 and s[q]["psnr"] > 50
        assert s[q]["ssim"] == pytest.approx(1.0, abs=1e-4)
        assert s[q]["ms_ssim"] == pytest.approx(1.0, abs=1e-4) and s[q]["ms_ssim_scales"] == 4
        assert s[q]["frc50"] == 0.5 and s[q]["frc1_7"] == 0.5


def test_a_shift_is_reported_never_applied():
    """Every method reconstructs in the known frame: a displaced reconstruction is scored as displaced, and the
    shift a cross-correlation would pick is only reported."""
    gt = smooth_object(128, seed=3)
    recon = shift_image(gt, (-0.6, 1.35))
    s = score_reconstruction(gt, recon, REGION)
    np.testing.assert_allclose(s["residual_shift"], (0.6, -1.35), atol=SHIFT_TOL)
    in_frame = score_reconstruction(gt, 1.0001 * gt, REGION)
    assert in_frame["amplitude"]["ssim"] == pytest.approx(1.0, abs=1e-4)
    assert s["amplitude"]["ssim"] < 0.99 and s["phase"]["ssim"] < 0.99  # the displacement costs score


# ---------------------------------------------------------------- registration


def test_shift_image_moves_content_to_higher_indices():
    img = np.zeros((32, 32))
    img[10, 10] = 1.0
    out = shift_image(img, (2.0, 3.0))
    assert not np.iscomplexobj(out)
    assert np.unravel_index(np.argmax(out), out.shape) == (12, 13)
    assert out[12, 13] == pytest.approx(1.0, abs=FFT)


@pytest.mark.parametrize("shift", [(1.3, -0.7), (0.37, 0.81), (-2.25, 1.6), (0.03, -0.04)])
def test_known_subpixel_shift_is_recovered(shift):
    gt = smooth_object(128, seed=4)
    moving = shift_image(gt, (-shift[0], -shift[1]))  # displaced by -shift: registering it needs +shift
    est = register_translation(gt[REGION], moving[REGION])
    np.testing.assert_allclose(est, shift, atol=SHIFT_TOL)
    aligned = shift_image(moving, est)
    assert np.max(np.abs(aligned - gt)[REGION]) < 0.02  # the sign convention of the docstrings


def test_phase_only_object_with_noise_registers():
    gt = smooth_object(128, seed=5, amplitude=False)  # flat amplitude, contrast only in the phase
    # noise 0.02 per component: the estimate is unbiased, its std ~0.008 px (0.02 px at noise 0.05)
    moving = shift_image(gt, (-0.45, 0.8)) * np.exp(1j * 2.0) + complex_noise(gt.shape, 0.02, seed=6)
    np.testing.assert_allclose(register_translation(gt[REGION], moving[REGION]), (0.45, -0.8), atol=SHIFT_TOL)


def test_non_periodic_frames_report_the_residual_shift():
    """gt and recon are crops of a larger object: their frames are not periodic."""
    big = smooth_object(160, seed=7)
    gt = big[16:144, 16:144]
    recon = shift_image(big, (0.7, -1.2))[16:144, 16:144]  # recon content sits +(0.7, -1.2) from gt
    s = score_reconstruction(gt, recon, REGION)
    np.testing.assert_allclose(s["residual_shift"], (-0.7, 1.2), atol=SHIFT_TOL)


# ---------------------------------------------------------------- gauge


@pytest.mark.parametrize("offset", [0.7, 3.0, -2.5])
def test_metrics_do_not_change_under_a_global_phase_offset(offset):
    gt = smooth_object(128, seed=10)
    recon = shift_image(gt, (0.3, -0.2)) * np.exp(1j * 0.2) + complex_noise(gt.shape, 0.03, seed=11)
    base = score_reconstruction(gt, recon, REGION)
    moved = score_reconstruction(gt, recon * np.exp(1j * offset), REGION)
    np.testing.assert_allclose(moved["residual_shift"], base["residual_shift"], atol=FFT)
    a, b = scalar_metrics(base), scalar_metrics(moved)
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=FFT, abs=FFT), key
    delta = np.angle(np.exp(1j * (moved["phase_offset"] - base["phase_offset"] + offset)))
    assert abs(delta) < FFT


def test_remove_global_phase_matches_the_inner_product_definition():
    gt = smooth_object(64, seed=12)
    recon = gt * np.exp(-1j * 1.1) + complex_noise(gt.shape, 0.02, seed=13)
    aligned, offset = remove_global_phase(gt, recon)
    assert offset == pytest.approx(float(np.angle(np.sum(gt * np.conj(recon)))), abs=EXACT)
    assert offset == pytest.approx(1.1, abs=0.01)
    np.testing.assert_allclose(aligned, recon * np.exp(1j * offset), atol=EXACT)


def test_remove_phase_ramp_recovers_a_known_ramp():
    gt = smooth_object(64, seed=14)
    yy, xx = np.indices(gt.shape)
    recon = gt * np.exp(-1j * (0.3 + 0.02 * yy - 0.015 * xx))
    aligned, coeffs = remove_phase_ramp(gt, recon)
    assert coeffs["slope_y"] == pytest.approx(0.02, abs=1e-9)
    assert coeffs["slope_x"] == pytest.approx(-0.015, abs=1e-9)
    assert np.angle(np.exp(1j * (coeffs["offset"] - 0.3))) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(aligned, gt, atol=1e-9)


def test_known_amplitude_scale_is_reported_and_not_applied():
    gt = smooth_object(128, seed=15)
    rng = np.random.default_rng(16)
    phase_err = 0.05 * gaussian_filter(rng.standard_normal(gt.shape), 2.0)
    recon = 0.8 * np.abs(gt) * np.exp(1j * (np.angle(gt) + phase_err))
    s = score_reconstruction(gt, recon, REGION)
    assert s["amplitude_scale"] == pytest.approx(1.25, abs=EXACT)
    ref = np.abs(gt)[REGION]
    assert s["amplitude"]["mae"] == pytest.approx(float(np.mean(0.2 * ref)), abs=EXACT)  # raw, unscaled
    assert s["amplitude"]["rmse"] == pytest.approx(float(np.sqrt(np.mean((0.2 * ref) ** 2))), abs=EXACT)


def test_amplitude_scale_is_the_least_squares_solution():
    rng = np.random.default_rng(17)
    ref = 0.5 + rng.random((32, 32))
    rec = ref / 1.7 + 0.01 * rng.standard_normal((32, 32))
    mask = np.zeros((32, 32), bool)
    mask[4:28, 6:30] = True
    expected = np.sum(ref[mask] * rec[mask]) / np.sum(rec[mask] ** 2)
    assert amplitude_scale(ref, rec, mask) == pytest.approx(expected, rel=EXACT)
    assert amplitude_scale(ref, rec, mask) == pytest.approx(1.7, abs=0.02)


# ---------------------------------------------------------------- scalar metrics


def test_psnr_matches_the_formula_with_known_mse_and_range():
    ref = np.zeros((16, 16))
    img = ref + 0.1  # MSE = 0.01
    assert psnr(ref, img, data_range=2.0) == pytest.approx(10 * math.log10(4.0 / 0.01), abs=EXACT)
    img[0, :] = 100.0  # outside the region: ignored
    assert psnr(ref, img, 2.0, (slice(1, 16), slice(0, 16))) == pytest.approx(26.020599913279625, abs=EXACT)


def test_psnr_requires_an_explicit_positive_data_range():
    ref, img = np.zeros((8, 8)), np.ones((8, 8))
    with pytest.raises(TypeError):
        psnr(ref, img)  # type: ignore[call-arg]
    with pytest.raises(MetricError, match="data_range"):
        psnr(ref, img, data_range=0.0)


def test_mae_and_rmse_over_a_mask_and_slices_agree():
    rng = np.random.default_rng(18)
    a, b = rng.random((20, 20)), rng.random((20, 20))
    box = (slice(3, 15), slice(5, 18))
    assert mae(a, b, box) == pytest.approx(float(np.mean(np.abs(a[box] - b[box]))), abs=EXACT)
    assert rmse(a, b, region_mask(box, a.shape)) == pytest.approx(
        float(np.sqrt(np.mean((a[box] - b[box]) ** 2))), abs=EXACT
    )


def test_ssim_uses_the_explicit_range_and_a_rectangular_region():
    a = np.abs(smooth_object(64, seed=19))
    b = a + 0.05 * np.random.default_rng(20).standard_normal(a.shape)
    box = (slice(4, 60), slice(8, 56))
    assert ssim(a, b, 0.5, box) == pytest.approx(structural_similarity(a[box], b[box], data_range=0.5), abs=EXACT)
    ring = np.zeros(a.shape, bool)
    ring[4:60, 4:60] = True
    ring[20:40, 20:40] = False
    with pytest.raises(ValueError, match="rectangle"):
        ssim(a, b, 0.5, ring)


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((7, 7), 1),
        ((13, 40), 1),
        ((14, 14), 2),
        ((40, 100), 3),
        ((64, 64), 4),
        ((111, 111), 4),
        ((112, 112), 5),
        ((512, 512), 5),
    ],
)
def test_ms_ssim_scales_are_limited_by_size(shape, expected):
    assert ms_ssim_scales(shape) == expected


def test_ms_ssim_reports_its_scales_and_reduces_to_ssim_at_one_scale():
    a = np.abs(smooth_object(128, seed=21))
    b = a + 0.05 * np.random.default_rng(22).standard_normal(a.shape)
    for box, n in (((slice(0, 128), slice(0, 128)), 5), ((slice(0, 40), slice(0, 100)), 3)):
        value, scales = ms_ssim(a, b, 0.5, box)
        assert scales == n and 0 < value <= 1
    # one or two scales: no MS-SSIM (it would be a one-scale SSIM under another name)
    for small in ((slice(0, 10), slice(0, 12)), (slice(0, 27), slice(0, 100))):
        with pytest.raises(ValueError, match="at least 28 px per side"):
            ms_ssim(a, b, 0.5, small)
    with pytest.raises(ValueError, match="at least 7"):
        ms_ssim(a, b, 0.5, (slice(0, 6), slice(0, 60)))


def test_ms_ssim_of_anticorrelated_images_is_finite():
    a = np.abs(smooth_object(64, seed=23))
    assert ssim(a, 1.5 - a, 0.5) < 0
    value, _ = ms_ssim(a, 1.5 - a, 0.5)
    assert np.isfinite(value) and 0.0 <= value < 0.1


def test_nan_input_raises_metric_error():
    a = np.ones((16, 16))
    b = a.copy()
    b[3, 4] = np.nan
    for fn in (lambda: mae(a, b), lambda: rmse(a, b), lambda: psnr(a, b, 1.0), lambda: ssim(a, b, 1.0)):
        with pytest.raises(MetricError, match="NaN"):
            fn()
    gt = smooth_object(64, seed=24)
    recon = gt.copy()
    recon[30, 30] = complex(np.nan, 0.0)
    with pytest.raises(MetricError, match="NaN"):
        score_reconstruction(gt, recon, (slice(8, 56), slice(8, 56)))


# ---------------------------------------------------------------- FRC


def test_frc_of_identical_images_is_one_and_of_independent_noise_near_zero():
    rng = np.random.default_rng(25)
    a, b = rng.standard_normal((128, 128)), rng.standard_normal((128, 128))
    freq, curve = frc(a, a)
    assert freq[0] == pytest.approx(1 / 128) and freq[-1] == pytest.approx(0.5) and freq.size == 64
    np.testing.assert_allclose(curve, 1.0, atol=EXACT)
    freq, curve = frc(a, b)
    high = curve[freq > 0.25]  # rings of >= 200 pixels: std of the estimate <= ~0.07
    assert abs(high.mean()) < 0.03 and np.abs(high).max() < 0.25


def test_frc_of_signal_plus_equal_power_noise_is_one_over_root_two():
    """Known pair: white signal s and s + n with var n = var s gives FRC = 1/sqrt(2) at every ring."""
    rng = np.random.default_rng(26)
    s, n = rng.standard_normal((128, 128)), rng.standard_normal((128, 128))
    freq, curve = frc(s, s + n)
    assert curve[freq >= 0.1].mean() == pytest.approx(1 / math.sqrt(2), abs=0.03)


def test_frc_of_a_constant_image_fails():
    with pytest.raises(MetricError, match="constant"):
        frc(np.ones((32, 32)), np.random.default_rng(27).random((32, 32)))


def test_frc_resolution_interpolates_the_first_crossing():
    freq = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    curve = np.array([0.9, 0.7, 0.4, 0.2, 0.1])
    assert frc_resolution(freq, curve, 0.5) == pytest.approx(0.2 + 0.1 * (0.7 - 0.5) / (0.7 - 0.4), abs=EXACT)
    assert frc_resolution(freq, curve, 1 / 7) == pytest.approx(0.4 + 0.1 * (0.2 - 1 / 7) / (0.2 - 0.1), abs=EXACT)
    assert frc_resolution(freq, np.array([0.9, 0.4, 0.8, 0.2, 0.1]), 0.5) == pytest.approx(0.18, abs=EXACT)
    assert frc_resolution(freq, np.full(5, 0.9), 0.5) == 0.5  # never below: Nyquist
    assert frc_resolution(freq, np.full(5, 0.3), 0.5) == 0.1  # first ring already below
    with pytest.raises(MetricError):
        frc_resolution(freq, np.array([0.9, np.nan, 0.4, 0.2, 0.1]), 0.5)


# ---------------------------------------------------------------- degenerate


@pytest.mark.parametrize("value", [0.7 + 0.0j, 0.7 * np.exp(1j * math.pi), 0.0 + 0.0j])
def test_degenerate_constant_reconstruction_fails(value):
    gt = smooth_object(64, seed=28)
    recon = np.full(gt.shape, value, dtype=complex)
    with pytest.raises(MetricError, match="degenerate"):
        score_reconstruction(gt, recon, (slice(8, 56), slice(8, 56)))


def test_phase_only_variation_is_not_degenerate():
    gt = smooth_object(64, seed=29, amplitude=False)
    assert not is_degenerate(gt, np.ones(gt.shape, bool))
    assert is_degenerate(np.full(gt.shape, -1.0 + 1e-12j), np.ones(gt.shape, bool))


# ---------------------------------------------------------------- paper-style (secondary) metrics


def test_paper_phase_removes_each_images_own_plane_and_strict_phase_does_not():
    gt = smooth_object(128, seed=40)
    yy, xx = np.indices(gt.shape)
    # constant + plane of at most +-1 rad over the region once the offset is removed (no wrap of the error)
    c, b, c2 = 0.4, 0.012, -0.009
    recon = gt * np.exp(1j * (c + b * xx + c2 * yy))
    s = score_reconstruction(gt, recon, REGION)
    paper = s["paper"]["phase"]
    assert paper["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert paper["ms_ssim"] == pytest.approx(1.0, abs=1e-6) and paper["ms_ssim_scales"] == 4
    assert paper["psnr"] > 200 and paper["data_range"] == 1.0
    assert s["phase"]["ssim"] < 0.9  # strict: the ramp is an error (measured 0.73)
    assert s["phase"]["mae"] > 0.1
    # each image has its own plane: the ground truth's is the fit of its phase alone (not zero here) ...
    gt_plane = lstsq_plane(np.angle(gt), REGION)
    assert paper["plane_gt"]["slope_y"] == pytest.approx(gt_plane[1, 0] - gt_plane[0, 0], abs=1e-12)
    assert paper["plane_gt"]["slope_x"] == pytest.approx(gt_plane[0, 1] - gt_plane[0, 0], abs=1e-12)
    assert paper["plane_gt"]["offset"] == pytest.approx(gt_plane[0, 0], abs=1e-12)
    assert abs(paper["plane_gt"]["slope_x"]) > 1e-3
    # ... and the reconstruction's is that plus the added ramp
    assert paper["plane_recon"]["slope_x"] - paper["plane_gt"]["slope_x"] == pytest.approx(b, abs=1e-12)
    assert paper["plane_recon"]["slope_y"] - paper["plane_gt"]["slope_y"] == pytest.approx(c2, abs=1e-12)
    # the amplitude is untouched by a phase ramp
    assert s["paper"]["amplitude"]["mean_ratio"] == pytest.approx(1.0, abs=EXACT)


def test_paper_amplitude_is_rescaled_by_the_ratio_of_means_and_strict_stays_raw():
    gt = smooth_object(128, seed=41)
    rng = np.random.default_rng(42)
    phase_err = 0.05 * gaussian_filter(rng.standard_normal(gt.shape), 2.0)
    recon = 1.3 * np.abs(gt) * np.exp(1j * (np.angle(gt) + phase_err))
    s = score_reconstruction(gt, recon, REGION)
    paper = s["paper"]["amplitude"]
    ref = np.abs(gt)[REGION]
    assert paper["mean_ratio"] == pytest.approx(1 / 1.3, rel=EXACT)
    assert paper["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert paper["ms_ssim"] == pytest.approx(1.0, abs=1e-6)
    assert paper["data_range"] == s["amplitude"]["data_range"] == pytest.approx(float(ref.max() - ref.min()), abs=EXACT)
    assert paper["psnr"] > 200
    # the least-squares scale is still reported (1 / 1.3 here too) and not applied: the strict rows see 30 %
    assert s["amplitude_scale"] == pytest.approx(1 / 1.3, rel=EXACT)
    assert s["amplitude"]["mae"] == pytest.approx(float(np.mean(0.3 * ref)), abs=EXACT)
    dr = float(ref.max() - ref.min())
    assert s["amplitude"]["psnr"] == pytest.approx(10 * math.log10(dr**2 / float(np.mean((0.3 * ref) ** 2))), abs=1e-9)
    assert s["amplitude"]["ssim"] == pytest.approx(
        structural_similarity(ref, 1.3 * ref, data_range=dr, win_size=7), abs=1e-12
    )
    assert s["amplitude"]["ssim"] < 0.97


def test_mean_ratio_is_the_ratio_of_means_not_the_least_squares_scale():
    rng = np.random.default_rng(43)
    ref = 0.5 + rng.random((32, 32))
    rec = 0.2 + 0.6 * ref + 0.05 * rng.standard_normal((32, 32))
    mask = np.zeros((32, 32), bool)
    mask[4:28, 6:30] = True
    r = mean_ratio(ref, rec, mask)
    assert r == pytest.approx(float(ref[mask].mean() / rec[mask].mean()), rel=EXACT)
    assert abs(r - amplitude_scale(ref, rec, mask)) > 1e-3
    mask = np.pad(mask, 8)
    # applied by the paper row only: its SSIM is that of r * rec, computed directly
    box = (slice(4, 28), slice(6, 30))
    with pytest.raises(ValueError, match="at least 28 px per side"):  # 24 x 24: two MS-SSIM scales only
        paper_amplitude_metrics(ref, rec, box)
    ref, rec = np.pad(ref, 8, mode="reflect"), np.pad(rec, 8, mode="reflect")
    box = (slice(4, 44), slice(6, 46))
    out = paper_amplitude_metrics(ref, rec, box)
    dr = float(ref[box].max() - ref[box].min())
    r = mean_ratio(ref, rec, box)
    assert out["mean_ratio"] == pytest.approx(r, rel=EXACT)
    assert out["ssim"] == pytest.approx(
        structural_similarity(ref[box], r * rec[box], data_range=dr, win_size=7), abs=EXACT
    )


def test_paper_phase_mapping_on_a_known_pair():
    """Phase error = plane + eps * checkerboard on an even-sized region.

    The checkerboard (-1)^(y + x) sums to 0 along every row and column of an
    even-sized rectangle, so it is orthogonal to 1, y and x: removing each
    image's own plane leaves g and g + eps * checker (g: the detrended truth).
    Mapped by (phi + pi) / (2 pi), the squared error is (eps / 2 pi)^2 at
    every pixel: PSNR = 20 log10(2 pi / eps) exactly; SSIM is scikit-image's
    on the mapped pair with data range 1.
    """
    gt_phase = np.angle(smooth_object(64, seed=44)) - 0.6
    yy, xx = np.indices(gt_phase.shape)
    checker = np.where((yy + xx) % 2 == 0, 1.0, -1.0)
    eps = 0.05
    rec_phase = gt_phase + (0.3 - 0.02 * yy + 0.03 * xx) + eps * checker
    box = (slice(10, 58), slice(6, 60))  # 48 x 54 px: both even
    out = paper_phase_metrics(gt_phase, rec_phase, box)
    g = gt_phase - lstsq_plane(gt_phase, box)
    ref, img = (g[box] + np.pi) / (2 * np.pi), (g[box] + eps * checker[box] + np.pi) / (2 * np.pi)
    assert out["psnr"] == pytest.approx(20 * math.log10(2 * math.pi / eps), abs=1e-9)
    assert out["ssim"] == pytest.approx(structural_similarity(ref, img, data_range=1.0, win_size=7), abs=1e-12)
    assert out["ms_ssim"] == pytest.approx(ms_ssim(ref, img, 1.0)[0], abs=1e-12)
    assert out["ms_ssim_scales"] == ms_ssim_scales(ref.shape) == 3
    assert out["plane_recon"]["slope_x"] - out["plane_gt"]["slope_x"] == pytest.approx(0.03, abs=1e-12)
    assert out["plane_recon"]["slope_y"] - out["plane_gt"]["slope_y"] == pytest.approx(-0.02, abs=1e-12)
    # the map itself
    np.testing.assert_allclose(unit_phase(np.array([-np.pi, 0.0, np.pi / 2, np.pi])), [0.0, 0.5, 0.75, 1.0], atol=EXACT)


def test_scoring_searches_no_translation(monkeypatch):
    """The residual shift is computed once, as a diagnostic (test_a_shift_is_reported_never_applied: not applied)."""
    calls = []
    real = metrics_module.register_translation

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(metrics_module, "register_translation", counting)
    gt = smooth_object(128, seed=3)
    s = score_reconstruction(gt, 1.0001 * gt * np.exp(1j * 0.4), REGION)
    assert len(calls) == 1
    for q in ("amplitude", "phase"):
        assert s["paper"][q]["ssim"] == pytest.approx(1.0, abs=1e-4)


def test_paper_metrics_fail_on_nan_and_degenerate_input():
    gt_phase = np.angle(smooth_object(48, seed=45))
    bad = gt_phase.copy()
    bad[5, 7] = np.nan
    box = (slice(4, 44), slice(4, 44))
    with pytest.raises(MetricError, match="NaN"):
        paper_phase_metrics(gt_phase, bad, box)
    with pytest.raises(MetricError, match="NaN"):
        paper_amplitude_metrics(np.abs(gt_phase) + 0.5, bad, box)
    with pytest.raises(MetricError, match="NaN"):
        remove_plane(bad)
    with pytest.raises(MetricError, match="NaN"):
        mean_ratio(np.ones((8, 8)), np.where(np.eye(8, dtype=bool), np.nan, 1.0))
    # identical detrended phases: infinite PSNR, never written
    with pytest.raises(MetricError, match="phase_paper psnr"):
        paper_phase_metrics(gt_phase, gt_phase.copy(), box)
    # a reconstruction of mean amplitude 0 in the region: no ratio of means
    amp = np.abs(smooth_object(48, seed=46))
    with pytest.raises(MetricError, match="mean is 0"):
        paper_amplitude_metrics(amp, np.zeros_like(amp), box)
    # a constant ground-truth amplitude: no data range
    with pytest.raises(MetricError, match="amplitude_paper psnr.*constant"):
        paper_amplitude_metrics(np.ones_like(amp), amp, box)
    # pixels that do not span a plane
    row = np.zeros((48, 48), bool)
    row[10, 4:28] = True
    with pytest.raises(MetricError, match="plane"):
        remove_plane(gt_phase, row)
