"""Figures that set reconstructions beside the ground truth.

:func:`comparison_figure`: one cell's methods, aligned, with error maps on
the evaluation region (phase F, rule ``score``). :func:`montage_figure`:
every dose of one view, the test region each method covers (phase G, rule
``report``).
"""

from __future__ import annotations

import numpy as np

from ptycho_core.config import StudyConfig
from ptycho_core.io.datasets import load_ground_truth
from ptycho_core.io.reconstruction import load_recon
from ptycho_core.methods import Method

__all__ = ["comparison_figure", "montage_figure"]


def comparison_figure(path, gt: np.ndarray, recons: dict, region, aligned: dict, title: str) -> None:
    """Ground truth and each method (amplitude, phase) with error maps, shared colour limits, on the region."""
    from matplotlib.figure import Figure

    from ptycho_core.figures.common import save_figure

    rs, cs = region
    g = gt[rs, cs]
    cols = 1 + len(recons)
    fig = Figure(figsize=(3.2 * cols, 11), layout="constrained")
    axes = fig.subplots(4, cols, squeeze=False)
    amp_lim = (float(np.abs(g).min()), float(np.abs(g).max()))
    ph_lim = (float(np.angle(g).min()), float(np.angle(g).max()))
    err_amp = max(1e-6, *(float(np.abs(np.abs(a[rs, cs]) - np.abs(g)).max()) for a in aligned.values()))
    err_ph = max(1e-6, *(float(np.abs(np.angle(a[rs, cs] * np.conj(g))).max()) for a in aligned.values()))
    panels = [("ground truth", g)] + [(m, aligned[m][rs, cs]) for m in recons]
    for j, (name, img) in enumerate(panels):
        axes[0, j].imshow(np.abs(img), cmap="gray", vmin=amp_lim[0], vmax=amp_lim[1])
        axes[0, j].set_title(f"{name}\namplitude", fontsize=9)
        axes[1, j].imshow(np.angle(g) + np.angle(img * np.conj(g)), cmap="twilight", vmin=ph_lim[0], vmax=ph_lim[1])
        axes[1, j].set_title("phase (rad)", fontsize=9)
        if j == 0:
            axes[2, 0].axis("off")
            axes[3, 0].axis("off")
            continue
        im2 = axes[2, j].imshow(np.abs(img) - np.abs(g), cmap="RdBu_r", vmin=-err_amp, vmax=err_amp)
        axes[2, j].set_title("amplitude error", fontsize=9)
        im3 = axes[3, j].imshow(np.angle(img * np.conj(g)), cmap="RdBu_r", vmin=-err_ph, vmax=err_ph)
        axes[3, j].set_title("phase error (rad)", fontsize=9)
    if cols > 1:
        fig.colorbar(im2, ax=axes[2, :].tolist(), fraction=0.02)
        fig.colorbar(im3, ax=axes[3, :].tolist(), fraction=0.02)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def montage_figure(path, study: StudyConfig, view: str, seed: int, gt_path, recon_path_of) -> None:
    """Rows: doses; columns: ground truth then each method; amplitude and phase of the test region."""
    from matplotlib.figure import Figure

    from ptycho_core.figures.common import save_figure

    gt = load_ground_truth(gt_path).obj
    methods = [m.value for m in Method]
    labels = list(study.dose_labels())
    fig = Figure(figsize=(2.2 * 2 * (1 + len(methods)), 2.3 * len(labels) + 0.6), layout="constrained")
    axes = fig.subplots(len(labels), 2 * (1 + len(methods)), squeeze=False)
    for i, label in enumerate(labels):
        recons = {m: load_recon(recon_path_of(label, m), gt.shape) for m in methods}
        covered = np.logical_and.reduce([r.covered for r in recons.values()])
        rows, cols = np.nonzero(covered)
        box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
        g = gt[box]
        amp_lim = (float(np.abs(g).min()), float(np.abs(g).max()))
        for j, (name, img) in enumerate([("ground truth", g)] + [(m, recons[m].obj[box]) for m in methods]):
            # phase shown relative to the ground truth's mean phase over the region (a gauge)
            offset = np.angle(np.vdot(img, g)) if name != "ground truth" else 0.0
            a_ax, p_ax = axes[i, 2 * j], axes[i, 2 * j + 1]
            a_ax.imshow(np.abs(img), cmap="gray", vmin=amp_lim[0], vmax=amp_lim[1])
            p_ax.imshow(np.angle(img * np.exp(1j * offset)), cmap="twilight", vmin=-np.pi / 2, vmax=np.pi / 2)
            if i == 0:
                a_ax.set_title(f"{name}\namplitude", fontsize=8)
                p_ax.set_title(f"{name}\nphase", fontsize=8)
            if j == 0:
                a_ax.set_ylabel(f"dose {label}", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"view {view}, seed {seed}: test region (covered by every method)", fontsize=10)
    save_figure(fig, path)
