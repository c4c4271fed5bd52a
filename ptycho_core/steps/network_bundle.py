"""What the ``train`` and ``refine`` steps share: the sidecar's data record and writing a verified bundle.

A bundle (:mod:`ptycho_core.nn.bundle`) is saved, reloaded in safe mode and
must reproduce the in-memory predictions on a fixed batch; then its loss
history (CSV) and curve (figure) are written beside it
(:class:`ptycho_core.layout.BundleFiles`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ptycho_core.config import StudyConfig
from ptycho_core.figures.training import loss_figure
from ptycho_core.io.npz import atomic_write_text
from ptycho_core.io.sentinel import provenance, sha256_file
from ptycho_core.layout import BundleFiles, Cell

__all__ = ["data_record", "write_bundle"]


def data_record(study: StudyConfig, cell: Cell, **files: str | Path) -> dict:
    """The sidecar's ``data`` entry: the cell (dose in photons) and each data file read, with its sha256."""
    return {
        "dose": cell.photons(study),
        "view": cell.view,
        "seed": int(cell.seed),
        **{name: {"path": str(path), "sha256": sha256_file(path)} for name, path in files.items()},
    }


def write_bundle(
    study: StudyConfig,
    out: BundleFiles,
    model,
    sidecar: dict,
    *,
    probe_batch: np.ndarray,
    probe: np.ndarray,
    history_csv: str,
    curve: dict,
    title: str,
    xlabel: str = "epoch",
) -> float:
    """Save ``model`` with ``sidecar`` (Keras and library versions and provenance added), verify the reload on
    ``probe_batch``, then write the history CSV and the loss ``curve`` figure; returns the reload difference."""
    import keras

    from ptycho_core.nn.bundle import save_bundle, verify_reload

    N, channels = probe.shape[0], probe_batch.shape[-1]
    full = {
        **sidecar,
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "provenance": provenance(study),
    }
    save_bundle(out.model, out.sidecar, model, full)
    diff = verify_reload(model, out.model, out.sidecar, probe_batch, N=N, channels=channels, probe=probe)
    atomic_write_text(out.history, history_csv)
    loss_figure(out.figure, curve, title, xlabel)
    return diff
