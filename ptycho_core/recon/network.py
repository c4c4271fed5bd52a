"""Network inference and stitching: from a trained model to one object on the ground-truth frame.

The model's predictions of the view's test groups (PtychoPINN) or rows
(Baseline) are brought to one gauge (:mod:`ptycho_core.recon.gauge`) and
stitched with probe weights (:mod:`ptycho_core.recon.stitch`); docs/DESIGN.md
section 7b. No Keras import: the model is anything with a Keras-style
``predict``.
"""

from __future__ import annotations

import numpy as np

from ptycho_core.io.datasets import DiffractionSet
from ptycho_core.io.view_index import ViewIndex
from ptycho_core.recon.gauge import apply_offsets, synchronise
from ptycho_core.recon.stitch import probe_window, stitch_patches, taper_window

__all__ = ["STITCHING", "predict_and_stitch", "predict_patches"]

#: How the network arms' patches become one object (recorded in every reconstruction).
STITCHING = (
    "each unit's constant phase (PtychoPINN: a group, Baseline: a patch) solved by angular synchronisation "
    "over the probe-weighted overlaps (ptycho_core.recon.gauge), then the |P|^2-weighted average "
    "sum |P|^2 O / sum |P|^2 of the N/2 x N/2 support patches at their scan positions"
)


def predict_patches(
    model, channels: int, test: DiffractionSet, view: ViewIndex, chunk: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Chunked prediction from NumPy storage of the view's test groups (rows for one channel).

    Returns the complex support patches (n, N/2, N/2) complex64 and the
    group (unit) index of each; at most ``chunk`` groups are handed to the
    model at once.
    """
    groups = view.test_groups if channels > 1 else view.test_index[:, None]
    if groups.shape[1] != channels:
        raise ValueError(f"{channels}-channel model, but the view's test groups have {groups.shape[1]} members")
    n2 = test.N // 2
    out = np.empty((groups.size, n2, n2), dtype=np.complex64)
    for start in range(0, groups.shape[0], chunk):
        g = groups[start : start + chunk]
        amp, phase = (
            np.asarray(a, dtype=np.float64)
            for a in model.predict(np.moveaxis(test.diffraction[g], 1, -1), batch_size=64, verbose=0)
        )
        out[start * channels : (start + g.shape[0]) * channels] = np.moveaxis(amp * np.exp(1j * phase), -1, 1).reshape(
            -1, n2, n2
        )
    return out, groups


def predict_and_stitch(
    model,
    channels: int,
    test: DiffractionSet,
    view: ViewIndex,
    shape: tuple[int, int],
    chunk: int = 512,
    gauge: bool = True,
    weights: str = "probe",
):
    """Predict the view's test groups, bring them to one gauge, stitch with probe weights.

    Prediction is chunked; the synchronisation needs every patch of the test
    region at once, so they are held (n x (N/2)^2 complex64).

    ``gauge=False`` and ``weights="taper"`` (the flat raised-cosine window of
    the whole support) exist to measure what each step contributes. Returns
    the Stitched object, the number of patches predicted and the gauge
    summary (None without synchronisation).
    """
    patches, groups = predict_patches(model, channels, test, view, chunk)
    positions = np.column_stack([test.xcoords, test.ycoords])[groups.ravel()]
    if weights == "probe":
        window = probe_window(test.probe)
    elif weights == "taper":
        window = taper_window(test.N // 2)
    else:
        raise ValueError(f"stitching weights: expected 'probe' or 'taper', found {weights!r}")
    summary = None
    if gauge:
        units = np.repeat(np.arange(groups.shape[0]), groups.shape[1])
        solution = synchronise(patches, positions, window, units)
        patches = apply_offsets(patches, solution, units)
        summary = solution.summary()
    return stitch_patches(patches, positions, shape, window=window), int(groups.size), summary
