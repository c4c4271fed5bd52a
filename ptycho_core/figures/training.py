"""Figures of training and refinement: the loss curve of one job."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ptycho_core.figures.common import save_figure


def loss_figure(path, history: dict, title: str, xlabel: str = "epoch") -> None:
    """Loss per epoch (or per ``xlabel``: training, and validation when recorded); the title wraps instead of being
    clipped."""
    import textwrap

    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], label="training loss")
    if "val_loss" in history:
        ax.plot(epochs, history["val_loss"], label="validation loss")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(textwrap.fill(title, 70), fontsize=9)
    ax.legend()
    save_figure(fig, path)
