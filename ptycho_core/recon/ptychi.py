"""The PtyChi arm: pty-chi LSQML on the test split of a view (docs/DESIGN.md section 6); its step is
:mod:`ptycho_core.steps.reconstruct_ptychi`.

Runs in its own environment (``.venv-ptychi``, torch + pty-chi, no
TensorFlow) and its own process: pty-chi calls ``torch.set_default_device``
globally. torch and ptychi are imported inside the functions that need them,
so this module (its conventions and the pure-numpy helpers) imports without
torch.

Conventions at the pty-chi boundary, each checked numerically against
pty-chi 2.2.0's own forward model (:func:`forward_model_check` runs at every
reconstruction and its error is recorded in the sentinel):

**Data.** pty-chi takes intensities (counts), not amplitudes:
``counts = rint(diffraction**2)``, exactly as measured. Our patterns have the
zero frequency at ``[N/2, N/2]`` (``fftshift``); pty-chi's far field is
``fft2`` with no shift after it, and its ``data_options.fft_shift=True``
(set explicitly) moves the zero frequency of the given data to ``[0, 0]``
with ``torch.fft.fftshift``, which equals ``ifftshift`` for even N (N is a
multiple of 16).

**Probe.** Our expected counts are ``|fftshift(fft2(P O))|^2 / N^2``; pty-chi
computes ``|fft2(P' O)|^2`` (unnormalised FFT), so the probe handed to it is
``P' = P / N`` (:func:`probe_scale`). With it the photon scale, and so the
absolute object amplitude, is the one of the data. The probe is fixed unless
``PtyChiConfig.probe_refinement``. Two pty-chi defaults would change the
scale and are switched off:

- ``LSQMLReconstructorOptions.rescale_probe_intensity_in_first_epoch``
  (default True): epoch 0 would only rescale the probe to the mean measured
  intensity, updating nothing else;
- ``ObjectOptions.remove_object_probe_ambiguity`` (default on, every 10
  epochs): it divides the object by its weighted RMS transmission (forcing
  it to ~1) and multiplies the probe by the same factor, even when the probe
  is not refined. Our objects have amplitudes below 1, which this would
  erase.

With probe refinement on, the product P * O is constrained but not its split
between the two, so the absolute amplitude is no longer fixed by the data
(8 epochs on a 1e6-photon test: mean amplitude 15 % high, probe changed 13 %).

**Positions.** Ours are ``(x, y)`` = (column, row) in object pixels; the patch
at (x, y) samples the object at ``y - N/2 + i`` (:mod:`ptycho_core.physics.forward`).
pty-chi takes separate ``y`` and ``x`` arrays of patch centres relative to an
origin in its object buffer; the patch at buffer position ``p`` (origin
included) samples the buffer at ``p - (N - 1)/2 + i``. The buffer is a crop
of our frame starting at our pixel ``(row0, col0)`` (:class:`ObjectBuffer`);
with pty-chi's ``SUPPORT`` origin ``c = round(shape / 2) - 0.5`` the two
agree when

    pos_y = y - row0 - 0.5 - c_y,   pos_x = x - col0 - 0.5 - c_x

(:func:`to_ptychi_positions`), i.e. ``pos = y - row0 - round(Hb / 2)``. The
buffer covers every patch plus a margin, so pty-chi never pads. The
reconstructed buffer is pasted back at ``(row0, col0)``: it is on our pixel
grid with no resampling.

**Covered.** ``covered`` marks the pixels the used positions illuminate by
the rule the network arms' stitching uses (:func:`ptycho_core.recon.stitch.illuminated`:
summed probe intensity, peak 1, above 0.1), so every method is held to the
same region. The object is set to 0 outside it (the contract of
:mod:`ptycho_core.io.reconstruction`).

**Free pixels and stopping** (``stopping`` in the configuration, the rule
PtychoPINN_TTR follows too; :mod:`ptycho_core.sampling.free_pixels`). A fixed
random fraction of the detector pixels, the same in every pattern of the
replicate (:func:`~ptycho_core.sampling.free_pixels.free_pixel_mask`, drawn
from the replicate seed's own stream), is held out of the fit: pty-chi gets
``valid_pixel_mask = ~free`` (True = fitted), in OUR convention, since its
``PtychographyDataset`` fftshifts the mask exactly as it fftshifts the
patterns (checked at every run: the mask and the patterns pty-chi holds,
shifted back, are ours); its noise models then zero the far-field gradient
on the free pixels, and its Poisson step size ignores them. One more place
of pty-chi 2.2.0 reads the patterns: the object preconditioner's first
scale, from the brightest pattern's mean over every pixel; it is
initialised here from the fitted pixels only
(:func:`_preconditioner_from_fitted_pixels`), and with that, a run on
patterns whose free pixels hold garbage gives the very same object (tested).
pty-chi's displayed loss and its Fourier error (read only by momentum
acceleration, off here) still include the free pixels. The Poisson noise
of a free pixel is independent of every fitted one, so while LSQML fits the
object the free pixels' deviance falls with the fitted pixels' deviance, and
once it starts following the noise of the fitted pixels it no longer
improves on the free ones. LSQML runs in chunks of ``check_every`` epochs up
to the cap ``PtyChiConfig.epochs``; after each chunk the current object, as
it would be returned (pasted onto our frame, 0 outside ``covered``, rounded
to complex64 as saved), is put through OUR forward model
(:func:`ptycho_core.physics.forward.expected_counts` of
:func:`~ptycho_core.physics.forward.extract_patches`) and the mean Poisson
deviance of the free pixels of each pattern is computed
(:func:`~ptycho_core.sampling.free_pixels.pattern_deviance`; that of the
fitted pixels is recorded beside it). A check improves when the mean free
deviance is below the reference's (the last check that improved) by more
than ``standard_errors`` standard errors of the paired per-pattern
difference (:func:`~ptycho_core.sampling.free_pixels.improvement`; the first
check always improves); after ``patience`` epochs, i.e.
``ceil(patience / check_every)`` checks, without improvement the run stops
(converged); reaching the cap first is recorded as not converged.

**What is kept.** The returned object (``best_epoch``,
``free_deviance_best``) is the latest check whose free deviance is not
worse than the reference's by more than ``standard_errors`` standard
errors: the reference itself, or a later LSQML iterate the free pixels
cannot tell from it. PtychoPINN_TTR keeps its reference instead, because it
starts from a trained network, an estimate it should leave only on
evidence; LSQML starts from a flat object and its further iterates are the
method's own convergence. Measured on held-out objects (object seeds
999/998, 30 photons, sparse view, 3 replicates): the free pixels there hold
about 1.5 photons per pattern and no check beat the first by 2 standard
errors, and keeping the reference (the object after 2 epochs) scored phase
MS-SSIM 0.547 against 0.792 for the relative-margin rule before it (best
epochs 6-18). With ``probe_refinement`` the probe is an iterate too: the
deviance uses the current refined probe (pty-chi's, times N), and the kept
check's probe is returned beside the object (``info["probe_best"]``; the
reconstruction file holds the object only). The object of ones pty-chi
starts from is evaluated too (``free_deviance_initial``) but is no
candidate.

The object is initialised to ones (never the ground truth), every row of the
view is used, and torch is seeded (``torch.manual_seed`` and pty-chi's
``random_seed``, which also seeds numpy and ``random``).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from ptycho_core.config import PtyChiConfig, StoppingConfig
from ptycho_core.io.datasets import DiffractionSet
from ptycho_core.physics.forward import SHIFT_MARGIN, expected_counts, extract_patches
from ptycho_core.recon.stitch import MIN_WEIGHT, illuminated
from ptycho_core.sampling.free_pixels import free_pixel_mask, improvement, pattern_deviance
from ptycho_core.streams import forward_check_entropy, free_pixel_entropy

log = logging.getLogger(__name__)

__all__ = [
    "BUFFER_MARGIN",
    "FORWARD_CHECK_TOLERANCE",
    "FORWARD_CHECK_TOLERANCE_INTEGER",
    "ObjectBuffer",
    "buffer_to_frame",
    "forward_model_check",
    "from_ptychi_positions",
    "object_deviances",
    "pattern_deviances",
    "object_buffer",
    "ptychi_origin",
    "ptychi_patch_rows",
    "ptychi_probe",
    "reconstruct_ptychi",
    "returned_object",
    "to_ptychi_positions",
]

#: Pixels between the outermost patch edge and the buffer edge. pty-chi
#: crops one extra pixel per side for its subpixel shift; the forward-model
#: check extracts our own patches from the buffer, which needs SHIFT_MARGIN.
BUFFER_MARGIN = SHIFT_MARGIN + 2

#: The largest relative differences (max |I_ptychi - I_ours| / max I_ours) the
#: forward-model check accepts, at whole-pixel positions (no interpolation:
#: float32 rounding only) and at the real subpixel ones (the two Fourier
#: shifts crop the object differently, so they differ near the patch edges).
FORWARD_CHECK_TOLERANCE_INTEGER = 1e-4
FORWARD_CHECK_TOLERANCE = 5e-2

#: pty-chi keeps positions in float32: after the round trip through it they
#: agree with ours to ~1e-6 px; more than this means they were moved.
POSITION_TOLERANCE_PX = 1e-3


def probe_scale(N: int) -> float:
    """Factor from our probe to pty-chi's: 1/N (our intensity has the extra 1/N^2)."""
    return 1.0 / N


# --------------------------------------------------------------------------
# Pure-numpy conventions (tested without torch)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectBuffer:
    """pty-chi's object buffer as a crop of our frame.

    Buffer pixel ``[i, j]`` is our object pixel ``[row0 + i, col0 + j]``
    (which may lie outside our frame: the buffer is not clipped to it).
    """

    row0: int
    col0: int
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)


def ptychi_origin(shape: tuple[int, int]) -> np.ndarray:
    """pty-chi's ``SUPPORT`` position origin in buffer pixels, (y, x): ``round(shape/2) - 0.5``.

    numpy's round is half-to-even, as torch's; :func:`object_buffer` makes
    both sides even so no tie arises.
    """
    return np.round(np.asarray(shape, dtype=np.float64) / 2.0) - 0.5


def object_buffer(xcoords: np.ndarray, ycoords: np.ndarray, N: int, margin: int = BUFFER_MARGIN) -> ObjectBuffer:
    """The smallest even-sided buffer holding every N x N patch plus ``margin`` pixels."""
    xcoords, ycoords = np.asarray(xcoords, float), np.asarray(ycoords, float)
    half = N // 2

    def span(c: np.ndarray) -> tuple[int, int]:
        lo = int(np.floor(c.min())) - half - margin
        hi = int(np.ceil(c.max())) + half + margin  # inclusive
        size = hi - lo + 1
        return lo, size + (size % 2)

    row0, height = span(ycoords)
    col0, width = span(xcoords)
    return ObjectBuffer(row0, col0, height, width)


def to_ptychi_positions(
    xcoords: np.ndarray, ycoords: np.ndarray, buffer: ObjectBuffer
) -> tuple[np.ndarray, np.ndarray]:
    """Our (x, y) object pixels -> pty-chi's (pos_y, pos_x) about the buffer's ``SUPPORT`` origin."""
    oy, ox = ptychi_origin(buffer.shape)
    pos_y = np.asarray(ycoords, dtype=np.float64) - buffer.row0 - 0.5 - oy
    pos_x = np.asarray(xcoords, dtype=np.float64) - buffer.col0 - 0.5 - ox
    return pos_y, pos_x


def from_ptychi_positions(pos_y: np.ndarray, pos_x: np.ndarray, buffer: ObjectBuffer) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`to_ptychi_positions`: returns our (x, y)."""
    oy, ox = ptychi_origin(buffer.shape)
    x = np.asarray(pos_x, dtype=np.float64) + buffer.col0 + 0.5 + ox
    y = np.asarray(pos_y, dtype=np.float64) + buffer.row0 + 0.5 + oy
    return x, y


def ptychi_patch_rows(pos: np.ndarray, N: int, buffer_len: int) -> np.ndarray:
    """Buffer coordinates (along one axis) that pty-chi's patch at ``pos`` samples: (n, N).

    pty-chi 2.2.0 (``image_proc.extract_patches_fourier_shift``): the patch
    centred at buffer position ``p = pos + origin`` samples ``p - (N-1)/2 + i``.
    """
    origin = np.round(buffer_len / 2.0) - 0.5
    return (np.asarray(pos, float)[:, None] + origin) - (N - 1) / 2.0 + np.arange(N)[None, :]


def buffer_to_frame(
    buffer_obj: np.ndarray, buffer: ObjectBuffer, frame_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Paste the (Hb, Wb) buffer into a zero (H, W) frame at (row0, col0).

    Returns (object complex128, mask of the frame pixels the buffer covers).
    """
    H, W = (int(s) for s in frame_shape)
    if buffer_obj.shape != buffer.shape:
        raise ValueError(f"buffer object: expected shape {buffer.shape}, found {buffer_obj.shape}")
    out = np.zeros((H, W), dtype=np.complex128)
    inside = np.zeros((H, W), dtype=bool)
    r_lo, r_hi = max(buffer.row0, 0), min(buffer.row0 + buffer.height, H)
    c_lo, c_hi = max(buffer.col0, 0), min(buffer.col0 + buffer.width, W)
    if r_lo < r_hi and c_lo < c_hi:
        out[r_lo:r_hi, c_lo:c_hi] = buffer_obj[
            r_lo - buffer.row0 : r_hi - buffer.row0, c_lo - buffer.col0 : c_hi - buffer.col0
        ]
        inside[r_lo:r_hi, c_lo:c_hi] = True
    return out, inside


def ptychi_probe(probe: np.ndarray) -> np.ndarray:
    """Our (N, N) probe in sqrt(photons) -> pty-chi's (1, 1, N, N) complex64 probe, scaled by 1/N."""
    probe = np.asarray(probe)
    N = probe.shape[-1]
    return (probe.astype(np.complex128) * probe_scale(N)).astype(np.complex64)[None, None]


def returned_object(
    buffer_obj: np.ndarray, buffer: ObjectBuffer, frame_shape: tuple[int, int], covered: np.ndarray
) -> np.ndarray:
    """The object as :func:`reconstruct_ptychi` returns it and its step saves it: the buffer pasted onto our
    frame, 0 outside ``covered``, rounded to complex64 (held as complex128, so exactly the saved values)."""
    obj, _ = buffer_to_frame(np.asarray(buffer_obj), buffer, frame_shape)
    obj[~np.asarray(covered, dtype=bool)] = 0.0
    return obj.astype(np.complex64).astype(np.complex128)


def pattern_deviances(
    obj: np.ndarray,
    probe: np.ndarray,
    xcoords: np.ndarray,
    ycoords: np.ndarray,
    counts: np.ndarray,
    free: np.ndarray,
    chunk: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """(free, fitted), each (n,): per pattern of ``counts`` (n, N, N), the mean Poisson deviance of the free pixels
    ``free`` (N, N) and of the other (fitted) pixels, under OUR forward model of ``obj`` on our frame
    (``expected_counts(probe, extract_patches(obj, x, y, N))``); in chunks of ``chunk`` patterns."""
    free = np.asarray(free, dtype=bool)
    N = free.shape[-1]
    probe = np.asarray(probe, dtype=np.complex128)
    xcoords, ycoords = np.asarray(xcoords, np.float64), np.asarray(ycoords, np.float64)
    n = xcoords.size
    if counts.shape != (n, N, N):
        raise ValueError(f"deviances: expected counts of shape {(n, N, N)}, found {counts.shape}")
    out = np.empty((2, n))
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        expected = expected_counts(probe, extract_patches(obj, xcoords[sl], ycoords[sl], N))
        out[0, sl], out[1, sl] = (
            pattern_deviance(counts[sl], expected, free),
            pattern_deviance(counts[sl], expected, ~free),
        )
    return out[0], out[1]


def object_deviances(
    obj: np.ndarray,
    probe: np.ndarray,
    xcoords: np.ndarray,
    ycoords: np.ndarray,
    counts: np.ndarray,
    free: np.ndarray,
    chunk: int = 512,
) -> tuple[float, float]:
    """(free, fitted): the means over the patterns of :func:`pattern_deviances`."""
    free_dev, fitted = pattern_deviances(obj, probe, xcoords, ycoords, counts, free, chunk)
    return float(np.mean(free_dev)), float(np.mean(fitted))


# --------------------------------------------------------------------------
# pty-chi (torch imported lazily)
# --------------------------------------------------------------------------


def _device():
    import torch
    from ptychi import api

    if torch.cuda.is_available():
        return api.Devices.GPU, "cuda"
    return api.Devices.CPU, "cpu"


def _lsqml_options(cfg: PtyChiConfig, seed: int, epochs: int | None = None):
    """LSQML options of this arm (see the module docstring for each choice)."""
    from ptychi import api

    device, _ = _device()
    opts = api.LSQMLOptions()
    opts.data_options.fft_shift = True  # our data have DC at [N/2, N/2]
    rec = opts.reconstructor_options
    rec.num_epochs = int(cfg.epochs if epochs is None else epochs)
    rec.batch_size = int(cfg.batch_size)
    rec.noise_model = {"gaussian": api.NoiseModels.GAUSSIAN, "poisson": api.NoiseModels.POISSON}[cfg.noise_model]
    rec.default_device = device
    rec.random_seed = int(seed)
    rec.rescale_probe_intensity_in_first_epoch = False
    opts.object_options.optimizable = True
    opts.object_options.pixel_size_m = 1.0
    opts.object_options.determine_position_origin_coords_by = api.ObjectPosOriginCoordsMethods.SUPPORT
    opts.object_options.remove_object_probe_ambiguity.enabled = False
    opts.probe_options.optimizable = bool(cfg.probe_refinement)
    opts.probe_position_options.optimizable = False
    opts.opr_mode_weight_options.optimizable = False
    return opts


def _build_task(
    opts,
    counts: np.ndarray,
    object_init: np.ndarray,
    probe: np.ndarray,
    pos_y: np.ndarray,
    pos_x: np.ndarray,
    valid_pixel_mask: np.ndarray | None = None,
):
    """pty-chi's task; ``valid_pixel_mask`` (N, N) bool, True = fitted, in OUR convention (pty-chi fftshifts it
    with the patterns)."""
    from ptychi.api.task import PtychographyTask

    kwargs = {} if valid_pixel_mask is None else {"valid_pixel_mask": np.asarray(valid_pixel_mask, dtype=bool)}
    return PtychographyTask(
        opts,
        **kwargs,
        diffraction_data=np.ascontiguousarray(counts, dtype=np.float32),
        object_data=np.ascontiguousarray(object_init, dtype=np.complex64)[None],
        probe_data=ptychi_probe(probe),
        probe_position_x_px=np.asarray(pos_x, dtype=np.float64),
        probe_position_y_px=np.asarray(pos_y, dtype=np.float64),
    )


def _check_origin(task, buffer: ObjectBuffer) -> None:
    got = task.object.pos_origin_coords.detach().cpu().numpy().astype(float)
    want = ptychi_origin(buffer.shape)
    if not np.allclose(got, want):
        raise RuntimeError(f"pty-chi's position origin {got.tolist()} differs from the assumed {want.tolist()}")


def _check_pixel_mask(task, counts: np.ndarray, free: np.ndarray) -> dict:
    """The pixels pty-chi leaves out of its fit are our free pixels, holding our counts.

    pty-chi's dataset holds the patterns and the valid-pixel mask fftshifted
    alike (``fft_shift=True``); shifted back, the mask must be ``~free`` and
    the patterns our counts, pixel for pixel, so that the pixel under each
    False of the mask is a free pixel of ours. The noise model's copy of the
    mask (the one that zeroes the gradient) must equal the dataset's.
    """
    dataset_mask = task.dataset.valid_pixel_mask.detach().cpu().numpy()
    model_mask = task.reconstructor.noise_model.valid_pixel_mask.detach().cpu().numpy()
    patterns = task.dataset.patterns.detach().cpu().numpy()
    mask_back = np.fft.ifftshift(dataset_mask, axes=(-2, -1))
    patterns_back = np.fft.ifftshift(patterns, axes=(-2, -1))
    result = {
        "mask_is_not_free": bool(np.array_equal(mask_back, ~free)),
        "noise_model_mask_equal": bool(np.array_equal(model_mask, dataset_mask)),
        "patterns_are_counts": bool(np.array_equal(patterns_back, counts.astype(np.float32))),
        "held_out_counts": float(patterns[:, ~dataset_mask].astype(np.float64).sum()),
        "free_pixel_counts": float(counts[:, free].sum()),
    }
    if not (
        result["mask_is_not_free"]
        and result["noise_model_mask_equal"]
        and result["patterns_are_counts"]
        and result["held_out_counts"] == result["free_pixel_counts"]
    ):
        raise RuntimeError(f"pty-chi's valid-pixel mask does not hold out our free pixels: {result}")
    return result


def _preconditioner_from_fitted_pixels(task) -> float:
    """Initialise pty-chi's object preconditioner from the fitted pixels only; returns pty-chi's probe
    renormalisation factor.

    pty-chi 2.2.0 initialises the preconditioner, before the first epoch,
    from the probe renormalised by ``sqrt(1 / max_i mean(pattern_i))``
    (``Object.initialize_preconditioner``, ``utils.get_probe_renormalization_factor``):
    a statistic of every pixel, free ones included, which sets the scale of
    every object update (the step sizes almost, not exactly, compensate).
    This does what its first pre-epoch hook would (``update_preconditioner``:
    initialise, then average with the illumination map), with the free pixels
    of the patterns set to 0; the later updates (every epoch up to the tenth,
    then every tenth) use the probe alone and are pty-chi's own.
    """
    import torch
    from ptychi.utils import get_probe_renormalization_factor

    pg = task.reconstructor.parameter_group
    if pg.object.preconditioner is not None:
        raise RuntimeError("pty-chi's object preconditioner already exists before the first epoch")
    with torch.no_grad():
        dataset = task.dataset
        fitted = dataset.patterns * dataset.valid_pixel_mask.to(dataset.patterns.device)
        pg.object.update_preconditioner(
            probe=pg.probe,
            probe_positions=pg.probe_positions,
            patterns=fitted,
            use_all_modes=pg.object.options.build_preconditioner_with_all_modes,
        )
    return float(get_probe_renormalization_factor(fitted))


def forward_model_check(
    xcoords: np.ndarray, ycoords: np.ndarray, probe: np.ndarray, cfg: PtyChiConfig, seed: int, n_max: int = 32
) -> dict:
    """Compare pty-chi's forward model with ours on a smooth random test object.

    The test object (seeded, never the ground truth) lives on a buffer built
    as for the reconstruction; up to ``n_max`` of the positions are used,
    once rounded to whole pixels (no interpolation on either side: any
    difference is a convention error) and once as they are (the two
    subpixel Fourier shifts crop the object differently, so they differ
    slightly near the patch edges). Our expected counts
    ``|fftshift(fft2(P O))|^2 / N^2`` are handed to pty-chi as data (so its
    ``fft_shift`` runs on them) and compared with the intensities pty-chi
    predicts from its own buffer, probe and positions: this checks the data
    orientation, the probe scale and the position convention at once.
    Returns the relative differences max |I_ptychi - I_ours| / max I_ours.
    """
    import torch
    from scipy.ndimage import gaussian_filter

    N = probe.shape[-1]
    sel = np.linspace(0, len(xcoords) - 1, min(n_max, len(xcoords))).round().astype(int)
    result: dict = {"n_positions": int(sel.size)}
    for label, rounded in (("integer", True), ("subpixel", False)):
        xs, ys = np.asarray(xcoords, float)[sel], np.asarray(ycoords, float)[sel]
        if rounded:
            xs, ys = np.round(xs), np.round(ys)
        buffer = object_buffer(xs, ys, N)
        rng = np.random.default_rng(forward_check_entropy(seed))
        phase = gaussian_filter(rng.normal(size=buffer.shape), 3.0)
        amp = gaussian_filter(rng.random(buffer.shape), 3.0)
        test_obj = (0.5 + 0.5 * (amp - amp.min()) / np.ptp(amp)) * np.exp(1j * phase / phase.std())
        ours = expected_counts(
            np.asarray(probe, np.complex128), extract_patches(test_obj, xs - buffer.col0, ys - buffer.row0, N)
        )
        pos_y, pos_x = to_ptychi_positions(xs, ys, buffer)
        task = _build_task(_lsqml_options(cfg, seed, epochs=1), ours, test_obj, probe, pos_y, pos_x)
        _check_origin(task, buffer)
        with torch.no_grad():
            pred = task.reconstructor.forward_model(torch.arange(len(xs))).detach().cpu().numpy().astype(np.float64)
            data = task.dataset.patterns.detach().cpu().numpy().astype(np.float64)
        del task
        pred = np.fft.fftshift(pred, axes=(-2, -1))
        data = np.fft.fftshift(data, axes=(-2, -1))
        result[f"{label}_max_relative_difference"] = float(np.abs(pred - ours).max() / ours.max())
        result[f"{label}_total_intensity_ratio"] = float(pred.sum() / ours.sum())
        result[f"{label}_data_round_trip_max_relative_difference"] = float(np.abs(data - ours).max() / ours.max())
    return result


def _forward_check_passes(check: dict) -> bool:
    return (
        check["integer_max_relative_difference"] <= FORWARD_CHECK_TOLERANCE_INTEGER
        and check["subpixel_max_relative_difference"] <= FORWARD_CHECK_TOLERANCE
        and check["integer_data_round_trip_max_relative_difference"] <= 1e-5
    )


def reconstruct_ptychi(
    test: DiffractionSet,
    rows: np.ndarray,
    frame_shape: tuple[int, int],
    cfg: PtyChiConfig,
    seed: int,
    threads: int | None = None,
    *,
    stopping: StoppingConfig,
    free_pixel_seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Reconstruct the object from the patterns ``rows`` of ``test`` with pty-chi LSQML, stopped by the free pixels.

    Args:
        test: the test split (counts, positions, the known probe in sqrt(photons)).
        rows: rows of ``test`` to use (a view's ``test_index``); all of them are used.
        frame_shape: (H, W) of the ground-truth frame the result is placed on.
        cfg: the epoch cap, batch size, noise model, probe refinement.
        seed: seeds torch (and pty-chi's numpy and random draws).
        threads: torch intra-op threads (None: torch's default).
        stopping: the free-pixel rule (module docstring).
        free_pixel_seed: the replicate seed the free-pixel mask is drawn from (the mask PtychoPINN_TTR holds out
            for the same replicate); ``seed`` when not given.

    Returns:
        (object (H, W) complex128 on our frame, the best check's, 0 outside ``covered``, exactly representable
        in complex64; covered (H, W) bool; info dict with timings, losses, the stopping record and checks;
        ``info["probe_best"]`` is the best check's probe in our convention, an array, not for JSON).
    """
    import torch

    t_total = time.perf_counter()
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or rows.size == 0:
        raise ValueError(f"rows: expected a non-empty 1-D index array, found shape {rows.shape}")
    if np.unique(rows).size != rows.size:
        raise ValueError("rows: repeated rows")
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(int(seed))
    device_enum, device_name = _device()
    N = test.N
    xs, ys = test.xcoords[rows].astype(np.float64), test.ycoords[rows].astype(np.float64)
    counts = test.counts()[rows]
    probe = np.asarray(test.probe, dtype=np.complex128)
    cap = int(cfg.epochs)
    check_every = int(stopping.check_every)
    patience_checks = math.ceil(int(stopping.patience) / check_every)
    mask_seed = int(seed if free_pixel_seed is None else free_pixel_seed)
    free = free_pixel_mask(N, float(stopping.free_pixel_fraction), mask_seed)

    check = forward_model_check(xs, ys, probe, cfg, seed)
    log.info("forward-model check against ptycho_core.physics.forward: %s", json.dumps(check))
    if not _forward_check_passes(check):
        raise RuntimeError(f"pty-chi's forward model does not reproduce ours: {check}")

    buffer = object_buffer(xs, ys, N)
    pos_y, pos_x = to_ptychi_positions(xs, ys, buffer)
    _, inside = buffer_to_frame(np.zeros(buffer.shape, dtype=np.complex128), buffer, frame_shape)
    covered = illuminated(np.column_stack([xs, ys]), probe, frame_shape) & inside
    torch.manual_seed(int(seed))
    opts = _lsqml_options(cfg, seed)
    init = np.ones(buffer.shape, dtype=np.complex64)
    task = _build_task(opts, counts, init, probe, pos_y, pos_x, valid_pixel_mask=~free)
    _check_origin(task, buffer)
    mask_check = _check_pixel_mask(task, counts, free)
    mask_check["preconditioner_renormalisation_from_fitted_pixels"] = _preconditioner_from_fitted_pixels(task)
    probe_before = task.get_data_to_cpu("probe", as_numpy=True).copy()
    log.info(
        "pty-chi LSQML: %d patterns, N=%d, buffer %s at our pixel (row %d, col %d), at most %d epochs, batch %d, "
        "%s noise, probe %s, device %s, %d threads; %d free pixels held out, free deviance checked every %d "
        "epochs, stop after %d checks without a gain of %g standard errors",
        rows.size,
        N,
        buffer.shape,
        buffer.row0,
        buffer.col0,
        cap,
        cfg.batch_size,
        cfg.noise_model,
        "refined" if cfg.probe_refinement else "fixed",
        device_name,
        torch.get_num_threads(),
        int(free.sum()),
        check_every,
        patience_checks,
        stopping.standard_errors,
    )

    t0 = time.perf_counter()
    initial_free, initial_fitted = object_deviances(
        returned_object(init, buffer, frame_shape, covered), probe, xs, ys, counts, free
    )
    check_seconds = time.perf_counter() - t0

    history: list[dict] = []
    reference: float | None = None  # the last check that improved, and its per-pattern free deviances
    reference_units: np.ndarray | None = None
    best: float | None = None  # the kept check (returned)
    reference_epoch, best_epoch, wait, converged = 0, 0, 0, False
    best_buffer = best_probe = None
    lsqml_seconds, first_epoch_seconds, done = 0.0, 0.0, 0
    while done < cap:
        n = min(check_every, cap - done)
        t0 = time.perf_counter()
        if done == 0:
            # The first epoch is timed on its own, so that a one-off start-up cost is not spread over the
            # per-epoch figure (on a quiet 2-core CPU, 576 patterns at N = 32: 0.10 s for the first epoch,
            # 0.088 s for each later one).
            task.run(n_epochs=1)
            first_epoch_seconds = time.perf_counter() - t0
            if n > 1:
                task.run(n_epochs=n - 1, reset_timer_globals=False)
        else:
            task.run(n_epochs=n, reset_timer_globals=False)
        lsqml_seconds += time.perf_counter() - t0
        done += n

        t0 = time.perf_counter()
        buffer_obj = task.get_data_to_cpu("object", as_numpy=True)[0].astype(np.complex128)
        probe_now = probe
        if cfg.probe_refinement:  # the refined probe, back in our convention
            probe_now = task.get_data_to_cpu("probe", as_numpy=True)[0, 0].astype(np.complex128) / probe_scale(N)
        free_units, fitted_units = pattern_deviances(
            returned_object(buffer_obj, buffer, frame_shape, covered), probe_now, xs, ys, counts, free
        )
        free_dev, fitted_dev = float(np.mean(free_units)), float(np.mean(fitted_units))
        step = improvement(free_units, reference_units, stopping.standard_errors)
        if step.improved:  # a new reference: the free pixels say this object fits them better
            reference, reference_units, reference_epoch, wait = free_dev, free_units, done, 0
        else:
            wait += 1
        # kept: the reference, or a later object the free pixels cannot tell from it (LSQML's own further iterates)
        kept = step.improved or (step.gain is not None and step.gain >= -stopping.standard_errors * step.standard_error)
        if kept:
            best, best_epoch, best_buffer, best_probe = free_dev, done, buffer_obj.copy(), probe_now.copy()
        check_seconds += time.perf_counter() - t0
        history.append(
            {
                "epoch": done,
                "free_deviance": free_dev,
                "fitted_deviance": fitted_dev,
                "free_gain": step.gain,
                "free_gain_se": step.standard_error,
                "improved": step.improved,
                "kept": kept,
            }
        )
        log.info(
            "epoch %d: free deviance %.6g, fitted deviance %.6g, gain on the reference %s%s",
            done,
            free_dev,
            fitted_dev,
            "-" if step.gain is None else f"{step.gain:.3g} +- {step.standard_error:.2g}",
            " (new reference, kept)"
            if step.improved
            else f" ({'kept; ' if kept else ''}{wait} checks without improvement)",
        )
        if wait >= patience_checks:
            converged = True
            break
    recon_seconds = lsqml_seconds + check_seconds
    if best_buffer is None:
        raise RuntimeError(f"pty-chi: no finite free deviance in {done} epochs: {history}")

    probe_after = task.get_data_to_cpu("probe", as_numpy=True)
    table = task.reconstructor.loss_tracker.table
    losses = [float(v) for v in table["loss"].to_numpy()]
    positions_after = task.get_data_to_cpu("probe_positions", as_numpy=True).astype(np.float64)
    x_back, y_back = from_ptychi_positions(positions_after[:, 0], positions_after[:, 1], buffer)

    obj = returned_object(best_buffer, buffer, frame_shape, covered)
    best_row = next(h for h in history if h["epoch"] == best_epoch)
    probe_change = float(np.abs(probe_after - probe_before).max() / np.abs(probe_before).max())
    epochs_run = len(losses)
    info = {
        "engine": "LSQML",
        "ptychi_version": importlib.metadata.version("ptychi"),
        "torch_version": torch.__version__,
        "ptychi_options": {
            "num_epochs": cap,
            "batch_size": int(cfg.batch_size),
            "noise_model": cfg.noise_model,
            "probe_optimizable": bool(cfg.probe_refinement),
            "rescale_probe_intensity_in_first_epoch": False,
            "remove_object_probe_ambiguity": False,
            "fft_shift": True,
            "determine_position_origin_coords_by": "SUPPORT",
            "random_seed": int(seed),
            "default_device": str(device_enum),
            "valid_pixel_mask": "~free pixels (our convention; pty-chi fftshifts it with the patterns)",
        },
        "device": device_name,
        "torch_threads": int(torch.get_num_threads()),
        # what pty-chi held, read back from its task (not the count we handed it)
        "n_patterns_held": int(positions_after.shape[0]),
        "N": int(N),
        "probe_scale": probe_scale(N),
        "buffer": {
            "row0": buffer.row0,
            "col0": buffer.col0,
            "shape": list(buffer.shape),
            "origin_yx": ptychi_origin(buffer.shape).tolist(),
        },
        "covered_min_illumination": MIN_WEIGHT,
        "covered_pixels": int(covered.sum()),
        "stopping": {
            "rule": "free pixels: mean Poisson deviance of the held-out pixels (ptycho_core.sampling.free_pixels)",
            "free_pixel_fraction": float(stopping.free_pixel_fraction),
            "n_free_pixels": int(free.sum()),
            "free_pixel_stream": free_pixel_entropy(mask_seed),
            "standard_errors": float(stopping.standard_errors),
            "patience_epochs": int(stopping.patience),
            "check_every": check_every,
            "patience_checks": patience_checks,
            "epoch_cap": cap,
        },
        "free_deviance_initial": initial_free,
        "fitted_deviance_initial": initial_fitted,
        "free_deviance_history": history,
        "free_deviance_first": history[0]["free_deviance"],
        "free_deviance_best": float(best),
        "free_deviance_reference": float(reference),
        "reference_epoch": int(reference_epoch),
        "fitted_deviance_at_best": best_row["fitted_deviance"],
        "best_epoch": int(best_epoch),
        "epochs_run": epochs_run,
        "converged": bool(converged),
        "stopped_by_free_deviance": bool(converged),
        "pixel_mask_check": mask_check,
        # with the probe fixed, the known probe (the array test.probe); with refinement, the best check's
        "probe_best": best_probe,
        "reconstruction_seconds": recon_seconds,
        "lsqml_seconds": lsqml_seconds,
        "free_deviance_seconds": check_seconds,
        "seconds_per_epoch": lsqml_seconds / max(epochs_run, 1),
        "first_epoch_seconds": first_epoch_seconds,
        "seconds_per_epoch_after_first": (lsqml_seconds - first_epoch_seconds) / (epochs_run - 1)
        if epochs_run > 1
        else None,
        "loss_function": "pty-chi displayed loss (MSE of sqrt intensities, every pixel, free ones included)",
        "initial_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "loss_history": losses,
        "probe_max_relative_change": probe_change,
        "positions_round_trip_max_px": float(max(np.abs(x_back - xs).max(), np.abs(y_back - ys).max())),
        "forward_model_check": check,
        "total_seconds": time.perf_counter() - t_total,
    }
    if not cfg.probe_refinement and probe_change != 0.0:
        raise RuntimeError(f"the probe changed ({probe_change:.3g} relative) although it is fixed")
    if epochs_run != done:
        raise RuntimeError(f"pty-chi's loss history has {epochs_run} epochs, {done} were run")
    del task
    return obj, covered, info
