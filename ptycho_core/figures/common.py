"""What every figure of the study shares: built with matplotlib's object-oriented API, written atomically.

Figures are :class:`matplotlib.figure.Figure` objects drawn on the Agg
canvas, never through pyplot's global state; :func:`save_figure` writes the
PNG without a timestamp or software tag, so the same data give the same bytes.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ptycho_core.io.npz import atomic_write_bytes


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> None:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())
