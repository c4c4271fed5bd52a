"""Stitching of patches into one object (ptycho_core.recon.stitch, docs/DESIGN.md section 5).

Convention under test (shared with ptycho_core.physics.forward): patch pixel [i, j] of
a P x P patch at position (x, y) samples the object at X = x - P/2 + j,
Y = y - P/2 + i. Stitching is the weighted average sum(w O) / sum(w) with a
raised-cosine window, each patch moved by its fractional position with a
Fourier shift.

Accuracy expected and why:

* integer positions: no interpolation at all, so the stitched object is the
  object itself up to the complex64 accumulation (relative error ~1e-7); the
  issue's criterion is 1e-5;
* subpixel positions: the windowed patch w * O is shifted by sinc
  (Fourier) interpolation on its own periodic P x P grid. w * O is not
  band-limited on that grid (the taper falls over P // 8 pixels, a kink in
  w, and the periodic extension jumps from one patch edge to the other), so
  shift(w O) / shift(w) differs from the shifted O by an amount set by how
  steep the taper is, largest next to the patch edges (sinc ringing decays
  like 1 / distance and the wrapped-around content of the opposite patch
  edge lands on the first row/column). Inside the overlap every pixel is an
  average dominated by patches that hold it in their flat middle, so the
  median error is small; at the coverage edge only one or two patches
  contribute, each with its small, ringing edge weight, so the error there
  is much larger. Measured with exact samples of a band-limited object
  (|k| <= 0.1 cycles/px) over six seeds: median relative error 1.8-2.3e-4
  for P = 32 (taper 4 px) and 1.5-2.2e-3 for P = 16 (taper 2 px); the
  tolerances below (1e-3 and 5e-3) leave a factor >= 2 and are still well
  below what integer placement of the same patches gives for P = 32.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from ptycho_core.physics.forward import extract_patches
from ptycho_core.recon.stitch import Stitcher, illuminated, probe_window, stitch_patches, stitch_patches_loop, taper_1d

H = W = 96


def smooth_object(shape=(H, W), seed=0, sigma_k=0.06):
    """A smooth complex object (Gaussian-filtered spectrum), amplitude in (0.55, 1], phase +-1 rad."""
    rng = np.random.default_rng(seed)
    ky, kx = np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None, :]
    g = np.exp(-(kx**2 + ky**2) / (2 * sigma_k**2))
    a = np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape)) * g).real
    p = np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape)) * g).real
    a, p = a / np.abs(a).max(), p / np.abs(p).max()
    return (0.78 + 0.2 * a) * np.exp(1j * p)


def band_limited(seed=0, kmax=0.1, n_modes=12):
    """A band-limited complex object O(X, Y) that can be sampled exactly at any point."""
    rng = np.random.default_rng(seed)

    def field():
        k = rng.uniform(-kmax, kmax, (n_modes, 2))
        ph = rng.uniform(0, 2 * np.pi, n_modes)
        a = rng.normal(size=n_modes)
        a /= np.abs(a).sum()
        return lambda X, Y: sum(a[m] * np.cos(2 * np.pi * (k[m, 0] * X + k[m, 1] * Y) + ph[m]) for m in range(n_modes))

    fa, fp = field(), field()
    return lambda X, Y: (0.8 + 0.15 * fa(X, Y)) * np.exp(1j * 0.8 * fp(X, Y))


def exact_patches(O, x, y, P):
    """Patches sampled exactly from the function O with the forward.py convention."""
    j = np.arange(P) - P / 2
    return O(x[:, None, None] + j[None, None, :], y[:, None, None] + j[None, :, None])


def raster(lo=25, hi=71, step=3.0, jitter=0.0, seed=0):
    rng = np.random.default_rng(seed)
    xs, ys = np.meshgrid(np.arange(lo, hi, step), np.arange(lo, hi, step))
    x, y = xs.ravel().astype(float), ys.ravel().astype(float)
    if jitter:
        x = x + rng.uniform(0, jitter, x.size)
        y = y + rng.uniform(0, jitter, y.size)
    return x, y


def rel_error(a, b):
    return np.abs(a - b) / np.abs(b)


# --------------------------------------------------------------------------
# accuracy
# --------------------------------------------------------------------------


@pytest.mark.parametrize("P", [32, 16], ids=["full-patch", "support-patch"])
def test_integer_positions_reproduce_the_object(P):
    obj = smooth_object(seed=1)
    x, y = raster(step=3.0)
    patches = extract_patches(obj, x, y, P)
    st = stitch_patches(patches, np.column_stack([x, y]), (H, W))
    c = st.covered
    # the covered region is the footprint of the patches: it holds every
    # position's neighbourhood and nothing far away
    assert c[25:71, 25:71].all()
    assert not c[: 25 - P // 2].any() and not c[:, : 25 - P // 2].any()
    assert rel_error(st.obj[c], obj[c]).max() < 1e-5


def test_support_patches_cut_from_full_patches_stitch_like_support_sized_patches():
    """The N/2 support of a full N patch (pixels [N/4 : 3N/4]) sits at the same position: same object."""
    N = 32
    obj = smooth_object(seed=2)
    x, y = raster(step=3.0)
    q = N // 4
    support = extract_patches(obj, x, y, N)[:, q : q + N // 2, q : q + N // 2]
    st = stitch_patches(support, np.column_stack([x, y]), (H, W))
    assert st.covered.sum() > 0.3 * H * W
    assert rel_error(st.obj[st.covered], obj[st.covered]).max() < 1e-5
    direct = stitch_patches(extract_patches(obj, x, y, N // 2), np.column_stack([x, y]), (H, W))
    np.testing.assert_allclose(st.obj, direct.obj, atol=1e-6)


@pytest.mark.parametrize("P, tol", [(32, 1e-3), (16, 5e-3)], ids=["full-patch", "support-patch"])
def test_subpixel_positions_of_a_band_limited_object(P, tol):
    O = band_limited(seed=3)
    Y, X = np.mgrid[0:H, 0:W].astype(float)
    obj = O(X, Y)
    x, y = raster(step=3.0, jitter=1.0, seed=4)
    assert np.all((x % 1 > 0) & (y % 1 > 0))  # genuinely subpixel
    patches = exact_patches(O, x, y, P)
    st = stitch_patches(patches, np.column_stack([x, y]), (H, W))
    c = st.covered
    err = rel_error(st.obj, obj)
    assert np.median(err[c]) < tol

    # the error is largest at the coverage edge (see the module docstring)
    dist = distance_transform_edt(c)  # distance to the nearest uncovered pixel
    edge, interior = c & (dist <= 2), dist > 8
    assert interior.sum() > 1000
    assert np.median(err[edge]) > 3 * np.median(err[interior])
    worst = np.unravel_index(np.argmax(np.where(c, err, 0)), err.shape)
    assert dist[worst] <= 2

    # the subpixel shift is doing its job: placing the same patches at the
    # rounded positions is clearly worse
    rounded = stitch_patches(patches, np.rint(np.column_stack([x, y])), (H, W))
    assert np.median(err[c]) < np.median(rel_error(rounded.obj, obj)[rounded.covered])


def test_the_fractional_shift_has_the_forward_model_sign():
    """A patch cut at a subpixel position lands there, not mirrored about the pixel (shift sign)."""
    O = band_limited(seed=5, kmax=0.05)
    Y, X = np.mgrid[0:64, 0:64].astype(float)
    obj = O(X, Y)
    for x0, y0 in [(30.5, 31.0), (31.0, 30.25), (30.7, 32.4)]:
        patch = exact_patches(O, np.array([x0]), np.array([y0]), 16)
        core = np.zeros((64, 64), bool)
        core[int(y0) - 4 : int(y0) + 4, int(x0) - 4 : int(x0) + 4] = True

        def error(px, py):
            st = stitch_patches(patch, np.array([[px, py]]), (64, 64))
            return rel_error(st.obj[core], obj[core]).max()

        # a sign error would place the content at floor(p) - frac(p) = p - 2 frac(p)
        mirrored = error(x0 - 2 * (x0 % 1), y0 - 2 * (y0 % 1))
        assert error(x0, y0) < 0.3 * mirrored


# --------------------------------------------------------------------------
# implementation equivalences
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_case():
    rng = np.random.default_rng(7)
    n, P = 300, 16  # more than one FFT block (128) per chunk
    positions = np.column_stack([rng.uniform(5, 91, n), rng.uniform(5, 91, n)])
    patches = (rng.standard_normal((n, P, P)) + 1j * rng.standard_normal((n, P, P))).astype(np.complex64)
    return patches, positions


def _assert_same(a, b, atol=1e-6):
    np.testing.assert_allclose(a.weight, b.weight, atol=atol)
    np.testing.assert_array_equal(a.covered, b.covered)
    np.testing.assert_allclose(a.obj, b.obj, atol=atol, rtol=0)


def test_chunk_size_does_not_change_the_result(random_case):
    patches, positions = random_case
    _assert_same(
        stitch_patches(patches, positions, (H, W), chunk=7), stitch_patches(patches, positions, (H, W), chunk=2048)
    )


def test_several_add_calls_equal_one(random_case):
    patches, positions = random_case
    one = stitch_patches(patches, positions, (H, W))
    s = Stitcher((H, W), patches.shape[1], chunk=50)
    for a, b in [(0, 1), (1, 90), (90, 211), (211, 300)]:
        s.add(patches[a:b], positions[a:b])
    assert s.n_patches == patches.shape[0]
    _assert_same(s.result(), one)


def test_vectorised_stitch_equals_the_per_patch_loop(random_case):
    patches, positions = random_case
    _assert_same(stitch_patches(patches, positions, (H, W)), stitch_patches_loop(patches, positions, (H, W)))
    w1 = taper_1d(16, 5)
    _assert_same(
        stitch_patches(patches, positions, (H, W), window=np.outer(w1, w1), min_weight=0.3),
        stitch_patches_loop(patches, positions, (H, W), window=np.outer(w1, w1), min_weight=0.3),
    )


# --------------------------------------------------------------------------
# frame edges, coverage, constant input
# --------------------------------------------------------------------------


def test_patches_partly_outside_the_frame_are_clipped_without_wrapping():
    rng = np.random.default_rng(8)
    P, S, pad = 16, 40, 20
    positions = np.array(
        [[2.3, 20.0], [38.7, 21.4], [20.0, -3.6], [19.2, 41.5], [-0.5, -0.5], [-30.0, 10.0], [70.0, 70.0]]
    )
    patches = rng.standard_normal((len(positions), P, P)) + 1j * rng.standard_normal((len(positions), P, P))
    st = stitch_patches(patches, positions, (S, S))  # no error
    # the same patches in a frame large enough to hold them, cropped: identical
    big = stitch_patches(patches, positions + pad, (S + 2 * pad, S + 2 * pad))
    inner = (slice(pad, pad + S), slice(pad, pad + S))
    np.testing.assert_allclose(st.weight, big.weight[inner], atol=1e-6)
    np.testing.assert_allclose(st.obj, big.obj[inner], atol=1e-6)
    _assert_same(st, stitch_patches_loop(patches[:5], positions[:5], (S, S)))  # partly outside

    # no wrap-around: a patch hanging over the left edge leaves the right edge empty
    one = stitch_patches(patches[:1], positions[:1], (S, S))
    cols = np.flatnonzero(one.covered.any(axis=0))
    rows = np.flatnonzero(one.covered.any(axis=1))
    assert cols.min() == 0 and cols.max() <= 2 + P // 2
    assert rows.min() >= 20 - P // 2 and rows.max() <= 20 + P // 2
    assert not one.weight[:, S - P :].any()
    # patches entirely outside contribute nothing
    outside = stitch_patches(patches[5:], positions[5:], (S, S))
    assert not outside.covered.any() and not outside.weight.any() and not outside.obj.any()


def test_the_loop_reference_also_drops_patches_entirely_outside_the_frame():
    """stitch_patches_loop is the reference of the vectorised stitcher: same inputs, same result.

    A patch entirely left of (or above) the frame gives a negative slice end
    in the loop's clipping (slice(0, c0 + P) with c0 + P < 0), which selects
    pixels instead of none, and the loop crashes with a broadcasting error.
    """
    rng = np.random.default_rng(10)
    positions = np.array([[20.0, 20.0], [-30.0, 10.0], [10.0, -30.0], [70.0, 70.0]])
    patches = rng.standard_normal((4, 16, 16)) + 1j * rng.standard_normal((4, 16, 16))
    _assert_same(stitch_patches_loop(patches, positions, (40, 40)), stitch_patches(patches, positions, (40, 40)))


def test_a_constant_patch_set_gives_a_constant_object_and_clean_empty_pixels():
    value = 0.7 * np.exp(0.9j)
    x, y = raster(lo=30, hi=60, step=2.5, jitter=1.0, seed=9)
    patches = np.full((x.size, 16, 16), value, dtype=np.complex64)
    st = stitch_patches(patches, np.column_stack([x, y]), (H, W))
    c = st.covered
    assert c.sum() > 1500
    np.testing.assert_allclose(st.obj[c], value, rtol=1e-6)
    # nothing reaches the frame's corners: not covered, exactly 0, no NaN
    assert not c[:10, :10].any() and not c[-10:, -10:].any()
    assert (~c).sum() > 1000
    assert np.all(st.obj[~c] == 0)
    assert np.isfinite(st.obj).all() and np.isfinite(st.weight).all()
    assert st.obj.shape == (H, W) and st.covered.dtype == bool
    # covered means weight above the threshold
    np.testing.assert_array_equal(c, st.weight > 0.1)
    stricter = stitch_patches(patches, np.column_stack([x, y]), (H, W), min_weight=1.0)
    assert stricter.covered.sum() < c.sum() and not (stricter.covered & ~c).any()


# --------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "patch_shape, pos_shape",
    [
        ((3, 16, 15), (3, 2)),  # not square
        ((3, 16), (3, 2)),  # not a stack
        ((3, 16, 16), (3, 3)),  # positions not (n, 2)
        ((3, 16, 16), (4, 2)),  # one position too many
        ((3, 16, 16), (2,)),
    ],
)
def test_wrong_shapes_raise_value_error(patch_shape, pos_shape):
    with pytest.raises(ValueError, match="stitch"):
        stitch_patches(np.zeros(patch_shape, np.complex64), np.zeros(pos_shape), (32, 32))


def test_stitcher_refuses_patches_of_another_size():
    s = Stitcher((32, 32), 16)
    with pytest.raises(ValueError, match="stitch"):
        s.add(np.zeros((2, 8, 8), np.complex64), np.zeros((2, 2)))


# --------------------------------------------------------------------------
# Coverage of a scan (the region every method is held to)
# --------------------------------------------------------------------------


def _gaussian_probe(N: int, sigma: float) -> np.ndarray:
    """Amplitude exp(-r^2 / 4 sigma^2): intensity exp(-r^2 / 2 sigma^2), FWHM 2 sigma sqrt(2 ln 2)."""
    r2 = np.sum(np.square(np.mgrid[:N, :N] - N // 2), axis=0)
    return np.exp(-r2 / (4.0 * sigma**2)).astype(np.complex128)


def test_one_position_illuminates_the_disc_where_the_intensity_exceeds_a_tenth_of_its_peak():
    sigma = 2.0
    covered = illuminated(np.array([[20.0, 17.0]]), _gaussian_probe(32, sigma), (40, 40))
    rr, cc = np.mgrid[:40, :40]
    # intensity exp(-r^2 / 2 sigma^2) > 0.1  <=>  r^2 < 2 sigma^2 ln 10 = 18.4 (no pixel centre at the boundary)
    expected = (rr - 17) ** 2 + (cc - 20) ** 2 < 2 * sigma**2 * np.log(10)
    np.testing.assert_array_equal(covered, expected)


def test_illumination_is_the_network_stitching_coverage():
    rng = np.random.default_rng(3)
    probe = _gaussian_probe(32, 2.5)
    positions = rng.uniform(10, 50, size=(40, 2))
    patches = np.exp(1j * rng.uniform(-1, 1, size=(40, 16, 16)))
    stitched = stitch_patches(patches, positions, (60, 60), window=probe_window(probe))
    np.testing.assert_array_equal(illuminated(positions, probe, (60, 60)), stitched.covered)


def test_a_sparse_raster_is_illuminated_between_its_fwhm_discs():
    """At 20 % linear overlap (step 0.8 D) the FWHM discs leave holes at the cell centres
    (0.57 D from the nearest position); the summed intensity there is 4 exp(-0.57^2 D^2 / 2 sigma^2) = 1.6 x peak."""
    sigma = 2.0
    D = 2 * sigma * np.sqrt(2 * np.log(2))
    step = 0.8 * D
    g = 12 + step * np.arange(8)
    positions = np.array([(x, y) for y in g for x in g])
    covered = illuminated(positions, _gaussian_probe(32, sigma), (60, 60))
    inner = (slice(int(np.ceil(g[0] + D / 2)), int(g[-1] - D / 2) + 1),) * 2
    assert covered[inner].all()
    rr, cc = np.mgrid[:60, :60]
    d2 = np.min(
        (cc.ravel()[:, None] - positions[None, :, 0]) ** 2 + (rr.ravel()[:, None] - positions[None, :, 1]) ** 2, axis=1
    )
    fwhm_discs = (d2 <= (D / 2) ** 2).reshape(60, 60)
    assert not fwhm_discs[inner].all()
