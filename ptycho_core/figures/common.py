"""What every figure of the study shares: one visual convention, matplotlib's object-oriented API, atomic writes.

Figures are :class:`matplotlib.figure.Figure` objects drawn on the Agg
canvas, never through pyplot's global state; :func:`save_figure` writes the
PNG without a timestamp or software tag, so the same data give the same bytes.

Every reconstruction figure (the score step's comparison, the report's montage) follows one
convention, :func:`image_grid`: a block of images shares one colour scale and
one colour bar labelled with its quantity and unit;
amplitude in ``gray`` with the ground truth's limits, phase in a sequential
map (``viridis``) with the ground truth's limits, or the cyclic ``twilight``
only when the ground truth's phase spans nearly 2 pi (:func:`phase_cmap`), and
errors in the diverging ``RdBu_r`` symmetric about zero.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ptycho_core.io.npz import atomic_write_bytes

AMPLITUDE_CMAP = "gray"
ERROR_CMAP = "RdBu_r"
#: Label sizes (points) of image grids: titles, row labels and colour-bar labels stay legible when the report
#: scales a figure to its width.
TITLE_PT, LABEL_PT = 10, 10
#: Colour of a mark on an image of a grid (a failed run in the montages).
MARK_COLOUR = "crimson"


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> None:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())


def phase_cmap(reference_phase: np.ndarray) -> str:
    """``viridis`` for phase that does not wrap (range below 1.8 pi), else the cyclic ``twilight``.

    A cyclic map shows 0 and 2 pi alike, which is right for wrapped phase and
    wrong for a phase range such as 0 to 1.5 rad, where it makes the ends look
    the same.
    """
    return "twilight" if float(np.ptp(reference_phase)) > 1.8 * np.pi else "viridis"


def image_grid(
    fig: Figure,
    axes,
    images,
    *,
    cmap: str,
    vmin: float,
    vmax: float,
    label: str,
    col_titles=None,
    row_labels=None,
    marks=None,
):
    """Draw a 2-D grid of ``images`` (None leaves its axis empty) on ``axes`` with one colour scale and one
    labelled colour bar.

    ``axes`` and ``images`` are nested lists (rows of columns); ``col_titles``
    label the first row's columns, ``row_labels`` each row's first image;
    ``marks`` (nested like ``images``; None or "" for none) is written across
    the foot of its image on a white box, for example "failed run".
    """
    im = None
    for r, (ax_row, img_row) in enumerate(zip(axes, images)):
        for c, (ax, img) in enumerate(zip(ax_row, img_row)):
            ax.set_xticks([])
            ax.set_yticks([])
            if img is None:
                ax.axis("off")
                continue
            im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            if marks is not None and marks[r][c]:
                ax.text(
                    0.5,
                    0.04,
                    marks[r][c],
                    transform=ax.transAxes,
                    ha="center",
                    va="bottom",
                    fontsize=LABEL_PT - 1,
                    color=MARK_COLOUR,
                    bbox={"facecolor": "white", "edgecolor": MARK_COLOUR, "pad": 1.0},
                )
            if r == 0 and col_titles is not None and col_titles[c]:
                ax.set_title(col_titles[c], fontsize=TITLE_PT)
        if row_labels is not None:
            first = next((ax for ax, img in zip(ax_row, img_row) if img is not None), None)
            if first is not None:
                first.set_ylabel(row_labels[r], fontsize=LABEL_PT)
    if im is not None:
        bar = fig.colorbar(im, ax=[ax for row in axes for ax in row], fraction=0.03, pad=0.02)
        bar.set_label(label, fontsize=LABEL_PT)
        bar.ax.tick_params(labelsize=LABEL_PT - 1)
    return im
