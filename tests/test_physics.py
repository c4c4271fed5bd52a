"""Physics tests of ptycho_core (docs/DESIGN.md sections 3 and 9).

Every tolerance below is derived from the physics or the arithmetic it tests
(floating-point precision, Poisson standard errors, pixel quantisation), and
is stated next to the assertion. Studies are small (N = 32, objects of 96-128
pixels) so the whole file runs in a few seconds on two CPU cores.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from ptycho_core import layout
from ptycho_core.config import dose_label, study_from_dict
from ptycho_core.io.datasets import load_diffraction_set, load_ground_truth
from ptycho_core.physics.forward import expected_counts, extract_patches, far_field_intensity, valid_position_range
from ptycho_core.physics.objects import make_object
from ptycho_core.physics.probe import disk_probe, focused_probe, make_probe, measure_fwhm_diameter
from ptycho_core.physics.scan import fermat_scan, make_scan, raster_scan, split_by_region
from ptycho_core.physics.simulate import simulate_dose
from ptycho_core.steps import simulate as simulate_step
from ptycho_core.streams import replicate_object_seed

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # FWHM of exp(-r^2 / (2 sigma^2))

SMALL = {
    "name": "physics-test",
    "N": 32,
    "doses": [10.0, 1000.0, 100000.0],
    "seeds": [0, 1],
    "object": {"family": "grf", "size": 128, "seed": 7, "feature_size": 1.5},
    "probe": {"kind": "focused", "pupil_diameter": 12.0, "defocus_waves": 0.78},
    "scan": {"pattern": "raster", "step_fraction": 0.3, "jitter": 0.1},
    "split": {"axis": "x", "test_fraction": 0.5, "guard_diameters": 1.0},
}


def small_study(**overrides):
    """The SMALL study with top-level or nested (dict) overrides merged in."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SMALL.items()}
    for key, value in overrides.items():
        if isinstance(value, dict):
            raw[key].update(value)
        else:
            raw[key] = value
    return study_from_dict(raw)


@pytest.fixture(scope="module")
def study():
    return small_study()


@pytest.fixture(scope="module")
def obj(study):
    return make_object(study.object)


def gaussian_amplitude(N, sigma, cx=None, cy=None, sigma_y=None, angle=0.0):
    """sqrt of the Gaussian intensity exp(-(u^2/(2 sx^2) + v^2/(2 sy^2))) on an N x N grid.

    (u, v) are the coordinates rotated by ``angle`` about (cx, cy); the
    default centre is the array centre (N/2, N/2).
    """
    cx = N / 2 if cx is None else cx
    cy = N / 2 if cy is None else cy
    sy = sigma if sigma_y is None else sigma_y
    yy, xx = np.mgrid[0:N, 0:N].astype(float)
    dx, dy = xx - cx, yy - cy
    u = np.cos(angle) * dx + np.sin(angle) * dy
    v = -np.sin(angle) * dx + np.cos(angle) * dy
    intensity = np.exp(-(u**2) / (2 * sigma**2) - v**2 / (2 * sy**2))
    return np.sqrt(intensity).astype(np.complex128)


# --------------------------------------------------------------------------
# 1. Far field: Parseval and DC position
# --------------------------------------------------------------------------


@pytest.mark.parametrize("N", [16, 32, 64])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_parseval_total_intensity_is_conserved(N, dtype):
    """sum(I) = sum(|psi|^2) for I = |fftshift(fft2(psi))|^2 / N^2.

    Exact in real arithmetic; the bound 1e-5 is far above float32 rounding
    (~1e-7 relative) and far below any normalisation slip (factor N^2 or N).
    """
    rng = np.random.default_rng(N)
    psi = (rng.normal(size=(5, N, N)) + 1j * rng.normal(size=(5, N, N))).astype(dtype)
    intensity = far_field_intensity(psi)
    assert intensity.shape == psi.shape
    assert np.all(intensity >= 0)
    total_in = np.sum(np.abs(psi.astype(np.complex128)) ** 2, axis=(-2, -1))
    total_out = np.sum(intensity, axis=(-2, -1))
    np.testing.assert_allclose(total_out, total_in, rtol=1e-5)


@pytest.mark.parametrize("N", [16, 32, 64])
def test_flat_wave_puts_all_power_at_dc_pixel_centre(N):
    """A flat unit wave has all its power, N^2, in the zero frequency at pixel [N/2, N/2]."""
    intensity = far_field_intensity(np.ones((N, N), dtype=np.complex128))
    assert np.unravel_index(np.argmax(intensity), intensity.shape) == (N // 2, N // 2)
    assert intensity[N // 2, N // 2] == pytest.approx(N * N, rel=1e-12)
    rest = intensity.copy()
    rest[N // 2, N // 2] = 0.0
    assert rest.max() < 1e-20 * N * N


def test_plane_wave_tilt_lands_at_its_frequency():
    """exp(+2 pi i (kx x + ky y) / N) lands at pixel [N/2 + ky, N/2 + kx] (numpy's FFT sign)."""
    N, kx, ky = 32, 3, -5
    yy, xx = np.mgrid[0:N, 0:N]
    psi = np.exp(2j * np.pi * (kx * xx + ky * yy) / N)
    intensity = far_field_intensity(psi)
    assert np.unravel_index(np.argmax(intensity), intensity.shape) == (N // 2 + ky, N // 2 + kx)
    assert intensity.max() == pytest.approx(N * N, rel=1e-10)


def test_expected_counts_is_far_field_of_probe_times_patch():
    rng = np.random.default_rng(3)
    N = 32
    probe = rng.normal(size=(N, N)) + 1j * rng.normal(size=(N, N))
    patches = np.exp(1j * rng.uniform(0, 1, size=(4, N, N)))
    got = expected_counts(probe, patches)
    want = far_field_intensity(probe[None] * patches)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # Parseval for the whole forward model: expected counts per pattern = sum |P O|^2.
    np.testing.assert_allclose(
        got.sum(axis=(1, 2)), np.sum(np.abs(probe[None] * patches) ** 2, axis=(1, 2)), rtol=1e-10
    )


# --------------------------------------------------------------------------
# 2. Dose, Poisson counts and photon statistics
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dose_ladder(study, obj):
    return {dose: simulate_dose(study, obj, dose, 0, provenance={}) for dose in (10.0, 1e3, 1e5)}


def _all_counts(sim):
    return np.concatenate([sim.train.counts(), sim.test.counts()])


@pytest.mark.parametrize("dose", [10.0, 1e3, 1e5])
def test_expected_counts_per_pattern_equal_the_dose(dose, dose_ladder, obj):
    sim = dose_ladder[dose]
    meta = sim.train.metadata
    # The probe is scaled in float64 so that mean_j sum(I_j) = dose: only rounding error remains.
    assert meta["photons"]["all"]["expected_mean"] == pytest.approx(dose, rel=1e-9)
    n_tr, n_te = sim.train.n, sim.test.n
    expected_split_mean = (
        n_tr * meta["photons"]["train"]["expected_mean"] + n_te * meta["photons"]["test"]["expected_mean"]
    ) / (n_tr + n_te)
    assert expected_split_mean == pytest.approx(dose, rel=1e-9)

    # Independent check of the units: the stored probe (complex64, sqrt(photons))
    # times the ground-truth patches at the stored positions gives the dose.
    # Tolerance: complex64 rounding of the probe, ~1e-7 relative per pixel.
    x = np.concatenate([sim.train.xcoords, sim.test.xcoords])
    y = np.concatenate([sim.train.ycoords, sim.test.ycoords])
    patches = extract_patches(obj, x, y, sim.train.N)
    probe = sim.train.probe.astype(np.complex128)
    np.testing.assert_array_equal(sim.train.probe, sim.test.probe)
    per_pattern = expected_counts(probe, patches).sum(axis=(1, 2))
    assert per_pattern.mean() == pytest.approx(dose, rel=1e-5)


@pytest.mark.parametrize("dose", [10.0, 1e3, 1e5])
def test_measured_counts_match_dose_within_poisson_error(dose, dose_ladder):
    sim = dose_ladder[dose]
    counts = _all_counts(sim)
    n = counts.shape[0]
    per_pattern = counts.sum(axis=(1, 2))
    # The total counts of n patterns are Poisson(n * dose): standard error of the mean sqrt(dose / n).
    se = math.sqrt(dose / n)
    assert abs(per_pattern.mean() - dose) <= 5 * se, (per_pattern.mean(), dose, se)


@pytest.mark.parametrize("dose", [10.0, 1e3, 1e5])
def test_counts_are_integers_recovered_exactly(dose, dose_ladder):
    sim = dose_ladder[dose]
    for ds in (sim.train, sim.test):
        assert ds.diffraction.dtype == np.float32
        squared = ds.diffraction.astype(np.float64) ** 2
        counts = ds.counts()
        assert counts.min() >= 0
        # float32 sqrt has relative error <= 6e-8, so d^2 deviates from the
        # integer count by <= 1.2e-7 * count (counts here are far below 2^20).
        assert counts.max() < 2**20
        assert np.all(np.abs(squared - counts) <= 1.2e-7 * counts + 1e-12)
        # Re-encoding the recovered counts reproduces the stored array bit for bit.
        np.testing.assert_array_equal(np.sqrt(counts).astype(np.float32), ds.diffraction)


def test_noise_is_poisson_per_pixel(study, obj, dose_ladder):
    """Per-pixel residuals have Poisson variance: sum (c - I)^2 / sum I = 1.

    For c ~ Poisson(I), E[(c - I)^2] = I and Var[(c - I)^2] = 2 I^2 + I, which
    gives the standard error of the ratio used as a 5-sigma bound. Noise-free
    data (ratio 0) or Gaussian noise of the wrong scale fail it.
    """
    sim = dose_ladder[1e3]
    x = np.concatenate([sim.train.xcoords, sim.test.xcoords])
    y = np.concatenate([sim.train.ycoords, sim.test.ycoords])
    intensity = expected_counts(sim.train.probe.astype(np.complex128), extract_patches(obj, x, y, study.N))
    counts = _all_counts(sim)
    ratio = np.sum((counts - intensity) ** 2) / np.sum(intensity)
    se = math.sqrt(np.sum(2 * intensity**2 + intensity)) / np.sum(intensity)
    assert abs(ratio - 1.0) <= 5 * se, (ratio, se)


@pytest.mark.parametrize("dose", [10.0, 1e3, 1e5])
def test_metadata_photon_statistics_agree_with_arrays(dose, dose_ladder):
    sim = dose_ladder[dose]
    per_split = {"train": sim.train.counts().sum(axis=(1, 2)), "test": sim.test.counts().sum(axis=(1, 2))}
    per_split["all"] = np.concatenate([per_split["train"], per_split["test"]])
    for ds in (sim.train, sim.test):
        photons = ds.metadata["photons"]
        assert ds.metadata["dose"] == dose
        for name, pp in per_split.items():
            stats = photons[name]
            assert stats["n_patterns"] == pp.size
            assert stats["measured_mean"] == pytest.approx(pp.mean(), rel=1e-12)
            assert stats["measured_min"] == pp.min()
            assert stats["measured_max"] == pp.max()
    assert sim.train.metadata["split"]["n_train"] == sim.train.n
    assert sim.train.metadata["split"]["n_test"] == sim.test.n
    assert sim.train.metadata["split_name"] == "train" and sim.test.metadata["split_name"] == "test"


def test_dose_in_photons_per_illuminated_pixel(dose_ladder):
    """dose / (pi (D/2)^2): the photons per pattern over the probe's FWHM disc; the ladder keeps the ratio."""
    from ptycho_core.physics.probe import photons_per_illuminated_pixel

    for dose, sim in dose_ladder.items():
        D = sim.train.metadata["probe"]["fwhm_diameter_px"]
        assert sim.train.metadata["photons_per_illuminated_pixel"] == pytest.approx(
            dose / (np.pi * D**2 / 4), rel=1e-12
        )
        assert sim.test.metadata["photons_per_illuminated_pixel"] == sim.train.metadata["photons_per_illuminated_pixel"]
    # a disc of area 1 pixel: photons per pixel = photons per pattern
    assert photons_per_illuminated_pixel(250.0, 2 / np.sqrt(np.pi)) == pytest.approx(250.0, rel=1e-12)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="FWHM diameter"):
            photons_per_illuminated_pixel(100.0, bad)


def test_dose_ladder_shares_geometry_and_scales_probe_as_sqrt_dose(dose_ladder):
    """Same replicate seed: same scan for every dose; probe amplitude scales as sqrt(dose)."""
    sims = [dose_ladder[d] for d in (10.0, 1e3, 1e5)]
    for sim in sims[1:]:
        np.testing.assert_array_equal(sim.train.xcoords, sims[0].train.xcoords)
        np.testing.assert_array_equal(sim.test.ycoords, sims[0].test.ycoords)
        np.testing.assert_array_equal(sim.train.scan_index, sims[0].train.scan_index)
    scale = [s.train.metadata["probe"]["scale_sqrt_photons"] for s in sims]
    assert scale[1] / scale[0] == pytest.approx(10.0, rel=1e-9)
    assert scale[2] / scale[1] == pytest.approx(10.0, rel=1e-9)


# --------------------------------------------------------------------------
# 3. Probe diameter (FWHM of intensity)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [2.0, 3.0, 5.0, 8.0])
def test_fwhm_of_gaussian(sigma):
    N = 64
    D = measure_fwhm_diameter(gaussian_amplitude(N, sigma))
    assert D == pytest.approx(FWHM_PER_SIGMA * sigma, rel=0.01)


@pytest.mark.parametrize("offset", [(3.0, -2.0), (-4.0, 5.0), (2.5, 1.3)])
def test_fwhm_independent_of_centring(offset):
    N, sigma = 64, 4.0
    centred = measure_fwhm_diameter(gaussian_amplitude(N, sigma))
    moved = measure_fwhm_diameter(gaussian_amplitude(N, sigma, cx=N / 2 + offset[0], cy=N / 2 + offset[1]))
    assert moved == pytest.approx(centred, rel=0.01)
    assert moved == pytest.approx(FWHM_PER_SIGMA * sigma, rel=0.01)


@pytest.mark.parametrize("angle_deg", [0.0, 30.0, 45.0, 90.0])
def test_fwhm_of_rotated_elliptical_gaussian(angle_deg):
    """Area-equivalent diameter of an ellipse is rotation invariant: 2 sqrt(2 ln 2 sx sy)."""
    N, sx, sy = 64, 3.0, 5.0
    D = measure_fwhm_diameter(gaussian_amplitude(N, sx, sigma_y=sy, angle=np.deg2rad(angle_deg)))
    assert D == pytest.approx(2 * math.sqrt(2 * math.log(2) * sx * sy), rel=0.01)


def test_fwhm_of_focused_probe_is_rotation_invariant():
    probe = focused_probe(64, 16.0, 0.2, 0.8)
    D = measure_fwhm_diameter(probe)
    for variant in (np.rot90(probe), np.rot90(probe, 2), probe.T):
        # rot90 about the array centre moves the optical axis from pixel N/2 to
        # N/2 - 1: the measure must not care (centring independence).
        assert measure_fwhm_diameter(variant) == pytest.approx(D, rel=0.01)


@pytest.mark.parametrize(("N", "pupil"), [(64, 8.0), (128, 16.0), (128, 24.0)])
def test_fwhm_of_in_focus_probe_is_airy(N, pupil):
    """An in-focus circular pupil of p detector pixels gives an Airy spot of FWHM 1.029 N / p.

    2 % covers the pixelation of the pupil disc.
    """
    D = measure_fwhm_diameter(focused_probe(N, pupil, 0.0, 0.0))
    assert D == pytest.approx(1.029 * N / pupil, rel=0.02)


@pytest.mark.parametrize("diameter", [6.0, 8.0, 12.5, 16.0, 20.0])
def test_fwhm_of_disk_probe(diameter):
    N = 64
    probe = disk_probe(N, diameter)
    assert abs(measure_fwhm_diameter(probe) - diameter) <= 1.0


def test_fwhm_refuses_non_square_and_zero_probes():
    with pytest.raises(ValueError, match="square"):
        measure_fwhm_diameter(np.ones((8, 16)))
    with pytest.raises(ValueError, match="zero"):
        measure_fwhm_diameter(np.zeros((16, 16), dtype=complex))


# --------------------------------------------------------------------------
# 4. Patch extraction: convention and subpixel shift direction
# --------------------------------------------------------------------------
#
# Convention (ptycho_core.physics.forward): the patch at position (x, y) = (column, row)
# samples the object at X = x - N/2 + j, Y = y - N/2 + i for patch pixel [i, j].
# So a feature at object point (x0, y0) appears in the patch at
# column j = x0 - x + N/2, row i = y0 - y + N/2: moving the position by +dx
# moves the feature by -dx columns in the patch (the window moves right over
# the object, the content moves left), and likewise for y and rows.


def _blob_object(size, x0, y0, sigma=2.5):
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    return np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2)).astype(np.complex128)


def _centroid(patch):
    """(row, column) centroid of the real part of a patch."""
    w = patch.real
    i, j = np.mgrid[0 : w.shape[0], 0 : w.shape[1]]
    return float((w * i).sum() / w.sum()), float((w * j).sum() / w.sum())


def test_patch_centred_on_blob_has_blob_at_centre_pixel():
    N, size, x0, y0 = 32, 96, 50.0, 41.0  # x0 != y0 to catch a swapped axis
    obj = _blob_object(size, x0, y0)
    patch = extract_patches(obj, np.array([x0]), np.array([y0]), N)[0]
    row, col = _centroid(patch)
    assert row == pytest.approx(N / 2, abs=0.02)
    assert col == pytest.approx(N / 2, abs=0.02)


@pytest.mark.parametrize("dx", [0.3, -0.3, 0.5, 1.7])
def test_subpixel_shift_in_x_moves_blob_left_in_columns(dx):
    N, size, x0, y0 = 32, 96, 50.0, 41.0
    obj = _blob_object(size, x0, y0)
    patch = extract_patches(obj, np.array([x0 + dx]), np.array([y0]), N)[0]
    row, col = _centroid(patch)
    assert col == pytest.approx(N / 2 - dx, abs=0.02)
    assert row == pytest.approx(N / 2, abs=0.02)
    # The shift is a pure translation of a real object: no spurious imaginary part.
    assert np.abs(patch.imag).max() < 1e-6


@pytest.mark.parametrize("dy", [0.3, -0.3, 0.5, 1.7])
def test_subpixel_shift_in_y_moves_blob_up_in_rows(dy):
    N, size, x0, y0 = 32, 96, 50.0, 41.0
    obj = _blob_object(size, x0, y0)
    patch = extract_patches(obj, np.array([x0]), np.array([y0 + dy]), N)[0]
    row, col = _centroid(patch)
    assert row == pytest.approx(N / 2 - dy, abs=0.02)
    assert col == pytest.approx(N / 2, abs=0.02)


def test_subpixel_patch_samples_object_at_the_shifted_grid():
    """For a band-limited object, the patch equals the object evaluated at X = x - N/2 + j."""
    N, size = 32, 96
    x, y = 47.3, 52.8
    sigma = 3.0
    x0, y0 = 49.0, 50.0
    obj = _blob_object(size, x0, y0, sigma)
    patch = extract_patches(obj, np.array([x]), np.array([y]), N)[0]
    i, j = np.mgrid[0:N, 0:N].astype(float)
    X, Y = x - N / 2 + j, y - N / 2 + i
    analytic = np.exp(-((X - x0) ** 2 + (Y - y0) ** 2) / (2 * sigma**2))
    # Residual set by the Gaussian's tail at the crop edge (exp(-(N/2+4)^2/(2 sigma^2)) ~ 1e-10).
    np.testing.assert_allclose(patch.real, analytic, atol=1e-6)


def test_integer_positions_equal_direct_slicing(obj):
    N = 32
    rng = np.random.default_rng(5)
    lo, hi = valid_position_range(obj.shape[0], N)
    xs = rng.integers(int(np.ceil(lo)), int(np.floor(hi)) + 1, size=12).astype(float)
    ys = rng.integers(int(np.ceil(lo)), int(np.floor(hi)) + 1, size=12).astype(float)
    xs[0], ys[0] = np.ceil(lo), np.floor(hi)  # the corners of the valid range
    patches = extract_patches(obj, xs, ys, N, chunk=5)  # several chunks
    for k, (x, y) in enumerate(zip(xs.astype(int), ys.astype(int))):
        direct = obj[y - N // 2 : y + N // 2, x - N // 2 : x + N // 2]
        np.testing.assert_allclose(patches[k], direct, rtol=0, atol=1e-10)


def test_positions_outside_the_object_are_refused(obj):
    N = 32
    size = obj.shape[0]
    lo, hi = valid_position_range(size, N)
    # The valid range's ends are accepted ...
    extract_patches(obj, np.array([lo, hi]), np.array([hi, lo]), N)
    # ... and anything beyond, in either axis, is refused.
    for x, y in [
        (lo - 1, 60.0),
        (60.0, lo - 1),
        (hi + 0.01, 60.0),
        (60.0, hi + 0.01),
        (-5.0, 60.0),
        (60.0, size + 3.0),
    ]:
        with pytest.raises(ValueError, match="outside"):
            extract_patches(obj, np.array([60.0, x]), np.array([60.0, y]), N)


# --------------------------------------------------------------------------
# 5. Determinism through the simulation steps
# --------------------------------------------------------------------------


def _run_simulation(study, directory, seed, dose=1000.0):
    directory.mkdir(parents=True, exist_ok=True)
    cell = layout.Cell(dose_label(dose), seed)
    gt, sim = layout.ground_truth(seed).under(directory), layout.simulated(cell).under(directory)
    simulate_step.run_ground_truth(study, cell=layout.Cell.replicate(seed), out=gt)
    simulate_step.run_simulate(study, cell=cell, ground_truth=gt, out=sim)
    return {"object": Path(gt.obj), "train": Path(sim.train), "test": Path(sim.test)}


def test_simulation_is_deterministic_and_seeded(tmp_path):
    study = small_study(object={"size": 96})
    a = _run_simulation(study, tmp_path / "a", seed=0)
    b = _run_simulation(study, tmp_path / "b", seed=0)
    for key in ("object", "train", "test"):
        assert a[key].read_bytes() == b[key].read_bytes(), f"{key} differs between two identical runs"

    c = _run_simulation(study, tmp_path / "c", seed=1)
    # Each replicate draws its own object of the family (and records the draw).
    oa, oc = load_ground_truth(a["object"]), load_ground_truth(c["object"])
    assert oc.metadata["object"]["seed"] == replicate_object_seed(study.object.seed, 1) != oa.metadata["object"]["seed"]
    assert np.abs(oa.obj - oc.obj).mean() > 0.1 * np.abs(oa.obj).mean()
    # The replicate seed changes the noise (and the scan jitter), so the diffraction differs.
    for split in ("train", "test"):
        da, dc = load_diffraction_set(a[split]), load_diffraction_set(c[split])
        assert not np.array_equal(da.diffraction, dc.diffraction)
        assert dc.metadata["seed"] == 1 and da.metadata["seed"] == 0
        assert dc.metadata["rng"]["noise"] != da.metadata["rng"]["noise"]


def _run_separate(study, d: Path, seed: int = 0, dose: float = 1000.0):
    d.mkdir()
    gt_files, tr_files = layout.ground_truth(seed).under(d), layout.ground_truth(seed, training=True).under(d)
    replicate = layout.Cell.replicate(seed)
    simulate_step.run_ground_truth(study, cell=replicate, out=gt_files)
    simulate_step.run_ground_truth(study, cell=replicate, out=tr_files, training=True)
    cell = layout.Cell(dose_label(dose), seed)
    sim = layout.simulated(cell).under(d)
    files = dict(cell=cell, ground_truth=gt_files, out=sim)
    with pytest.raises(ValueError, match="train_seed"):  # the training object is required when configured
        simulate_step.run_simulate(study, **files)
    simulate_step.run_simulate(study, **files, training_object=tr_files)
    return gt_files.obj, tr_files.obj, sim


def test_separate_training_object_covers_the_whole_scan_and_so_does_the_test_split(tmp_path):
    plain = small_study(object={"size": 96})
    separate = small_study(object={"size": 96, "train_seed": 99})
    a = _run_simulation(plain, tmp_path / "plain", seed=0)
    gt, tr_obj, sim = _run_separate(separate, tmp_path / "separate")
    study_obj, train_obj = load_ground_truth(gt), load_ground_truth(tr_obj)
    # the study object is the same draw; the training object is another draw of the same family
    np.testing.assert_array_equal(study_obj.obj, load_ground_truth(a["object"]).obj)
    assert not np.allclose(train_obj.obj, study_obj.obj)
    assert train_obj.metadata["object"]["seed"] == replicate_object_seed(99, 0)
    assert train_obj.metadata["role"] == "training object"
    train_a, test_a = load_diffraction_set(a["train"]), load_diffraction_set(a["test"])
    train_b, test_b = load_diffraction_set(sim.train), load_diffraction_set(sim.test)
    # both splits take every base-scan position: the study object needs no training region
    n_base = train_b.metadata["scan"]["n_base"]
    assert train_b.n == test_b.n == n_base > train_a.n + test_a.n
    np.testing.assert_array_equal(test_b.xcoords, train_b.xcoords)
    assert test_b.metadata["split"]["boundary_px"] is None and test_b.metadata["split"]["n_dropped_in_guard"] == 0
    assert train_b.metadata["object"]["seed"] == replicate_object_seed(99, 0)
    assert test_b.metadata["object"]["seed"] == replicate_object_seed(plain.object.seed, 0)
    # the test data do not depend on the training object: another training draw leaves them byte for byte
    other = small_study(object={"size": 96, "train_seed": 98})
    _, _, sim_other = _run_separate(other, tmp_path / "other")
    np.testing.assert_array_equal(load_diffraction_set(sim_other.test).diffraction, test_b.diffraction)
    assert not np.array_equal(load_diffraction_set(sim_other.train).diffraction, train_b.diffraction)
    # its counts follow the training object: the mean counts of a pattern equal sum |P O_train|^2 within Poisson noise
    probe = train_b.probe.astype(np.complex128)
    expected = expected_counts(
        probe, extract_patches(train_obj.obj.astype(np.complex128), train_b.xcoords, train_b.ycoords, plain.N)
    )
    measured = train_b.counts().sum(axis=(1, 2))
    total = expected.sum(axis=(1, 2))
    z = (measured.sum() - total.sum()) / np.sqrt(total.sum())
    assert abs(z) < 5
    wrong = expected_counts(
        probe, extract_patches(study_obj.obj.astype(np.complex128), train_b.xcoords, train_b.ycoords, plain.N)
    ).sum(axis=(1, 2))
    assert np.abs(measured - total).mean() < np.abs(measured - wrong).mean()


# --------------------------------------------------------------------------
# 6. Train/test split with a guard band
# --------------------------------------------------------------------------


def _geometry(study):
    """Scan extent and probe diameter exactly as simulate_dose computes them."""
    probe = make_probe(study.N, study.probe)
    D = measure_fwhm_diameter(probe)
    lo, hi = valid_position_range(study.object.size, study.N)
    return lo, float(np.floor(hi)), D


@pytest.mark.parametrize("pattern", ["raster", "fermat"])
@pytest.mark.parametrize("axis", ["x", "y"])
@pytest.mark.parametrize(("test_fraction", "guard_diameters"), [(0.5, 1.0), (0.35, 1.5)])
def test_split_guard_band(pattern, axis, test_fraction, guard_diameters):
    study = small_study(
        scan={"pattern": pattern},
        split={"axis": axis, "test_fraction": test_fraction, "guard_diameters": guard_diameters},
    )
    lo, hi, D = _geometry(study)
    scan = make_scan(study.scan, lo, hi, D, np.random.default_rng([0, 1]))
    split = split_by_region(scan, study.split, lo, hi, D)
    guard = guard_diameters * D
    assert split.guard == pytest.approx(guard, rel=1e-12)
    coord = scan.x if axis == "x" else scan.y
    # Gap along the split axis; 1e-9 px allows only floating-point rounding of boundary +- guard/2.
    gap = coord[split.test].min() - coord[split.train].max()
    assert gap >= guard - 1e-9, (gap, guard)
    # Train is on the low side of the cut, test on the high side.
    assert coord[split.train].max() <= split.boundary and coord[split.test].min() >= split.boundary
    assert set(split.train.tolist()).isdisjoint(split.test.tolist())
    assert split.train.size > 0 and split.test.size > 0
    assert split.train.size + split.test.size + split.n_dropped == split.n_base == scan.x.size
    # The dropped positions are exactly those inside the guard band.
    in_band = np.abs(coord - split.boundary) < guard / 2
    assert split.n_dropped == int(in_band.sum())


@pytest.mark.parametrize("axis", ["x", "y"])
def test_simulated_splits_respect_the_guard(axis, obj):
    study = small_study(split={"axis": axis})
    sim = simulate_dose(study, obj, 1000.0, 0, provenance={})
    tr = sim.train.xcoords if axis == "x" else sim.train.ycoords
    te = sim.test.xcoords if axis == "x" else sim.test.ycoords
    assert te.min() - tr.max() >= sim.split.guard - 1e-9
    assert sim.split.guard == pytest.approx(sim.probe_diameter, rel=1e-12)
    assert set(sim.train.scan_index.tolist()).isdisjoint(sim.test.scan_index.tolist())
    assert sim.train.n + sim.test.n + sim.split.n_dropped == sim.split.n_base


@pytest.mark.parametrize(("test_fraction", "empty"), [(0.01, "test"), (0.99, "train")])
def test_split_leaving_a_region_empty_is_refused(test_fraction, empty):
    study = small_study(split={"test_fraction": test_fraction, "guard_diameters": 2.0})
    lo, hi, D = _geometry(study)
    scan = make_scan(study.scan, lo, hi, D, np.random.default_rng(0))
    with pytest.raises(ValueError, match=f"the {empty} region holds no positions"):
        split_by_region(scan, study.split, lo, hi, D)


# --------------------------------------------------------------------------
# 7. Scan trajectories
# --------------------------------------------------------------------------


@pytest.mark.parametrize("step_fraction", [0.25, 0.5, 1.0])
def test_raster_step_is_fraction_of_measured_diameter(step_fraction):
    study = small_study(scan={"pattern": "raster", "step_fraction": step_fraction, "jitter": 0.0})
    lo, hi, D = _geometry(study)
    scan = make_scan(study.scan, lo, hi, D, np.random.default_rng(0))
    assert scan.step == pytest.approx(step_fraction * D, rel=1e-12)
    ny, nx = scan.grid_shape
    gx = scan.x.reshape(ny, nx)
    gy = scan.y.reshape(ny, nx)
    # Without jitter the raster spacing is the step, and index = row * nx + col.
    np.testing.assert_allclose(np.diff(gx, axis=1), scan.step, rtol=1e-9)
    np.testing.assert_allclose(np.diff(gy, axis=0), scan.step, rtol=1e-9)
    np.testing.assert_allclose(np.diff(gx, axis=0), 0.0, atol=1e-12)
    np.testing.assert_array_equal(scan.index, np.arange(nx * ny))
    # The grid fills the extent: one more step would leave it.
    assert (nx - 1) * scan.step <= hi - lo < nx * scan.step


@pytest.mark.parametrize("pattern", ["raster", "fermat"])
@pytest.mark.parametrize("jitter", [0.0, 0.5])
def test_positions_lie_inside_valid_range(pattern, jitter):
    study = small_study(scan={"pattern": pattern, "jitter": jitter})
    lo_valid, hi_valid = valid_position_range(study.object.size, study.N)
    lo, hi, D = _geometry(study)
    scan = make_scan(study.scan, lo, hi, D, np.random.default_rng(3))
    for c in (scan.x, scan.y):
        assert c.min() >= lo_valid and c.max() <= hi_valid
    # And every patch really can be extracted.
    extract_patches(np.ones((study.object.size,) * 2, complex), scan.x, scan.y, study.N)


def test_raster_jitter_is_bounded_and_seeded():
    lo, hi, step, jitter = 20.0, 100.0, 4.0, 0.2
    a = raster_scan(lo, hi, step, jitter, np.random.default_rng([0, 1]))
    b = raster_scan(lo, hi, step, jitter, np.random.default_rng([0, 1]))
    c = raster_scan(lo, hi, step, jitter, np.random.default_rng([1, 1]))
    grid = raster_scan(lo, hi, step, 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    assert np.abs(a.x - grid.x).max() <= jitter * step + 1e-12
    assert np.abs(a.y - grid.y).max() <= jitter * step + 1e-12


@pytest.mark.parametrize("step", [3.0, 4.5, 6.0])
def test_fermat_nearest_neighbour_spacing_is_the_step(step):
    lo, hi = 20.0, 108.0
    scan = fermat_scan(lo, hi, step)
    pts = np.c_[scan.x, scan.y]
    dist, _ = cKDTree(pts).query(pts, k=2)
    nn = dist[:, 1]
    assert nn.min() > 0  # no duplicate positions
    assert nn.mean() == pytest.approx(step, rel=0.2)
    # Each point occupies step^2 of area: the count matches the square's area within 10 %.
    assert scan.x.size == pytest.approx((hi - lo) ** 2 / step**2, rel=0.1)
    assert scan.x.min() >= lo and scan.x.max() <= hi and scan.y.min() >= lo and scan.y.max() <= hi


@pytest.mark.parametrize("bad_step", [0.0, -1.0])
def test_non_positive_step_is_refused(bad_step):
    with pytest.raises(ValueError, match="step"):
        raster_scan(0.0, 10.0, bad_step, 0.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="step"):
        fermat_scan(0.0, 10.0, bad_step)


# --------------------------------------------------------------------------
# 8. Objects
# --------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["lines", "grf"])
@pytest.mark.parametrize(("contrast", "phase_max"), [(0.5, 1.5), (0.2, 3.0), (0.0, 0.7)])
def test_object_amplitude_and_phase_ranges(family, contrast, phase_max):
    study = small_study(
        object={"family": family, "size": 96, "amplitude_contrast": contrast, "phase_max": phase_max, "n_lines": 40}
    )
    obj = make_object(study.object)
    assert obj.shape == (96, 96) and np.iscomplexobj(obj)
    amp, phase = np.abs(obj), np.angle(obj)
    eps = 1e-12  # rounding of |exp(i phi)| and angle()
    assert amp.min() > 0 and amp.max() <= 1 + eps
    assert amp.min() >= 1 - contrast - eps
    assert phase.min() >= -eps and phase.max() <= phase_max + eps
    # The maps span their full range (f and g are normalised to [0, 1]).
    assert amp.max() == pytest.approx(1.0, abs=1e-9)
    assert amp.min() == pytest.approx(1 - contrast, abs=1e-9)
    assert phase.min() == pytest.approx(0.0, abs=1e-9)
    assert phase.max() == pytest.approx(phase_max, abs=1e-9)


@pytest.mark.parametrize("family", ["lines", "grf"])
def test_object_is_seeded(family):
    base = {"family": family, "size": 96, "n_lines": 40}
    a = make_object(small_study(object={**base, "seed": 11}).object)
    b = make_object(small_study(object={**base, "seed": 11}).object)
    c = make_object(small_study(object={**base, "seed": 12}).object)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # Amplitude and phase come from independent streams: they are not the same map.
    amp, phase = np.abs(a), np.angle(a)
    corr = np.corrcoef(amp.ravel(), phase.ravel())[0, 1]
    assert abs(corr) < 0.5
