"""Preview figure of one simulated dose x seed: object, probe, scan positions of both splits, patterns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from ptycho_core.figures.common import save_figure
from ptycho_core.io.datasets import DiffractionSet


def _image(ax, data, title, cmap="gray", **kw):
    im = ax.imshow(data, cmap=cmap, interpolation="nearest", **kw)
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


def simulation_preview(
    path: str | Path,
    obj: np.ndarray,
    train: DiffractionSet,
    test: DiffractionSet,
    probe_diameter: float,
    train_obj: np.ndarray | None = None,
    n_patterns: int = 3,
) -> None:
    """Object amplitude/phase, probe amplitude/phase, scan by split, log-scale patterns.

    With a separate training object (``train_obj``) the scan panel shows
    the study object with its test positions only (the training positions
    lie on the other object).
    """
    meta = train.metadata
    fig = Figure(figsize=(13, 7.5), layout="constrained")
    axes = fig.subplots(2, 4)
    _image(axes[0, 0], np.abs(obj), "object amplitude")
    _image(axes[0, 1], np.angle(obj), "object phase (rad)", cmap="twilight")
    _image(
        axes[0, 2], np.abs(train.probe), f"probe amplitude (sqrt ph)\nFWHM D = {probe_diameter:.1f} px", cmap="magma"
    )
    _image(axes[0, 3], np.angle(train.probe), "probe phase (rad)", cmap="twilight")

    ax = axes[1, 0]
    ax.imshow(np.abs(obj), cmap="gray", interpolation="nearest")
    if train_obj is None:
        ax.scatter(train.xcoords, train.ycoords, s=3, c="tab:blue", label=f"train ({train.n})")
    ax.scatter(test.xcoords, test.ycoords, s=3, c="tab:orange", label=f"test ({test.n})")
    k = int(np.argmin(np.hypot(test.xcoords - test.xcoords.mean(), test.ycoords - test.ycoords.mean())))
    ax.add_patch(Circle((test.xcoords[k], test.ycoords[k]), probe_diameter / 2, fill=False, color="red", lw=1))
    ax.set_title(
        "scan positions by split (red: probe FWHM)"
        if train_obj is None
        else f"test positions (red: probe FWHM);\n{train.n} training positions on the training object",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="lower left", markerscale=3)

    counts = test.counts()
    picks = np.linspace(0, test.n - 1, n_patterns).astype(int)
    vmax = counts[picks].max()
    for ax, j in zip(axes[1, 1:], picks):
        img = np.where(counts[j] > 0, counts[j], np.nan)
        _image(
            ax,
            img,
            f"test pattern {j}: {counts[j].sum():.3g} counts",
            cmap="viridis",
            norm=LogNorm(vmin=1, vmax=max(vmax, 2)),
        )
    fig.suptitle(
        f"study {meta['study']}: dose {meta['dose']:.3g} photons/pattern, seed {meta['seed']}, N = {train.N}",
        fontsize=11,
    )
    save_figure(fig, path)
