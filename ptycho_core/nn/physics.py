"""The diffraction forward model in Keras 3 operations (``keras.ops`` only).

Exactly the simulator's physics (:mod:`ptycho_core.physics.forward`), in the same
units: complex fields are (real, imaginary) pairs of float32 tensors laid out
channels-first, (batch, C, N, N), where C is the number of positions of a
group (gridsize^2). No backend-specific call is made, so the model runs on
TensorFlow, JAX or PyTorch.

- :func:`fourier_shift` translates fields by subpixel offsets
  (g(u) = f(u - s), the convention of :func:`ptycho_core.physics.forward.extract_patches`);
- :func:`merge_spectra` places a group's patches on a shared canvas at their
  offsets relative to the group centre (weighted average, batch axis kept,
  canvas size given by the data), in the Fourier domain;
  :func:`extract_from_spectra` cuts them out again (:func:`merge_patches` and
  :func:`extract_patches` do the same through the canvas itself);
- :func:`far_field_intensity` is |fftshift(fft2(psi))|^2 / N^2;
- :func:`poisson_nll` is the Poisson negative log-likelihood of counts.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

EPS = 1e-6
MIN_WEIGHT = 0.1


def complex_mul(a_re, a_im, b_re, b_im):
    return a_re * b_re - a_im * b_im, a_re * b_im + a_im * b_re


def fftshift2(x):
    """fftshift over the last two axes (zero frequency to index N // 2)."""
    n0, n1 = x.shape[-2], x.shape[-1]
    return ops.roll(ops.roll(x, n0 // 2, axis=-2), n1 // 2, axis=-1)


def far_field_intensity(psi_re, psi_im):
    """Expected counts |fftshift(fft2(psi))|^2 / N^2 over the last two axes."""
    N = psi_re.shape[-1]
    f_re, f_im = ops.fft2((psi_re, psi_im))
    return fftshift2(f_re * f_re + f_im * f_im) / float(N * N)


def _frequencies(M: int):
    f = np.fft.fftfreq(M).astype(np.float32)
    return ops.convert_to_tensor(f.reshape(1, 1, 1, M)), ops.convert_to_tensor(f.reshape(1, 1, M, 1))


def shift_ramp(offsets, M: int):
    """Fourier-domain translation by ``offsets`` (B, C, 2) = (dx, dy): cos and sin of -2 pi (fx dx + fy dy),
    (B, C, M, M)."""
    fx, fy = _frequencies(M)
    dx = ops.expand_dims(ops.expand_dims(offsets[..., 0], -1), -1)
    dy = ops.expand_dims(ops.expand_dims(offsets[..., 1], -1), -1)
    phase = -2.0 * math.pi * (fx * dx + fy * dy)
    return ops.cos(phase), ops.sin(phase)


def fourier_shift(re, im, offsets):
    """Translate fields (B, C, M, M) by ``offsets`` (B, C, 2) = (dx, dy) pixels.

    The content moves towards larger column (row) index for positive dx (dy):
    g(u) = f(u - s). Exact for integer offsets (circular), band-limited
    interpolation otherwise.
    """
    ramp_re, ramp_im = shift_ramp(offsets, re.shape[-1])
    f_re, f_im = ops.fft2((re, im))
    return ops.ifft2(complex_mul(f_re, f_im, ramp_re, ramp_im))


def _pad_to(x, M: int):
    N = x.shape[-1]
    lo = (M - N) // 2
    return ops.pad(x, [[0, 0], [0, 0], [lo, M - N - lo], [lo, M - N - lo]])


def _pad_np(x: np.ndarray, M: int) -> np.ndarray:
    lo = (M - x.shape[-1]) // 2
    return np.pad(x, [(lo, M - x.shape[-1] - lo)] * 2)


def _crop(x, N: int):
    M = x.shape[-1]
    lo = (M - N) // 2
    return x[..., lo : lo + N, lo : lo + N]


def support_window(N: int, taper: float = 2.0) -> np.ndarray:
    """Weight of the central N/2 x N/2 object support: 1 inside, cosine taper of ``taper`` px at its edge."""
    half = N // 4
    c = np.abs(np.arange(N) - N // 2 + 0.5) - 0.5  # distance of each pixel from the centre line
    edge = np.clip((half - c) / taper, 0.0, 1.0)
    w1 = np.where(c < half, 0.5 - 0.5 * np.cos(np.pi * edge), 0.0)
    return (w1[:, None] * w1[None, :]).astype(np.float32)


def merge_spectra(re, im, weight, offsets, M: int):
    """Spectra of a group's merged canvas: F[sum_k shift(w * O_k)] and F[sum_k shift(w)], each (B, 1, M, M).

    ``re``, ``im`` (B, C, N, N); ``weight`` (N, N) support weights; ``offsets``
    (B, C, 2) positions relative to the group centre; canvas M x M centred
    on the group centre. A shift is a product with a phase ramp in the
    Fourier domain and the sum is linear, so the canvas is summed there: C
    forward transforms; the weight's spectrum is the window's (a constant)
    times the summed ramps. Returns content (re, im) and weight (re, im).
    """
    ramp_re, ramp_im = shift_ramp(offsets, M)
    w = ops.convert_to_tensor(weight)
    f_re, f_im = ops.fft2((_pad_to(re * w, M), _pad_to(im * w, M)))
    s_re, s_im = complex_mul(f_re, f_im, ramp_re, ramp_im)
    w_spec = np.fft.fft2(_pad_np(np.asarray(weight, np.float64), M))
    r_re, r_im = ops.sum(ramp_re, axis=1, keepdims=True), ops.sum(ramp_im, axis=1, keepdims=True)
    sw_re, sw_im = complex_mul(r_re, r_im, w_spec.real.astype(np.float32), w_spec.imag.astype(np.float32))
    return ops.sum(s_re, axis=1, keepdims=True), ops.sum(s_im, axis=1, keepdims=True), sw_re, sw_im


def extract_from_spectra(s_re, s_im, sw_re, sw_im, offsets, N: int):
    """Patches (B, C, N, N) at ``offsets`` (B, C, 2) from the merged canvas' spectra (:func:`merge_spectra`).

    Content and weight are shifted back (C ramps on each spectrum, one
    batched inverse transform of both) and divided in each patch's own
    frame: the weighted average of every patch covering a pixel. Where the
    summed weight is below MIN_WEIGHT (outside every support) the content is
    windowed to about zero as well; dividing by at least MIN_WEIGHT keeps it
    there.
    """
    C = offsets.shape[1]
    ramp_re, ramp_im = shift_ramp(-offsets, s_re.shape[-1])
    c_re, c_im = complex_mul(s_re, s_im, ramp_re, ramp_im)
    w_re, w_im = complex_mul(sw_re, sw_im, ramp_re, ramp_im)
    b_re, b_im = ops.ifft2((ops.concatenate([c_re, w_re], axis=1), ops.concatenate([c_im, w_im], axis=1)))
    out_re, out_im, weight = _crop(b_re[:, :C], N), _crop(b_im[:, :C], N), _crop(b_re[:, C:], N)
    norm = 1.0 / ops.maximum(weight, MIN_WEIGHT)
    return out_re * norm, out_im * norm


def merge_patches(re, im, weight, offsets, M: int):
    """The merged canvas itself (B, 1, M, M): weighted content sum_k shift(w * O_k) (re, im) and weights sum_k shift(w).

    Both are smooth (the window tapers to zero); the weighted-average object
    is content / max(weights, MIN_WEIGHT). For inspection and tests: the
    physics layer goes from :func:`merge_spectra` to
    :func:`extract_from_spectra` without forming it.
    """
    s_re, s_im, sw_re, sw_im = merge_spectra(re, im, weight, offsets, M)
    c_re, c_im = ops.ifft2((s_re, s_im))
    w_re, _ = ops.ifft2((sw_re, sw_im))
    return c_re, c_im, w_re


def extract_patches(canvas_re, canvas_im, canvas_weight, offsets, N: int):
    """Patches (B, C, N, N) cut from a merged canvas (:func:`merge_patches`) at ``offsets`` (B, C, 2)."""
    s_re, s_im = ops.fft2((canvas_re, canvas_im))
    sw_re, sw_im = ops.fft2((canvas_weight, ops.zeros_like(canvas_weight)))
    return extract_from_spectra(s_re, s_im, sw_re, sw_im, offsets, N)


def poisson_nll(counts, intensity):
    """Mean Poisson negative log-likelihood, I - k log I (the log k! constant dropped)."""
    return ops.mean(intensity - counts * ops.log(intensity + EPS))
