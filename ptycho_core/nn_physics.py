"""The diffraction forward model in Keras 3 operations (``keras.ops`` only).

Exactly the simulator's physics (:mod:`ptycho_core.forward`), in the same
units: complex fields are (real, imaginary) pairs of float32 tensors laid out
channels-first, (batch, C, N, N), where C is the number of positions of a
group (gridsize^2). No backend-specific call is made, so the model runs on
TensorFlow, JAX or PyTorch.

- :func:`fourier_shift` translates fields by subpixel offsets
  (g(u) = f(u - s), the convention of :func:`ptycho_core.forward.extract_patches`);
- :func:`merge_patches` places a group's patches on a shared canvas at their
  offsets relative to the group centre (weighted average, batch axis kept,
  canvas size given by the data); :func:`extract_patches` cuts them out again;
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


def fourier_shift(re, im, offsets):
    """Translate fields (B, C, M, M) by ``offsets`` (B, C, 2) = (dx, dy) pixels.

    The content moves towards larger column (row) index for positive dx (dy):
    g(u) = f(u - s). Exact for integer offsets (circular), band-limited
    interpolation otherwise.
    """
    M = re.shape[-1]
    fx, fy = _frequencies(M)
    dx = ops.expand_dims(ops.expand_dims(offsets[..., 0], -1), -1)
    dy = ops.expand_dims(ops.expand_dims(offsets[..., 1], -1), -1)
    phase = -2.0 * math.pi * (fx * dx + fy * dy)
    f_re, f_im = ops.fft2((re, im))
    s_re, s_im = complex_mul(f_re, f_im, ops.cos(phase), ops.sin(phase))
    return ops.ifft2((s_re, s_im))


def _pad_to(x, M: int):
    N = x.shape[-1]
    lo = (M - N) // 2
    return ops.pad(x, [[0, 0], [0, 0], [lo, M - N - lo], [lo, M - N - lo]])


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


def merge_patches(re, im, weight, offsets, M: int):
    """Weighted sums of a group's patches on an M x M canvas centred on the group centre.

    ``re``, ``im`` (B, C, N, N); ``weight`` (N, N) support weights; ``offsets``
    (B, C, 2) positions relative to the group centre. Returns the canvas of
    weighted content, sum_k shift(w * O_k), real and imaginary (B, 1, M, M),
    and of weights, sum_k shift(w) (B, 1, M, M). Both are smooth (the window
    tapers to zero), so they can be shifted again without ringing; the
    division happens after extraction (:func:`extract_patches`).
    """
    w = ops.zeros_like(re) + ops.convert_to_tensor(weight)
    w_re, _ = fourier_shift(_pad_to(w, M), _pad_to(ops.zeros_like(re), M), offsets)
    c_re, c_im = fourier_shift(_pad_to(re * w, M), _pad_to(im * w, M), offsets)
    return ops.sum(c_re, axis=1, keepdims=True), ops.sum(c_im, axis=1, keepdims=True), ops.sum(w_re, axis=1, keepdims=True)


def extract_patches(canvas_re, canvas_im, canvas_weight, offsets, N: int):
    """Patches (B, C, N, N) cut from the merged canvas (B, 1, M, M) at ``offsets`` (B, C, 2).

    Content and weight are shifted back separately and divided in each
    patch's own frame: the weighted average of every patch covering a pixel.
    Where the summed weight is below MIN_WEIGHT (outside every support) the
    content is windowed to about zero as well; dividing by at least
    MIN_WEIGHT keeps it there.
    """
    C = offsets.shape[1]
    s_re, s_im = fourier_shift(ops.repeat(canvas_re, C, axis=1), ops.repeat(canvas_im, C, axis=1), -offsets)
    w_re, _ = fourier_shift(ops.repeat(canvas_weight, C, axis=1), ops.zeros_like(ops.repeat(canvas_weight, C, axis=1)), -offsets)
    norm = 1.0 / ops.maximum(_crop(w_re, N), MIN_WEIGHT)
    return _crop(s_re, N) * norm, _crop(s_im, N) * norm


def poisson_nll(counts, intensity):
    """Mean Poisson negative log-likelihood, I - k log I (the log k! constant dropped)."""
    return ops.mean(intensity - counts * ops.log(intensity + EPS))
