"""Gauge synchronisation of patches over their overlaps (ptycho_core.recon.gauge).

Patches are cut from a known smooth object with the simulator's extraction
(ptycho_core.physics.forward.extract_patches, support N/2 x N/2 of N = 32) on a
jittered raster of step 1.6 px (the default study's dense step), each unit
(a patch, or a group of four) given a random constant phase in (-pi, pi].
The solver sees the patches, their positions and the probe weight only.

Tolerance, derived: for exact patches of one object the overlap products
agree up to the Fourier-shift interpolation of w * O on its own 16 x 16
grid (the probe weight is 0.17 % of its peak at the support edge, so the
periodic wrap-around it leaves is of that order relative to the content);
phase errors of a few 1e-3 rad follow (measured: residual 0.003-0.004 rad,
largest offset error 0.001 rad). The tolerances, 0.01 rad for the offsets and
the residual, leave a factor >= 2.5 and are 300 times below the spread of
the random offsets they undo.
"""

from __future__ import annotations

import numpy as np
import pytest

from ptycho_core.config import ProbeConfig
from ptycho_core.physics.forward import extract_patches
from ptycho_core.physics.probe import make_probe
from ptycho_core.recon.gauge import apply_offsets, synchronise
from ptycho_core.recon.stitch import probe_window, stitch_patches

N, P = 32, 16
PROBE = ProbeConfig(
    kind="focused",
    pupil_diameter=10.0,
    central_stop=0.0,
    defocus_waves=0.3,
    apodisation=4.0,
    disk_diameter=16.0,
    file=None,
    key="probe",
)
TOL = 0.01


def smooth_object(shape=(96, 96), seed=1, sigma_k=0.06):
    rng = np.random.default_rng(seed)
    ky, kx = np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None, :]
    g = np.exp(-(kx**2 + ky**2) / (2 * sigma_k**2))
    a, p = (np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape)) * g).real for _ in range(2))
    return (0.78 + 0.2 * a / np.abs(a).max()) * np.exp(1j * 1.2 * p / np.abs(p).max())


def scan(lo=24.0, hi=72.0, step=1.6, seed=0):
    rng = np.random.default_rng(seed)
    xs, ys = np.meshgrid(np.arange(lo, hi, step), np.arange(lo, hi, step))
    return np.column_stack([xs.ravel(), ys.ravel()]) + rng.uniform(-0.3, 0.3, (xs.size, 2))


@pytest.fixture(scope="module")
def case():
    obj = smooth_object()
    pos = scan()
    q = N // 4
    patches = extract_patches(obj, pos[:, 0], pos[:, 1], N)[:, q : q + P, q : q + P]
    return obj, pos, patches, probe_window(make_probe(N, PROBE))


def _offset_error(found, true):
    """Largest error of the offsets once the (free) global constant is matched."""
    d = np.exp(1j * (found - true))
    return float(np.abs(np.angle(d * np.conj(np.mean(d)))).max())


@pytest.mark.parametrize("group_size", [1, 4])
def test_random_constant_phases_come_back_to_one_gauge(case, group_size):
    _, pos, patches, w = case
    units = np.arange(len(pos)) // group_size
    rng = np.random.default_rng(7)
    true = rng.uniform(-np.pi, np.pi, units.max() + 1)
    scrambled = patches * np.exp(1j * true[units])[:, None, None]
    sol = synchronise(scrambled, pos, w, units)
    err = _offset_error(sol.offsets, true)
    print(f"group size {group_size}: {sol.summary()}, largest offset error {err:.2e} rad")
    assert sol.n_components == 1
    assert err < TOL
    assert sol.residual_rad < TOL
    assert sol.spread_rad > 1.0  # the random offsets were seen as such


def test_consistent_patches_need_no_correction(case):
    _, pos, patches, w = case
    sol = synchronise(patches, pos, w)
    assert np.abs(sol.offsets).max() < TOL
    assert sol.spread_rad < TOL and sol.residual_rad < TOL


def test_synchronised_stitching_recovers_the_phase_that_plain_averaging_erases(case):
    obj, pos, patches, w = case
    true = np.random.default_rng(3).uniform(-np.pi, np.pi, len(pos))
    scrambled = patches * np.exp(1j * true)[:, None, None]
    fixed = apply_offsets(scrambled, synchronise(scrambled, pos, w))
    inner = (slice(34, 62), slice(34, 62))

    def phase_error(stitched):
        o = stitched.obj[inner]
        g = obj[inner]
        o = o * np.exp(-1j * np.angle(np.vdot(o, g).conj()))  # global constant removed
        return float(np.sqrt(np.mean(np.angle(o * np.conj(g)) ** 2)))

    err_fixed = phase_error(stitch_patches(fixed, pos, obj.shape, window=w))
    err_raw = phase_error(stitch_patches(scrambled, pos, obj.shape, window=w))
    print(f"stitched phase RMS error: synchronised {err_fixed:.2e} rad, unsynchronised {err_raw:.2f} rad")
    assert err_fixed < TOL
    assert err_raw > 0.3


def test_disconnected_clusters_are_solved_apart_and_counted(case):
    obj, _, _, w = case
    pos = np.concatenate([scan(24, 34, 1.6, 1), scan(62, 72, 1.6, 2)])  # 28 px apart: no shared pixel
    q = N // 4
    patches = extract_patches(obj, pos[:, 0], pos[:, 1], N)[:, q : q + P, q : q + P]
    true = np.random.default_rng(5).uniform(-np.pi, np.pi, len(pos))
    sol = synchronise(patches * np.exp(1j * true)[:, None, None], pos, w)
    assert sol.n_components == 2
    half = len(scan(24, 34, 1.6, 1))
    assert _offset_error(sol.offsets[:half], true[:half]) < TOL
    assert _offset_error(sol.offsets[half:], true[half:]) < TOL


def test_noise_shows_in_the_residual(case):
    _, pos, patches, w = case
    rng = np.random.default_rng(11)
    noisy = patches + 0.2 * (rng.standard_normal(patches.shape) + 1j * rng.standard_normal(patches.shape))
    clean, dirty = synchronise(patches, pos, w), synchronise(noisy, pos, w)
    assert dirty.residual_rad > 5 * clean.residual_rad


def test_bad_shapes_are_refused(case):
    _, pos, patches, w = case
    with pytest.raises(ValueError, match="synchronise"):
        synchronise(patches, pos[:-1], w)
