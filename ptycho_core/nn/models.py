"""Keras 3 models: PtychoPINN (unsupervised, physics-informed) and the supervised Baseline.

Both share the encoder family: conv blocks with max pooling down to N/8
(one block per encoder width), decoders back up to the N/2 x N/2 object
support (two upsamplings). Inputs are measured
diffraction amplitudes sqrt(counts), channels-last (batch, N, N, C); the
first layer multiplies them by the recorded normalisation constant
``input_scale`` (the only normalisation, at the input, invertible).

The object predictor (``object_model``) returns amplitude in (0, amplitude_max)
(amplitude_max * sigmoid) and phase pi * tanh, each (batch, N/2, N/2, C).
PtychoPINN's training model passes the object through the diffraction
physics (:mod:`ptycho_core.nn.physics`) with the known probe in
sqrt(photons), so the predicted expected counts are in photons and the
object's absolute amplitude is identifiable; its loss is the Poisson NLL.
Nothing is kept at module level: every model is built by a function.

**Precision.** ``ArchitectureConfig.precision`` is the Keras dtype policy of
the convolutional body (encoder and decoders): ``"mixed_bfloat16"`` computes
in bfloat16 with float32 weights (3-4x faster training at N = 64, about 1.5x
at N = 32, on a CPU with AMX; scripts/bench_throughput.py), ``"float32"``
everywhere else and for checking.
The input normalisation, the two output convolutions and their activations,
the diffraction physics and the losses always compute in float32, so the
object and the expected counts are never quantised to bfloat16 (8 bits of
mantissa would be a 0.02 rad step in the phase). The policy is part of each
layer's saved configuration, so a reloaded bundle computes as it was trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from ptycho_core.nn import physics as phys

#: Dtype policies of the convolutional body (ArchitectureConfig.precision).
PRECISIONS = ("float32", "mixed_bfloat16")


@dataclass(frozen=True)
class ArchitectureConfig:
    filters: tuple[int, ...]  # encoder widths, one per pooling level (3 levels: N/8)
    amplitude_max: float
    precision: str = "float32"  # dtype policy of the convolutional body (PRECISIONS)

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {PRECISIONS}, found {self.precision!r}")


def _conv_block(x, filters: int, name: str, dtype: str):
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv1", dtype=dtype)(x)
    return layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv2", dtype=dtype)(x)


def _decoder(x, filters: tuple[int, ...], channels: int, name: str, dtype: str):
    # from N/8 up to N/2: two upsamplings; the output convolution in float32
    for level, f in enumerate(reversed(filters[:2])):
        x = layers.UpSampling2D(2, name=f"{name}_up{level}", dtype=dtype)(x)
        x = _conv_block(x, f, f"{name}_dec{level}", dtype)
    return layers.Conv2D(channels, 3, padding="same", name=f"{name}_out", dtype="float32")(x)


@keras.saving.register_keras_serializable(package="ptycho_core")
class AmplitudeActivation(layers.Layer):
    """amplitude_max * sigmoid(x): positive and bounded (with amplitude_max 2, an untrained net starts near 1)."""

    def __init__(self, amplitude_max: float, **kwargs):
        super().__init__(**kwargs)
        self.amplitude_max = float(amplitude_max)

    def call(self, x):
        return self.amplitude_max * ops.sigmoid(x)

    def get_config(self):
        return {**super().get_config(), "amplitude_max": self.amplitude_max}


@keras.saving.register_keras_serializable(package="ptycho_core")
class PhaseActivation(layers.Layer):
    """pi * tanh(x): phase in (-pi, pi)."""

    def call(self, x):
        return math.pi * ops.tanh(x)


def build_object_model(N: int, channels: int, input_scale: float, arch: ArchitectureConfig, name: str) -> keras.Model:
    """sqrt(counts) (B, N, N, C) -> amplitude, phase (B, N/2, N/2, C)."""
    if N % 16:
        raise ValueError(f"N: expected a multiple of 16 (encoder depth), found {N}")
    if len(arch.filters) != 3:
        raise ValueError(f"filters: expected 3 encoder widths (pooling to N/8), found {arch.filters}")
    body = arch.precision
    inp = keras.Input((N, N, channels), name="sqrt_counts")
    x = layers.Rescaling(float(input_scale), name="input_scale", dtype="float32")(inp)
    for level, f in enumerate(arch.filters):
        x = _conv_block(x, f, f"enc{level}", body)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool", dtype=body)(x)
    amp = _decoder(x, arch.filters, channels, "amp", body)
    amp = AmplitudeActivation(arch.amplitude_max, name="amplitude", dtype="float32")(amp)
    phase = _decoder(x, arch.filters, channels, "phase", body)
    phase = PhaseActivation(name="phase", dtype="float32")(phase)
    return keras.Model(inp, [amp, phase], name=name)


@keras.saving.register_keras_serializable(package="ptycho_core")
class DiffractionPhysics(layers.Layer):
    """Object patches (support N/2) -> expected counts, with the known probe.

    Inputs: amplitude, phase (B, N/2, N/2, C) and offsets (B, C, 2) of each
    position relative to its group centre. For C > 1 the patches are merged
    on an M x M canvas and re-extracted (the overlap constraint); for C = 1
    the patch is used as it is. Output: expected counts (B, N, N, C).
    """

    def __init__(self, probe: np.ndarray, canvas_size: int, **kwargs):
        super().__init__(**kwargs)
        probe = np.asarray(probe)
        self.N = int(probe.shape[-1])
        self.canvas_size = int(canvas_size)
        self._probe = np.stack([probe.real, probe.imag]).astype(np.float32)
        self._window = phys.support_window(self.N)

    def build(self, input_shape):
        self.probe = self.add_weight(
            shape=self._probe.shape, initializer=keras.initializers.Constant(self._probe), trainable=False, name="probe"
        )

    def call(self, amplitude, phase, offsets):
        N = self.N
        q = N // 4
        a = ops.transpose(amplitude, (0, 3, 1, 2))
        p = ops.transpose(phase, (0, 3, 1, 2))
        pad = [[0, 0], [0, 0], [q, N - N // 2 - q], [q, N - N // 2 - q]]
        o_re = ops.pad(a * ops.cos(p), pad)
        o_im = ops.pad(a * ops.sin(p), pad)
        if a.shape[1] > 1:  # C = 1: the patch is its own group (zero offset), nothing to merge
            spectra = phys.merge_spectra(o_re, o_im, self._window, offsets, self.canvas_size)
            o_re, o_im = phys.extract_from_spectra(*spectra, offsets, N)
        psi_re, psi_im = phys.complex_mul(self.probe[0], self.probe[1], o_re, o_im)
        intensity = phys.far_field_intensity(psi_re, psi_im)
        return ops.transpose(intensity, (0, 2, 3, 1))

    def get_config(self):
        """The constructor's arguments; the complex probe as its real and imaginary parts
        (JSON holds no complex numbers)."""
        return {
            **super().get_config(),
            "probe": {"real": self._probe[0].tolist(), "imag": self._probe[1].tolist()},
            "canvas_size": self.canvas_size,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        parts = config.pop("probe")
        probe = np.asarray(parts["real"], dtype=np.float32) + 1j * np.asarray(parts["imag"], dtype=np.float32)
        return cls(probe.astype(np.complex64), **config)


def build_pinn_training_model(object_model: keras.Model, probe: np.ndarray, canvas_size: int) -> keras.Model:
    """(sqrt counts, offsets) -> expected counts: the object model followed by the physics."""
    N = object_model.input.shape[1]
    C = object_model.input.shape[-1]
    diff = keras.Input((N, N, C), name="sqrt_counts")
    offsets = keras.Input((C, 2), name="offsets")
    amp, phase = object_model(diff)
    intensity = DiffractionPhysics(probe, canvas_size, name="physics", dtype="float32")(amp, phase, offsets)
    return keras.Model([diff, offsets], intensity, name="ptychopinn_training")


@keras.saving.register_keras_serializable(package="ptycho_core")
def poisson_loss(counts, intensity):
    """Poisson NLL of measured counts (B, N, N, C) under expected counts."""
    return phys.poisson_nll(counts, intensity)


@keras.saving.register_keras_serializable(package="ptycho_core")
class SupportWeightedMAE(keras.losses.Loss):
    """Baseline loss of one quantity: sum_x w(x) |y - y_hat| / (scale * sum_x w(x)), per sample.

    ``weights`` (N/2, N/2) is the probe intensity |P|^2 on the support
    (:func:`ptycho_core.recon.stitch.probe_window`): a diffraction pattern carries
    information about the object only where the probe is bright, so the
    network is not asked to guess the dark rim. ``scale`` is the
    ``weights``-weighted mean absolute deviation of the quantity's training
    targets about their mean (:func:`ptycho_core.nn.training.target_spread`):
    1.0 is the error of predicting the mean everywhere, so amplitude and
    phase, whose errors differ in scale, weigh equally.
    """

    def __init__(self, weights, scale: float = 1.0, name: str = "support_weighted_mae", **kwargs):
        super().__init__(name=name, **kwargs)
        self.support_weights = np.asarray(weights, dtype=np.float32)
        self.scale = float(scale)
        if self.support_weights.ndim != 2 or not self.support_weights.sum() > 0 or not self.scale > 0:
            raise ValueError(
                "support-weighted MAE: expected 2-D non-negative weights and a positive scale, "
                f"found {self.support_weights.shape}, {self.scale}"
            )

    def call(self, y_true, y_pred):
        w = ops.convert_to_tensor(self.support_weights[:, :, None])
        err = ops.sum(ops.abs(y_true - y_pred) * w, axis=(1, 2, 3))
        return err / (float(self.support_weights.sum()) * self.scale * ops.cast(ops.shape(y_true)[-1], err.dtype))

    def get_config(self):
        return {**super().get_config(), "weights": self.support_weights.tolist(), "scale": self.scale}


def canvas_size_for(offsets: np.ndarray, N: int) -> int:
    """Smallest even canvas holding every patch at its offset, with a 2-pixel margin, of an FFT-friendly size.

    The size is rounded up to the next even number with no prime factor
    above 5 (46 = 2 x 23 becomes 48): transforms of such sizes are the
    fast ones, and the extra margin changes nothing but the zero padding.
    """
    reach = float(np.abs(offsets).max()) if offsets.size else 0.0
    M = N + 2 * int(math.ceil(reach)) + 2
    M += M % 2
    while not _smooth(M):
        M += 2
    return M


def _smooth(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1
