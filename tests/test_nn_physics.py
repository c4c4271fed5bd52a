"""Tests of the Keras physics (ptycho_core.nn.physics), the models and the training batches
(docs/DESIGN.md sections 3 and 5).

The physics layer must reproduce the simulator (:mod:`ptycho_core.physics.forward`)
in the same units; the gridsize-2 merge must keep the batch axis and return
each group's patches where they are supported. Tolerances are stated next to
each assertion: float32 arithmetic (relative rounding 6e-8, an FFT of size
32-48 adds a few ulps per butterfly stage) makes 1e-5 a safe bound for
anything computed exactly in exact arithmetic.

Models are tiny (filters (4, 8, 8), N = 32) so the file runs in seconds on two
CPU cores.
"""

from __future__ import annotations

import math
import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import ops  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

from ptycho_core.nn import models, training  # noqa: E402
from ptycho_core.nn import physics as phys  # noqa: E402
from ptycho_core.physics import forward  # noqa: E402
from ptycho_core.physics.probe import focused_probe  # noqa: E402

# Keras' TensorFlow backend converts tensors with np.array(x), which NumPy 2 warns about; not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

N = 32
FLOAT32_TOL = 1e-5
ARCH = models.ArchitectureConfig(filters=(4, 8, 8), amplitude_max=2.0)


def np_(x) -> np.ndarray:
    if hasattr(x, "numpy"):  # eager TensorFlow / PyTorch tensor
        return np.asarray(x.numpy())
    return np.asarray(ops.convert_to_numpy(x))


def cplx(pair) -> np.ndarray:
    re, im = pair[0], pair[1]
    return np_(re).astype(np.float64) + 1j * np_(im).astype(np.float64)


def f32(x) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def rel_l1(a, b) -> float:
    return float(np.abs(a - b).sum() / np.abs(b).sum())


def rel_max(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def smooth_object():
    """Smooth complex object, 96 x 96: amplitude in [0.5, 1], phase of about +-1.5 rad."""
    rng = np.random.default_rng(11)
    a = gaussian_filter(rng.normal(size=(96, 96)), 3.0, mode="wrap")
    p = gaussian_filter(rng.normal(size=(96, 96)), 3.0, mode="wrap")
    amp = 0.5 + 0.5 * (a - a.min()) / (a.max() - a.min())
    phase = 3.0 * (p - p.min()) / (p.max() - p.min()) - 1.5
    return amp * np.exp(1j * phase)


@pytest.fixture(scope="module")
def probe():
    """Focused probe in sqrt(photons): about 1e4 photons through free space."""
    P = focused_probe(N, pupil_diameter=12.0, defocus_waves=0.78)
    return P * math.sqrt(1e4 / np.sum(np.abs(P) ** 2))


class BandLimited:
    """Analytic band-limited complex object (a few plane waves, |f| <= 0.12 cycles/px).

    Its value at any subpixel position is exact, so patches at subpixel
    positions have an exact ground truth (no interpolation in the reference).
    """

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.freqs = rng.uniform(-0.12, 0.12, size=(8, 2))
        self.coef = 0.05 * (rng.normal(size=8) + 1j * rng.normal(size=8))

    def __call__(self, X, Y):
        X, Y = np.broadcast_arrays(np.asarray(X, float), np.asarray(Y, float))
        out = np.full(X.shape, 0.8 + 0.1j)
        for (fx, fy), c in zip(self.freqs, self.coef):
            out = out + c * np.exp(2j * np.pi * (fx * X + fy * Y))
        return out

    def patches(self, xs, ys, n: int = N) -> np.ndarray:
        """Patches in the forward.extract_patches convention: pixel [i, j] samples (x - n/2 + j, y - n/2 + i)."""
        j = np.arange(n)
        return np.stack([self((x - n / 2 + j)[None, :], (y - n / 2 + j)[:, None]) for x, y in zip(xs, ys)])


# --------------------------------------------------------------------------
# far field and the physics layer against the simulator
# --------------------------------------------------------------------------


def test_far_field_intensity_matches_numpy_forward_on_random_fields():
    rng = np.random.default_rng(0)
    re = f32(rng.normal(size=(2, 4, N, N)))
    im = f32(rng.normal(size=(2, 4, N, N)))
    got = np_(phys.far_field_intensity(re, im))
    want = forward.far_field_intensity(re.astype(np.float64) + 1j * im)
    assert got.shape == (2, 4, N, N)
    assert rel_l1(got, want) < FLOAT32_TOL
    assert rel_max(got, want) < FLOAT32_TOL
    # Parseval in the layer too: sum(I) = sum(|psi|^2)
    np.testing.assert_allclose(
        got.sum(axis=(-2, -1)), (re.astype(np.float64) ** 2 + im**2).sum(axis=(-2, -1)), rtol=FLOAT32_TOL
    )


def test_far_field_dc_sits_at_centre_pixel():
    ones = np.ones((1, 1, N, N), np.float32)
    I = np_(phys.far_field_intensity(ones, np.zeros_like(ones)))[0, 0]
    assert np.unravel_index(np.argmax(I), I.shape) == (N // 2, N // 2)
    assert I[N // 2, N // 2] == pytest.approx(N * N, rel=FLOAT32_TOL)


def test_far_field_of_probe_times_patches_equals_simulator(smooth_object, probe):
    xs = np.array([40.0, 47.37, 52.8])
    ys = np.array([41.0, 39.61, 55.25])
    patches = forward.extract_patches(smooth_object, xs, ys, N)
    psi = probe[None] * patches
    want = forward.expected_counts(probe, patches)
    got = np_(phys.far_field_intensity(f32(psi.real)[:, None], f32(psi.imag)[:, None]))[:, 0]
    assert rel_l1(got, want) < FLOAT32_TOL
    assert rel_max(got, want) < FLOAT32_TOL
    # the units survive: about 1e4 expected photons per pattern
    assert np.all((want.sum(axis=(-2, -1)) > 1e3) & (want.sum(axis=(-2, -1)) < 1e5))


def _expected_physics_object(patch: np.ndarray) -> np.ndarray:
    """The object the C = 1, zero-offset physics layer illuminates, from merge_patches' definition.

    The layer zero-pads the N/2 x N/2 support values to N x N; merge_patches
    forms sum(O w) / max(sum(w), MIN_WEIGHT) (an unshifted C = 1 group), and
    extract_patches crops it back: O * w / max(w, MIN_WEIGHT).
    """
    q = N // 4
    w = phys.support_window(N).astype(np.float64)
    padded = np.zeros_like(patch)
    padded[q : q + N // 2, q : q + N // 2] = patch[q : q + N // 2, q : q + N // 2]
    return padded * w / np.maximum(w, phys.MIN_WEIGHT)


def test_physics_layer_equals_simulator_for_the_same_object_and_probe(smooth_object, probe):
    """DiffractionPhysics (C = 1) and the simulator give the same expected counts (1e-5 relative)."""
    xs = np.array([45.3, 50.0])
    ys = np.array([44.7, 48.0])
    patches = forward.extract_patches(smooth_object, xs, ys, N)
    q = N // 4
    support = patches[:, q : q + N // 2, q : q + N // 2]
    amp = f32(np.abs(support))[..., None]
    phase = f32(np.angle(support))[..., None]
    offsets = np.zeros((2, 1, 2), np.float32)
    layer = models.DiffractionPhysics(probe, canvas_size=models.canvas_size_for(offsets, N))
    got = np_(layer(amp, phase, offsets))
    assert got.shape == (2, N, N, 1)

    o_layer = np.stack([_expected_physics_object(p) for p in patches])
    want = forward.expected_counts(probe, o_layer)
    assert rel_l1(got[..., 0], want) < FLOAT32_TOL
    assert rel_max(got[..., 0], want) < FLOAT32_TOL

    # The windowed object is the simulator's object on the inner support (w == 1) ...
    inner = phys.support_window(N) == 1
    np.testing.assert_allclose(o_layer[:, inner], patches[:, inner], rtol=0, atol=1e-12)
    # ... and free of anything outside [N/4, 3N/4).
    outside = phys.support_window(N) == 0
    assert np.all(o_layer[:, outside] == 0)


def test_physics_layer_gridsize2_output_shape_and_units(smooth_object, probe):
    """C = 4 with relative offsets: (B, N, N, 4) expected counts, in photons (Parseval with the extracted object)."""
    rng = np.random.default_rng(3)
    amp = f32(rng.uniform(0.5, 1.0, size=(2, N // 2, N // 2, 4)))
    phase = f32(rng.uniform(-1, 1, size=(2, N // 2, N // 2, 4)))
    offsets = f32([[[-3, -3], [3, -3], [-3, 3], [3, 3]], [[-2.5, 0.5], [2.5, -0.5], [0.25, 1.0], [-0.25, -1.0]]])
    layer = models.DiffractionPhysics(probe, canvas_size=models.canvas_size_for(offsets, N))
    got = np_(layer(amp, phase, offsets))
    assert got.shape == (2, N, N, 4)
    assert np.all(np.isfinite(got)) and got.min() > -1e-3
    total = got.sum(axis=(1, 2))
    # a transmission of at most ~1 through the probe carrying 1e4 photons
    assert np.all(total > 0) and np.all(total < 1e4 * 1.5)


def test_physics_layer_serialises_its_constructor_arguments(probe):
    """get_config holds the probe and the canvas size: a layer rebuilt from it (through JSON)
    computes the same counts."""
    import json

    rng = np.random.default_rng(4)
    amp = f32(rng.uniform(0.5, 1.0, size=(2, N // 2, N // 2, 4)))
    phase = f32(rng.uniform(-1, 1, size=(2, N // 2, N // 2, 4)))
    offsets = f32([[[-3, -3], [3, -3], [-3, 3], [3, 3]], [[-2.5, 0.5], [2.5, -0.5], [0.25, 1.0], [-0.25, -1.0]]])
    layer = models.DiffractionPhysics(probe, canvas_size=models.canvas_size_for(offsets, N), name="physics")
    config = json.loads(json.dumps(layer.get_config()))
    assert config["canvas_size"] == layer.canvas_size and config["name"] == "physics"
    again = models.DiffractionPhysics.from_config(config)
    np.testing.assert_array_equal(again._probe, layer._probe)
    np.testing.assert_array_equal(np_(again(amp, phase, offsets)), np_(layer(amp, phase, offsets)))
    rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(rebuilt, models.DiffractionPhysics) and rebuilt.canvas_size == layer.canvas_size


# --------------------------------------------------------------------------
# Fourier shift
# --------------------------------------------------------------------------


def test_fourier_shift_integer_offsets_equal_roll():
    rng = np.random.default_rng(1)
    M = 32
    re = f32(rng.normal(size=(2, 3, M, M)))
    im = f32(rng.normal(size=(2, 3, M, M)))
    offsets = f32([[[1, 0], [0, 1], [-3, 5]], [[7, -2], [0, 0], [-16, 16]]])
    got = cplx(phys.fourier_shift(re, im, offsets))
    x = re + 1j * im.astype(np.float64)
    for b in range(2):
        for c in range(3):
            dx, dy = (int(v) for v in offsets[b, c])
            # positive dx moves content to larger column index, positive dy to larger row index
            want = np.roll(x[b, c], (dy, dx), axis=(0, 1))
            np.testing.assert_allclose(got[b, c], want, rtol=0, atol=FLOAT32_TOL * np.abs(x).max())


def test_fourier_shift_direction_of_a_single_pixel():
    re = np.zeros((1, 1, 16, 16), np.float32)
    re[0, 0, 5, 3] = 1.0
    out = np_(phys.fourier_shift(re, np.zeros_like(re), f32([[[2, 1]]]))[0])[0, 0]
    assert np.unravel_index(np.argmax(out), out.shape) == (6, 5)  # (row + dy, column + dx)


def test_fourier_shift_there_and_back_is_identity():
    rng = np.random.default_rng(2)
    re = f32(rng.normal(size=(2, 2, 32, 32)))
    im = f32(rng.normal(size=(2, 2, 32, 32)))
    s = f32(rng.uniform(-5, 5, size=(2, 2, 2)))
    r1, i1 = phys.fourier_shift(re, im, s)
    back = cplx(phys.fourier_shift(r1, i1, -s))
    x = re + 1j * im.astype(np.float64)
    assert np.abs(back - x).max() < FLOAT32_TOL * np.abs(x).max()


@pytest.mark.parametrize("offset", [(0.3, 0.0), (0.0, -0.45), (1.7, 2.25), (-0.5, 0.5)])
def test_fourier_shift_moves_gaussian_centroid_by_subpixel_offset(offset):
    M = 32
    y, x = np.mgrid[:M, :M].astype(np.float64)
    x0, y0 = 15.0, 16.0
    g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * 2.5**2)).astype(np.float32)[None, None]
    re, im = phys.fourier_shift(g, np.zeros_like(g), f32([[offset]]))
    r = np_(re)[0, 0].astype(np.float64)
    assert (r * x).sum() / r.sum() - x0 == pytest.approx(offset[0], abs=0.01)
    assert (r * y).sum() / r.sum() - y0 == pytest.approx(offset[1], abs=0.01)
    # a real, smooth field stays real (its spectrum at the Nyquist bin is ~0)
    assert np.abs(np_(im)).max() < 1e-5


# --------------------------------------------------------------------------
# support window
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [16, 32, 64])
def test_support_window(n):
    w = phys.support_window(n)
    assert w.shape == (n, n) and w.dtype == np.float32
    assert w.min() >= 0.0 and w.max() <= 1.0
    q = n // 4
    inside = np.zeros((n, n), bool)
    inside[q : q + n // 2, q : q + n // 2] = True
    assert np.all(w[~inside] == 0), "weight outside [N/4, 3N/4)"
    # 1 on the inner support: everything of [N/4, 3N/4) farther than the 2-px taper from its edge
    inner = np.zeros((n, n), bool)
    inner[q + 1 : q + n // 2 - 1, q + 1 : q + n // 2 - 1] = True
    assert np.all(w[inner] == 1.0)
    assert np.all(w[inside] > 0)
    # symmetric about the centre of the support, and separable
    np.testing.assert_array_equal(w, w[::-1, :])
    np.testing.assert_array_equal(w, w[:, ::-1])
    np.testing.assert_array_equal(w, w.T)


# --------------------------------------------------------------------------
# merge then extract
# --------------------------------------------------------------------------


def _group(obj_or_fn, centre, offsets, n=N):
    """Ground-truth patches of one group at centre + offsets."""
    xs = centre[0] + offsets[:, 0]
    ys = centre[1] + offsets[:, 1]
    if callable(obj_or_fn):
        return obj_or_fn.patches(xs, ys, n)
    return forward.extract_patches(obj_or_fn, xs, ys, n)


def _merge_extract(patches, offsets):
    """Patches (B, C, N, N) complex, offsets (B, C, 2) -> canvas, coverage, extracted patches (numpy)."""
    o = f32(offsets)
    M = models.canvas_size_for(o, N)
    w = phys.support_window(N)
    c_re, c_im, wsum = phys.merge_patches(f32(patches.real), f32(patches.imag), w, o, M)
    e = cplx(phys.extract_patches(c_re, c_im, wsum, o, N))
    wsum = np_(wsum)
    canvas = cplx((c_re, c_im)) / np.maximum(wsum, phys.MIN_WEIGHT)  # the weighted-average object
    return canvas, np.clip(wsum, 0.0, 1.0), e, M


INTEGER_OFFSETS = np.array([[-3.0, -3.0], [3.0, -3.0], [-3.0, 3.0], [3.0, 3.0]])
SUBPIXEL_OFFSETS = np.array([[-3.3, -2.7], [2.9, -3.1], [-2.6, 3.4], [3.0, 2.4]])
SUBPIXEL_OFFSETS = SUBPIXEL_OFFSETS - SUBPIXEL_OFFSETS.mean(axis=0)


def test_merge_then_extract_integer_offsets_returns_patches(smooth_object):
    """Integer offsets: every shift is exact, so inside each support (w == 1) the patches come back
    to float32 precision."""
    centre = (48.0, 47.0)
    patches = _group(smooth_object, centre, INTEGER_OFFSETS)
    canvas, cov, out, M = _merge_extract(patches[None], INTEGER_OFFSETS[None])
    assert canvas.shape == (1, 1, M, M) and cov.shape == (1, 1, M, M) and out.shape == (1, 4, N, N)
    inner = phys.support_window(N) == 1
    err = np.abs(out[0] - patches)[:, inner].max()
    assert err < FLOAT32_TOL * np.abs(patches).max()

    # the canvas itself is the object, centred on the group centre (canvas pixel M/2 = centre), where covered
    r0, c0 = int(centre[1]) - M // 2, int(centre[0]) - M // 2
    truth = smooth_object[r0 : r0 + M, c0 : c0 + M]
    covered = cov[0, 0] >= 0.5
    assert covered.sum() > (N // 2) ** 2  # the union of the four shifted supports
    assert np.abs(canvas[0, 0] - truth)[covered].max() < FLOAT32_TOL
    # coverage in [0, 1], 0 far from every support
    assert cov.min() >= 0 and cov.max() <= 1
    assert cov[0, 0, 0, 0] < 1e-5


def test_merge_then_extract_single_patch_zero_offset_is_exact(smooth_object):
    patches = _group(smooth_object, (50.0, 50.0), np.zeros((1, 2)))
    _, _, out, _ = _merge_extract(patches[None], np.zeros((1, 1, 2)))
    w = phys.support_window(N)
    sup = w >= phys.MIN_WEIGHT
    assert np.abs(out[0] - patches)[:, sup].max() < FLOAT32_TOL


# Subpixel tolerance. The object is band-limited (|f| <= 0.12 cycles/px) and
# its patches are sampled exactly, so the only error a merge/extract can make
# is that a Fourier shift of (object x window) is not exactly (shifted object)
# x (shifted window): the 2-px cosine taper of the window has spectral
# content up to the Nyquist frequency. That leakage is measured at ~1.5-3e-3
# of the patch amplitude inside the w == 1 region (e.g. by shifting the
# weighted sum and the summed weights back separately before dividing), so 1e-2
# of the peak amplitude is a bound a correct merge/extract meets with margin.
SUBPIXEL_TOL = 1e-2


@pytest.mark.parametrize(
    "offsets",
    [SUBPIXEL_OFFSETS, np.array([[-4.3, 0.2], [4.3, -0.2]])],
    ids=["gridsize2-subpixel", "pair-subpixel"],
)
def test_merge_then_extract_subpixel_offsets_returns_patches(offsets):
    obj = BandLimited(5)
    centre = (40.3, 41.6)
    patches = _group(obj, centre, offsets)
    _, _, out, _ = _merge_extract(patches[None], offsets[None])
    inner = phys.support_window(N) == 1
    err = np.abs(out[0] - patches)[:, inner].max() / np.abs(patches).max()
    assert err < SUBPIXEL_TOL, f"merge/extract at subpixel offsets: max relative error {err:.3g} inside the supports"


def test_subpixel_ground_truth_agrees_with_simulator_patches():
    """The analytic patches of the subpixel test follow forward.extract_patches' convention."""
    obj = BandLimited(5)
    H = 96
    grid = obj(np.arange(H)[None, :], np.arange(H)[:, None])
    xs, ys = np.array([40.3, 47.9]), np.array([41.6, 38.2])
    sim = forward.extract_patches(grid, xs, ys, N)
    exact = obj.patches(xs, ys)
    # the simulator treats its (N + 9)-px crop as periodic; the plane waves are not, so allow its edge ringing
    assert np.abs(sim - exact).max() < 0.05
    # and the subpixel part is in the right direction: a wrong sign would be as far off as a 2 * frac shift
    wrong = obj.patches(2 * np.floor(xs) - xs, 2 * np.floor(ys) - ys)
    assert np.abs(sim - exact).mean() < 0.2 * np.abs(sim - wrong).mean()


# --------------------------------------------------------------------------
# batch axis
# --------------------------------------------------------------------------


def test_merge_keeps_batch_axis_and_groups_independent(smooth_object):
    offsets = np.stack(
        [INTEGER_OFFSETS, SUBPIXEL_OFFSETS, np.array([[-2.0, 1.0], [2.0, -1.0], [1.0, 2.0], [-1.0, -2.0]])]
    )
    centres = [(30.0, 30.0), (60.3, 35.7), (45.0, 62.0)]
    patches = np.stack([_group(smooth_object, c, o) for c, o in zip(centres, offsets)])
    canvas, cov, out, M = _merge_extract(patches, offsets)
    assert canvas.shape == (3, 1, M, M) and cov.shape == (3, 1, M, M) and out.shape == (3, 4, N, N)

    # each group keeps its own content (integer-offset group 0 and 2 exactly, not a sum over groups)
    inner = phys.support_window(N) == 1
    for b in (0, 2):
        assert np.abs(out[b] - patches[b])[:, inner].max() < FLOAT32_TOL
    # and the batched result equals each group merged on its own
    for b in range(3):
        _, _, alone, _ = _merge_extract(patches[b : b + 1], offsets[b : b + 1])
        # float32 FFT round-off, amplified up to 1 / MIN_WEIGHT = 10x outside the supports
        assert np.abs(out[b] - alone[0]).max() < FLOAT32_TOL / phys.MIN_WEIGHT

    # changing group 1 leaves groups 0 and 2 unchanged exactly
    changed = patches.copy()
    changed[1] = changed[1] * np.exp(0.7j) * 0.5 + 0.1
    canvas2, _, out2, _ = _merge_extract(changed, offsets)
    for b in (0, 2):
        np.testing.assert_array_equal(out2[b], out[b])
        np.testing.assert_array_equal(canvas2[b], canvas[b])
    assert np.abs(out2[1] - out[1]).max() > 0.05


# --------------------------------------------------------------------------
# Poisson loss
# --------------------------------------------------------------------------


def _nll(counts, intensity) -> float:
    return float(np_(phys.poisson_nll(np.asarray(counts, np.float64), np.asarray(intensity, np.float64))))


def test_poisson_nll_expected_value_minimal_at_true_intensity():
    rng = np.random.default_rng(4)
    lam = rng.uniform(0.5, 200.0, size=(4, 16, 16))
    # E_k[I - k log I] with k ~ Poisson(lam) is exactly the NLL with counts = lam
    best = _nll(lam, lam)
    for other in (lam * 0.9, lam * 1.1, lam + rng.normal(0, 0.05, size=lam.shape) * lam, np.full_like(lam, lam.mean())):
        assert _nll(lam, other) > best
    # and over Poisson draws, the average NLL is lowest at the true intensities
    draws = rng.poisson(lam, size=(200, *lam.shape)).astype(np.float64)
    mean_at = lambda I: np.mean([_nll(k, I) for k in draws[:50]])  # noqa: E731
    assert mean_at(lam) < mean_at(lam * 0.9)
    assert mean_at(lam) < mean_at(lam * 1.1)


def test_poisson_nll_gradient_vanishes_at_counts():
    rng = np.random.default_rng(5)
    k = rng.uniform(1.0, 100.0, size=(8,))
    n = k.size
    h = 1e-4
    for I0, zero in ((k.copy(), True), (k * 1.3, False)):
        grad = np.empty(n)
        for j in range(n):
            up, dn = I0.copy(), I0.copy()
            up[j] += h * I0[j]
            dn[j] -= h * I0[j]
            grad[j] = (_nll(k, up) - _nll(k, dn)) / (2 * h * I0[j])
        analytic = (1 - k / (I0 + phys.EPS)) / n
        np.testing.assert_allclose(grad, analytic, atol=1e-7)
        if zero:
            assert np.abs(grad).max() < 1e-7
        else:
            assert np.abs(grad).min() > 1e-3


def test_poisson_loss_is_registered_and_finite_at_zero_intensity():
    assert keras.saving.get_registered_object("ptycho_core>poisson_loss") is models.poisson_loss
    val = float(np_(models.poisson_loss(np.ones((1, 4, 4, 1), np.float32), np.zeros((1, 4, 4, 1), np.float32))))
    assert np.isfinite(val)


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 4])
def test_object_model_shapes_and_ranges(channels):
    keras.utils.set_random_seed(0)
    model = models.build_object_model(N, channels, 0.5, ARCH, "obj")
    x = np.random.default_rng(0).uniform(0, 10, size=(3, N, N, channels)).astype(np.float32)
    amp, phase = (np_(a) for a in model.predict(x, verbose=0))
    assert amp.shape == (3, N // 2, N // 2, channels)
    assert phase.shape == (3, N // 2, N // 2, channels)
    assert amp.min() > 0 and amp.max() < ARCH.amplitude_max
    assert phase.min() > -math.pi and phase.max() < math.pi
    assert model.get_layer("input_scale").scale == pytest.approx(0.5)


def test_object_model_rejects_bad_sizes():
    with pytest.raises(ValueError, match="multiple of 16"):
        models.build_object_model(24, 1, 1.0, ARCH, "bad")
    with pytest.raises(ValueError, match="filters"):
        models.build_object_model(N, 1, 1.0, models.ArchitectureConfig(filters=(4, 8), amplitude_max=2.0), "bad")


def test_activations_bound_extreme_inputs():
    x = np.array([-1e3, -5.0, 0.0, 5.0], np.float32)
    a = np_(models.AmplitudeActivation(2.0)(x))
    p = np_(models.PhaseActivation()(x))
    assert a.min() >= 0 and a.max() <= 2.0 and a[2] == pytest.approx(1.0)
    assert np.abs(p).max() <= math.pi and p[2] == 0


def test_canvas_size_for():
    rng = np.random.default_rng(6)
    for _ in range(20):
        off = rng.uniform(-9, 9, size=(5, 4, 2))
        M = models.canvas_size_for(off, N)
        assert M % 2 == 0
        assert M >= N + 2 * np.abs(off).max()
    assert models.canvas_size_for(np.zeros((2, 1, 2)), N) >= N
    assert models.canvas_size_for(INTEGER_OFFSETS[None], N) == N + 2 * 3 + 2  # 40 = 2^3 x 5
    # 46 = 2 x 23 needed: rounded up to the FFT-friendly 48 = 2^4 x 3
    assert models.canvas_size_for(np.array([[[6.0, 0.0], [-6.0, 0.0]]]), N) == 48
    for M in {models.canvas_size_for(rng.uniform(-r, r, size=(1, 4, 2)), N) for r in np.linspace(0.5, 30, 60)}:
        m = M
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        assert m == 1, f"canvas {M} has a prime factor above 5"


def test_fourier_domain_overlap_equals_the_route_through_the_canvas(smooth_object):
    """The physics layer's merge_spectra -> extract_from_spectra equals merge_patches -> extract_patches.

    The two differ only by an inverse and a forward FFT of the canvas (exact
    in exact arithmetic): float32 round-off, amplified up to 1 / MIN_WEIGHT
    where the summed weight is small.
    """
    offsets = np.stack([SUBPIXEL_OFFSETS, INTEGER_OFFSETS])
    patches = np.stack([_group(smooth_object, c, o) for c, o in zip([(40.3, 41.6), (50.0, 47.0)], offsets)])
    o = f32(offsets)
    M = models.canvas_size_for(o, N)
    w = phys.support_window(N)
    re, im = f32(patches.real), f32(patches.imag)
    fast = cplx(phys.extract_from_spectra(*phys.merge_spectra(re, im, w, o, M), o, N))
    canvas = cplx(phys.extract_patches(*phys.merge_patches(re, im, w, o, M), o, N))
    assert fast.shape == (2, 4, N, N)
    assert np.abs(fast - canvas).max() < FLOAT32_TOL / phys.MIN_WEIGHT


BODY_LAYERS = ("enc0_conv1", "enc2_conv2", "enc1_pool", "amp_up0", "amp_dec1_conv2", "phase_dec0_conv1")
FLOAT32_LAYERS = ("input_scale", "amp_out", "phase_out", "amplitude", "phase")


def test_precision_is_validated():
    with pytest.raises(ValueError, match="precision"):
        models.ArchitectureConfig(filters=(4, 8, 8), amplitude_max=2.0, precision="float16")


def test_mixed_bfloat16_computes_the_body_in_bfloat16_and_the_outputs_in_float32():
    """The policy reaches every body layer, never the head; same weights give the float32 model's output
    to bf16 accuracy.

    bfloat16 keeps 8 significant bits (relative rounding 2^-9 = 0.2 %); through
    the ~14 layers between input and output the relative error of an
    activation grows to a few 2^-9, so outputs of order 1 agree to ~1e-2 and
    not to float32 precision (measured: 5e-4 amplitude, 3e-3 rad phase): the
    bound 2e-2 holds with margin, and the difference must not be zero (a
    policy silently ignored would give identical outputs).
    """
    keras.utils.set_random_seed(4)
    fast = models.build_object_model(
        N, 4, 0.5, models.ArchitectureConfig(filters=(8, 16, 16), amplitude_max=2.0, precision="mixed_bfloat16"), "fast"
    )
    ref = models.build_object_model(N, 4, 0.5, models.ArchitectureConfig(filters=(8, 16, 16), amplitude_max=2.0), "ref")
    for name in BODY_LAYERS:
        layer = fast.get_layer(name)
        assert layer.dtype_policy.compute_dtype == "bfloat16" and layer.dtype_policy.variable_dtype == "float32", name
    for name in FLOAT32_LAYERS:
        assert fast.get_layer(name).dtype_policy.compute_dtype == "float32", name
    assert {layer.dtype_policy.name for layer in ref.layers if hasattr(layer, "dtype_policy")} == {"float32"}

    ref.set_weights(fast.get_weights())
    x = np.random.default_rng(5).uniform(0, 6, size=(4, N, N, 4)).astype(np.float32)
    out_fast = [np_(a) for a in fast.predict(x, verbose=0)]
    out_ref = [np_(a) for a in ref.predict(x, verbose=0)]
    for name, a, b in zip(("amplitude", "phase"), out_fast, out_ref):
        assert a.dtype == np.float32
        diff = float(np.abs(a - b).max())
        assert 0 < diff < 2e-2, f"{name}: max |bfloat16 body - float32| = {diff:.3g}"


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_pinn_training_model_trains_one_step(probe, precision):
    keras.utils.set_random_seed(1)
    C = 4
    obj = models.build_object_model(
        N, C, 0.05, models.ArchitectureConfig(filters=(4, 8, 8), amplitude_max=2.0, precision=precision), "pinn"
    )

    offsets = np.broadcast_to(f32(INTEGER_OFFSETS), (2, C, 2)).copy()
    fit_model = models.build_pinn_training_model(obj, probe, models.canvas_size_for(offsets, N))
    fit_model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=models.poisson_loss)
    x = np.sqrt(np.random.default_rng(2).poisson(20.0, size=(2, N, N, C))).astype(np.float32)
    pred = np_(fit_model.predict([x, offsets], verbose=0))
    assert pred.shape == (2, N, N, C)
    before = [np_(w).copy() for w in obj.trainable_weights]
    loss = float(np.asarray(fit_model.train_on_batch([x, offsets], np.square(x))))
    assert np.isfinite(loss)
    changed = [not np.array_equal(b, np_(w)) for b, w in zip(before, obj.trainable_weights)]
    assert all(changed), "every object-model weight receives a gradient through the physics"
    physics = fit_model.get_layer("physics")
    assert not physics.trainable_weights  # the probe is fixed
    assert physics.dtype_policy.name == "float32" and pred.dtype == np.float32  # expected counts never in bfloat16


# --------------------------------------------------------------------------
# training batches
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_data():
    rng = np.random.default_rng(7)
    n = 20
    sqrt_counts = np.sqrt(rng.poisson(5.0, size=(n, N, N))).astype(np.float32)
    positions = np.column_stack([rng.uniform(20, 60, n), rng.uniform(20, 60, n)])
    groups = np.array([rng.choice(n, 4, replace=False) for _ in range(11)])
    return sqrt_counts, positions, groups


def test_group_batches_pinn_shapes_and_targets(toy_data):
    sqrt_counts, positions, groups = toy_data
    gb = training.GroupBatches(sqrt_counts, positions, groups, batch_size=4)
    assert len(gb) == 3
    sizes = []
    for i in range(len(gb)):
        (x, off), target = gb[i]
        b = x.shape[0]
        sizes.append(b)
        assert x.shape == (b, N, N, 4) and off.shape == (b, 4, 2) and target.shape == (b, N, N, 4)
        assert off.dtype == np.float32
        np.testing.assert_array_equal(target, np.square(x))
        np.testing.assert_allclose(off.sum(axis=1), 0, atol=1e-4)
        g = groups[i * 4 : i * 4 + b]  # unshuffled
        np.testing.assert_array_equal(x[..., 2], sqrt_counts[g[:, 2]])
        np.testing.assert_allclose(off, positions[g] - positions[g].mean(axis=1, keepdims=True), atol=1e-4)
    assert sizes == [4, 4, 3]


def test_group_batches_baseline_shapes(toy_data):
    sqrt_counts, positions, _ = toy_data
    n = sqrt_counts.shape[0]
    amp = np.random.default_rng(8).uniform(0.5, 1, size=(n, N // 2, N // 2)).astype(np.float32)
    phase = np.random.default_rng(9).uniform(-1, 1, size=(n, N // 2, N // 2)).astype(np.float32)
    rows = np.arange(n)[:, None]
    gb = training.GroupBatches(sqrt_counts, positions, rows, batch_size=8, targets=(amp, phase))
    x, (ta, tp) = gb[1]
    assert x.shape == (8, N, N, 1)
    assert ta.shape == (8, N // 2, N // 2, 1) and tp.shape == (8, N // 2, N // 2, 1)
    np.testing.assert_array_equal(ta[..., 0], amp[8:16])
    np.testing.assert_array_equal(tp[..., 0], phase[8:16])
    np.testing.assert_array_equal(x[..., 0], sqrt_counts[8:16])


def test_group_batches_shuffling_is_seeded(toy_data):
    sqrt_counts, positions, groups = toy_data

    def orders(seed):
        gb = training.GroupBatches(sqrt_counts, positions, groups, 4, rng=np.random.default_rng(seed))
        first = gb.order.copy()
        gb.on_epoch_end()
        return first, gb.order.copy()

    a1, a2 = orders(3)
    b1, b2 = orders(3)
    c1, _ = orders(4)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2), "a new order each epoch"
    assert not np.array_equal(a1, c1)
    assert sorted(a1) == list(range(len(groups)))
    # the batch follows the order
    gb = training.GroupBatches(sqrt_counts, positions, groups, 4, rng=np.random.default_rng(3))
    (x, _), _ = gb[0]
    np.testing.assert_array_equal(x[..., 0], sqrt_counts[groups[a1[:4], 0]])


def test_input_scale_normalises_mean_energy(toy_data):
    sqrt_counts = toy_data[0]
    s = training.input_scale(sqrt_counts, N)
    energy = np.mean(np.sum((s * sqrt_counts.astype(np.float64)) ** 2, axis=(-2, -1)))
    assert energy == pytest.approx((N / 2) ** 2, rel=1e-9)
    with pytest.raises(ValueError, match="no counts"):
        training.input_scale(np.zeros((2, N, N), np.float32), N)


def _raster_groups(nx=12, ny=5, step=1.5):
    """Positions on a raster and, for each, a group of it and its right/down neighbours (where they exist)."""
    yy, xx = np.mgrid[:ny, :nx]
    positions = np.column_stack([xx.ravel() * step, yy.ravel() * step]).astype(np.float64)
    idx = np.arange(nx * ny).reshape(ny, nx)
    groups = np.array(
        [[idx[r, c], idx[r, c + 1], idx[r + 1, c], idx[r + 1, c + 1]] for r in range(ny - 1) for c in range(nx - 1)]
    )
    return positions, groups


def test_validation_strip_holds_out_the_far_end_with_a_guard_band():
    positions, groups = _raster_groups()
    guard = 2.9
    strip = training.validation_strip(positions, groups, 0.2, "x", guard)
    xs = positions[:, 0][groups]
    # validation: the lowest-x fifth of the groups by centre (ties kept together), far from the test region (high x)
    np.testing.assert_array_equal(strip.validation, np.flatnonzero(xs.mean(axis=1) <= strip.cut_px))
    assert round(0.2 * len(groups)) <= strip.validation.size < 0.3 * len(groups)
    assert xs[strip.validation].mean(axis=1).max() < xs[strip.train].mean(axis=1).min()
    # no training member within the guard of any validation member: the strips share no illuminated object
    assert xs[strip.train].min() - xs[strip.validation].max() >= guard
    # every sample is used, held out or dropped, exactly once
    assert strip.train.size + strip.validation.size + strip.n_dropped_in_guard == len(groups)
    assert not set(strip.train) & set(strip.validation)
    assert strip.n_dropped_in_guard > 0
    # single patterns (Baseline) along y
    rows = np.arange(len(positions))[:, None]
    s1 = training.validation_strip(positions, rows, 0.2, "y", guard)
    ys = positions[:, 1]
    assert ys[s1.train].min() - ys[s1.validation].max() >= guard
    # fraction 0: no validation, everything trains
    s0 = training.validation_strip(positions, groups, 0.0, "x", guard)
    assert s0.validation.size == 0 and s0.train.size == len(groups)


def test_validation_strip_refuses_a_region_too_small_for_its_guard():
    positions, groups = _raster_groups(nx=4)
    with pytest.raises(ValueError, match="validation_fraction"):
        training.validation_strip(positions, groups, 0.3, "x", 10.0)


def test_support_weighted_mae_weights_the_bright_support_and_normalises_by_the_spread():
    P = 8
    w = np.zeros((P, P), np.float32)
    w[2:6, 2:6] = 1.0  # the probe is bright on the centre only
    loss = models.SupportWeightedMAE(w, scale=0.5)
    y = np.zeros((2, P, P, 1), np.float32)
    pred = np.zeros((2, P, P, 1), np.float32)
    pred[:, 0, 0, 0] = 100.0  # an error in the dark rim costs nothing
    assert float(np_(loss(y, pred))) == pytest.approx(0.0, abs=1e-7)
    pred[:, 2:6, 2:6, 0] = 0.25  # a uniform error of 0.25 on the support, over a spread of 0.5
    assert float(np_(loss(y, pred))) == pytest.approx(0.5, rel=1e-6)
    again = models.SupportWeightedMAE.from_config(loss.get_config())
    assert float(np_(again(y, pred))) == pytest.approx(0.5, rel=1e-6)
    # the spread: a constant-prediction error in the target's own units
    vals = np.concatenate([np.zeros((1, P, P)), np.ones((1, P, P))])
    assert training.target_spread(vals, w) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="constant"):
        training.target_spread(np.ones((2, P, P)), w)


def test_phase_std_in_probe_disc_flags_a_saturated_phase_output():
    from ptycho_core.nn.training import SATURATED_PHASE_STD, phase_std_in_probe_disc

    rng = np.random.default_rng(0)
    stuck = np.full((4, 16, 16, 4), math.pi, np.float32)
    stuck[:, 0, 0, :] = -math.pi  # the dark rim may differ: only the disc counts
    assert phase_std_in_probe_disc(stuck, 5.3) < 1e-6 < SATURATED_PHASE_STD  # float32 rounding of a constant
    textured = rng.normal(0.0, 0.1, size=(4, 16, 16, 4)).astype(np.float32)
    assert phase_std_in_probe_disc(textured, 5.3) == pytest.approx(0.1, rel=0.2)


def test_auto_precision_is_bfloat16_only_where_the_hardware_computes_it(tmp_path):
    """training.precision auto: mixed_bfloat16 on an accelerator or a CPU flagged amx_bf16 / avx512_bf16, float32 on
    a CPU that would emulate it (3.8x slower, measured); a policy named explicitly is kept."""
    from ptycho_core.nn.backend import cpu_flags, resolve_precision

    amd = tmp_path / "cpuinfo_avx2"
    amd.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\n")
    xeon = tmp_path / "cpuinfo_amx"
    xeon.write_text("model name\t: Intel Xeon\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert cpu_flags(amd) == {"fpu", "sse2", "avx", "avx2", "fma"}
    assert cpu_flags(tmp_path / "missing") == frozenset()
    precision, why = resolve_precision("auto", gpus=[], flags=cpu_flags(amd))
    assert precision == "float32" and "without native bfloat16" in why
    precision, why = resolve_precision("auto", gpus=[], flags=cpu_flags(xeon))
    assert precision == "mixed_bfloat16" and why == "auto: CPU computes bfloat16 natively (amx_bf16, avx512_bf16)"
    assert resolve_precision("auto", gpus=["/physical_device:GPU:0"], flags=frozenset())[0] == "mixed_bfloat16"
    assert resolve_precision("mixed_bfloat16", gpus=[], flags=cpu_flags(amd)) == (
        "mixed_bfloat16",
        "set in training.precision",
    )
    assert resolve_precision("float32", gpus=["gpu"], flags=cpu_flags(xeon))[0] == "float32"


HEAP_PROBE = """
import ctypes, sys
from ptycho_core.nn.backend import keep_heap
kept = keep_heap() if sys.argv[1] == "kept" else None
libc = ctypes.CDLL(None)
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
mapped = libc.mallinfo2().hblks
block = libc.malloc(2**20)  # an activation-sized block in a fresh heap: mapped on its own, or from the heap?
mapped = libc.mallinfo2().hblks - mapped
libc.free(block)
blocks = [libc.malloc(100_000) for _ in range(500)]  # 50 MB of heap (each block under the mmap threshold)
grown = libc.mallinfo2().arena
for b in reversed(blocks):
    libc.free(b)
print(kept, grown, libc.mallinfo2().arena, mapped)
"""


def test_network_jobs_keep_their_heap():
    """The network jobs' allocator setting takes effect: 50 MB freed at the top of the heap stay in the process,
    where glibc's default gives them back to the system (and every training step mapped and faulted them in
    again: 1.9x PtychoPINN's and 3.5x the Baseline's training speed, measured), and a 1 MiB block comes from the
    heap, where a fresh process maps it on its own (glibc's starting mmap threshold, 128 KiB, which the trim
    setting would otherwise freeze). An unknown heap mode is refused."""
    import subprocess
    import sys

    from ptycho_core.nn.backend import configure_backend

    def arena(mode):
        out = subprocess.run([sys.executable, "-c", HEAP_PROBE, mode], capture_output=True, text=True, check=True)
        kept, grown, after, mapped = out.stdout.split()
        return kept, int(grown), int(after), int(mapped)

    kept, grown, after, mapped = arena("kept")
    assert kept == "True" and grown >= 50_000_000 and after >= grown and mapped == 0
    _, grown, after, mapped = arena("default")
    assert grown >= 50_000_000 and after < 10_000_000  # glibc trimmed the freed top of the heap
    assert mapped == 1  # and mapped the 1 MiB block on its own
    with pytest.raises(ValueError, match="heap"):
        configure_backend(1, heap="tcmalloc")
