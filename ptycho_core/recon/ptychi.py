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

The object is initialised to ones (never the ground truth), every row of the
view is used, and torch is seeded (``torch.manual_seed`` and pty-chi's
``random_seed``, which also seeds numpy and ``random``).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import time
from dataclasses import dataclass

import numpy as np

from ptycho_core.config import PtyChiConfig
from ptycho_core.io.datasets import DiffractionSet
from ptycho_core.physics.forward import SHIFT_MARGIN, expected_counts, extract_patches
from ptycho_core.recon.stitch import MIN_WEIGHT, illuminated
from ptycho_core.streams import forward_check_entropy

log = logging.getLogger(__name__)

__all__ = [
    "BUFFER_MARGIN",
    "FORWARD_CHECK_TOLERANCE",
    "FORWARD_CHECK_TOLERANCE_INTEGER",
    "ObjectBuffer",
    "buffer_to_frame",
    "forward_model_check",
    "from_ptychi_positions",
    "object_buffer",
    "ptychi_origin",
    "ptychi_patch_rows",
    "ptychi_probe",
    "reconstruct_ptychi",
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
    opts, counts: np.ndarray, object_init: np.ndarray, probe: np.ndarray, pos_y: np.ndarray, pos_x: np.ndarray
):
    from ptychi.api.task import PtychographyTask

    return PtychographyTask(
        opts,
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
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Reconstruct the object from the patterns ``rows`` of ``test`` with pty-chi LSQML.

    Args:
        test: the test split (counts, positions, the known probe in sqrt(photons)).
        rows: rows of ``test`` to use (a view's ``test_index``); all of them are used.
        frame_shape: (H, W) of the ground-truth frame the result is placed on.
        cfg: epochs, batch size, noise model, probe refinement.
        seed: seeds torch (and pty-chi's numpy and random draws).
        threads: torch intra-op threads (None: torch's default).

    Returns:
        (object (H, W) complex128 on our frame, 0 outside ``covered``;
        covered (H, W) bool; info dict with timings, losses and checks).
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

    check = forward_model_check(xs, ys, probe, cfg, seed)
    log.info("forward-model check against ptycho_core.physics.forward: %s", json.dumps(check))
    if not _forward_check_passes(check):
        raise RuntimeError(f"pty-chi's forward model does not reproduce ours: {check}")

    buffer = object_buffer(xs, ys, N)
    pos_y, pos_x = to_ptychi_positions(xs, ys, buffer)
    torch.manual_seed(int(seed))
    opts = _lsqml_options(cfg, seed)
    task = _build_task(opts, counts, np.ones(buffer.shape, dtype=np.complex64), probe, pos_y, pos_x)
    _check_origin(task, buffer)
    probe_before = task.get_data_to_cpu("probe", as_numpy=True).copy()
    log.info(
        "pty-chi LSQML: %d patterns, N=%d, buffer %s at our pixel (row %d, col %d), %d epochs, batch %d, %s noise, "
        "probe %s, device %s, %d threads",
        rows.size,
        N,
        buffer.shape,
        buffer.row0,
        buffer.col0,
        cfg.epochs,
        cfg.batch_size,
        cfg.noise_model,
        "refined" if cfg.probe_refinement else "fixed",
        device_name,
        torch.get_num_threads(),
    )
    # The first epoch is timed on its own, so that a one-off start-up cost is
    # not spread over the per-epoch figure (on a quiet 2-core CPU, 576
    # patterns at N = 32: 0.10 s for the first epoch, 0.088 s for each later one).
    t0 = time.perf_counter()
    task.run(n_epochs=1)
    first_epoch_seconds = time.perf_counter() - t0
    if cfg.epochs > 1:
        task.run(n_epochs=int(cfg.epochs) - 1, reset_timer_globals=False)
    recon_seconds = time.perf_counter() - t0

    buffer_obj = task.get_data_to_cpu("object", as_numpy=True)[0].astype(np.complex128)
    probe_after = task.get_data_to_cpu("probe", as_numpy=True)
    table = task.reconstructor.loss_tracker.table
    losses = [float(v) for v in table["loss"].to_numpy()]
    positions_after = task.get_data_to_cpu("probe_positions", as_numpy=True).astype(np.float64)
    x_back, y_back = from_ptychi_positions(positions_after[:, 0], positions_after[:, 1], buffer)

    obj, inside = buffer_to_frame(buffer_obj, buffer, frame_shape)
    covered = illuminated(np.column_stack([xs, ys]), probe, frame_shape) & inside
    obj[~covered] = 0.0
    probe_change = float(np.abs(probe_after - probe_before).max() / np.abs(probe_before).max())
    info = {
        "engine": "LSQML",
        "ptychi_version": importlib.metadata.version("ptychi"),
        "torch_version": torch.__version__,
        "ptychi_options": {
            "num_epochs": int(cfg.epochs),
            "batch_size": int(cfg.batch_size),
            "noise_model": cfg.noise_model,
            "probe_optimizable": bool(cfg.probe_refinement),
            "rescale_probe_intensity_in_first_epoch": False,
            "remove_object_probe_ambiguity": False,
            "fft_shift": True,
            "determine_position_origin_coords_by": "SUPPORT",
            "random_seed": int(seed),
            "default_device": str(device_enum),
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
        "reconstruction_seconds": recon_seconds,
        "seconds_per_epoch": recon_seconds / max(int(cfg.epochs), 1),
        "first_epoch_seconds": first_epoch_seconds,
        "seconds_per_epoch_after_first": (recon_seconds - first_epoch_seconds) / (int(cfg.epochs) - 1)
        if cfg.epochs > 1
        else None,
        "epochs_run": len(losses),
        "loss_function": "pty-chi displayed loss (MSE of sqrt intensities)",
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
    del task
    return obj, covered, info
