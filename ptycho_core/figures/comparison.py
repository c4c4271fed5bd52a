"""Figures that set reconstructions beside the ground truth.

:func:`comparison_figure`: one cell's methods, aligned, with error maps on
the evaluation region (rule ``score``). :func:`montage_figure`:
every dose of one view, the test region each method covers (rule
``report``).
"""

from __future__ import annotations

import numpy as np

from ptycho_core.config import StudyConfig
from ptycho_core.io.datasets import load_ground_truth
from ptycho_core.io.reconstruction import load_recon
from ptycho_core.io.records import ALIGNMENT_RECORD
from ptycho_core.methods import Method

__all__ = ["FAILED_MARK", "comparison_figure", "montage_figure"]

#: Written on a montage panel whose run failed an outcome check of its training (``refused`` in the alignment
#: record): it is shown, and scored, as produced.
FAILED_MARK = "failed run"


def _panel_size(shape: tuple[int, int], width: float = 1.6, max_height: float = 4.0) -> tuple[float, float]:
    """Inches of one image panel of ``shape`` (rows, cols): ``width`` wide, its aspect kept,
    at most ``max_height`` tall."""
    h = width * shape[0] / max(shape[1], 1)
    return (width, h) if h <= max_height else (width * max_height / h, max_height)


def comparison_figure(path, gt: np.ndarray, recons: dict, region, aligned: dict, title: str) -> None:
    """Ground truth and each method in the known frame, as scored (``aligned``), with error maps on the evaluation
    region.

    Four rows (amplitude, phase, amplitude error, phase error), one column per
    method after the ground truth's; each row one colour scale and colour bar
    (:func:`ptycho_core.figures.common.image_grid`): amplitude and phase with
    the ground truth's limits, errors symmetric about zero. The phase shown is
    angle(gt) + angle(recon conj(gt)), the branch nearest the ground truth, as
    the scores use it.
    """
    from matplotlib.figure import Figure

    from ptycho_core.figures.common import AMPLITUDE_CMAP, ERROR_CMAP, image_grid, phase_cmap, save_figure

    rs, cs = region
    g = gt[rs, cs]
    methods = list(recons)
    imgs = {m: aligned[m][rs, cs] for m in methods}
    w, h = _panel_size(g.shape)
    cols = 1 + len(methods)
    fig = Figure(figsize=(w * cols + 1.6, 4 * (h + 0.45) + 0.5), layout="constrained")
    axes = fig.subplots(4, cols, squeeze=False)
    gt_phase = np.angle(g)
    amp = [np.abs(g)] + [np.abs(imgs[m]) for m in methods]
    phase = [gt_phase] + [gt_phase + np.angle(imgs[m] * np.conj(g)) for m in methods]
    amp_err = [None] + [np.abs(imgs[m]) - np.abs(g) for m in methods]
    phase_err = [None] + [np.angle(imgs[m] * np.conj(g)) for m in methods]
    e_amp = max(1e-6, *(float(np.abs(e).max()) for e in amp_err[1:]))
    e_ph = max(1e-6, *(float(np.abs(e).max()) for e in phase_err[1:]))
    titles = ["ground truth"] + [Method.parse(m).value for m in methods]
    image_grid(
        fig,
        [axes[0]],
        [amp],
        cmap=AMPLITUDE_CMAP,
        vmin=float(amp[0].min()),
        vmax=float(amp[0].max()),
        label="amplitude",
        col_titles=titles,
    )
    image_grid(
        fig,
        [axes[1]],
        [phase],
        cmap=phase_cmap(gt_phase),
        vmin=float(gt_phase.min()),
        vmax=float(gt_phase.max()),
        label="phase (rad)",
    )
    image_grid(fig, [axes[2]], [amp_err], cmap=ERROR_CMAP, vmin=-e_amp, vmax=e_amp, label="amplitude error")
    image_grid(fig, [axes[3]], [phase_err], cmap=ERROR_CMAP, vmin=-e_ph, vmax=e_ph, label="phase error (rad)")
    fig.suptitle(f"{title}: in the known frame, as scored, evaluation region", fontsize=11)
    save_figure(fig, path)


def montage_figure(path, study: StudyConfig, view: str, seed: int, gt_path, recon_path_of, alignment_path_of) -> None:
    """Every dose of one view: ground truth and each method on the evaluation region, in the known frame, as scored.

    Two blocks side by side, amplitude and phase, each with one colour scale
    and colour bar (the ground truth's limits); rows are doses. Each
    reconstruction is phase-offset by its cell's recorded alignment
    (``alignment.json`` of the score step; no shift: every method is scored
    in the known frame), so the montage shows what the scores measured.
    A failed run (its alignment record's ``refused``) is shown as produced and
    marked :data:`FAILED_MARK`.
    """
    from matplotlib.figure import Figure

    from ptycho_core.figures.common import AMPLITUDE_CMAP, image_grid, phase_cmap, save_figure

    gt = load_ground_truth(gt_path).obj.astype(np.complex128)
    methods = [m.value for m in Method]
    labels = list(study.dose_labels())
    amp_rows, phase_rows, marks, shape = [], [], [], None
    for label in labels:
        record = ALIGNMENT_RECORD.read(alignment_path_of(label))
        box = (slice(*record["region_rows"]), slice(*record["region_cols"]))
        g = gt[box]
        shape = g.shape
        amp_rows.append([np.abs(g)])
        phase_rows.append([np.angle(g)])
        marks.append([None])
        for m in methods:
            a = record["methods"][m]
            marks[-1].append(FAILED_MARK if a["refused"] else None)
            recon = load_recon(recon_path_of(label, m), gt.shape).obj.astype(np.complex128)
            img = (recon * np.exp(1j * a["phase_offset_rad"]))[box]
            amp_rows[-1].append(np.abs(img))
            phase_rows[-1].append(np.angle(g) + np.angle(img * np.conj(g)))
    w, h = _panel_size(shape, width=1.1, max_height=3.0)
    cols = 1 + len(methods)
    fig = Figure(figsize=(2 * (w * cols + 1.1), len(labels) * (h + 0.35) + 1.0), layout="constrained")
    left, right = fig.subfigures(1, 2, wspace=0.02)
    titles = ["ground\ntruth"] + [m.replace("_", "\n") for m in methods]  # two lines: narrow panels
    rows = [f"dose {label}" for label in labels]
    gt_phase = np.concatenate([r[0].ravel() for r in phase_rows])
    amp_lim = (min(float(r[0].min()) for r in amp_rows), max(float(r[0].max()) for r in amp_rows))
    ph_lim = (min(float(r[0].min()) for r in phase_rows), max(float(r[0].max()) for r in phase_rows))
    image_grid(
        left,
        left.subplots(len(labels), cols, squeeze=False).tolist(),
        amp_rows,
        cmap=AMPLITUDE_CMAP,
        vmin=amp_lim[0],
        vmax=amp_lim[1],
        label="amplitude",
        col_titles=titles,
        row_labels=rows,
        marks=marks,
    )
    image_grid(
        right,
        right.subplots(len(labels), cols, squeeze=False).tolist(),
        phase_rows,
        cmap=phase_cmap(gt_phase),
        vmin=ph_lim[0],
        vmax=ph_lim[1],
        label="phase (rad)",
        col_titles=titles,
        row_labels=rows,
        marks=marks,
    )
    left.suptitle("amplitude", fontsize=11)
    right.suptitle("phase", fontsize=11)
    fig.suptitle(f"view {view}, seed {seed}: evaluation region, in the known frame, as scored", fontsize=11)
    save_figure(fig, path)
