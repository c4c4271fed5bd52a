"""Figure of one overlap view: positions, probe footprints (FWHM discs) and groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from ptycho_core.figures.common import save_figure
from ptycho_core.io.datasets import DiffractionSet
from ptycho_core.io.records import GROUP_CENTRE_OVERLAP, GROUP_OVERLAP, LINEAR_OVERLAP, NEIGHBOUR_OVERLAP
from ptycho_core.io.view_index import ViewIndex
from ptycho_core.sampling.overlap import disc_overlap_fraction


def view_figure(path: str | Path, train: DiffractionSet, test: DiffractionSet, view: ViewIndex, metrics: dict) -> None:
    """Positions of the view with probe footprints (FWHM discs) and the test groups drawn."""
    D = metrics["probe_diameter_px"]
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, name, ds in ((axes[0], "train", train), (axes[1], "test", test)):
        pos = np.column_stack([ds.xcoords, ds.ycoords])
        rows = getattr(view, f"{name}_index")
        groups = getattr(view, f"{name}_groups")
        ax.scatter(pos[:, 0], pos[:, 1], s=2, c="lightgray", label=f"split, not in view ({ds.n - rows.size})")
        discs = [Circle((x, y), D / 2) for x, y in pos[rows]]
        ax.add_collection(PatchCollection(discs, facecolor="tab:blue", edgecolor="tab:blue", alpha=0.06, lw=0.3))
        ax.scatter(pos[rows, 0], pos[rows, 1], s=4, c="tab:blue", label=f"view ({rows.size})")
        if groups.shape[1] > 1:
            shown = groups if name == "test" else groups[:: max(1, groups.shape[0] // 200)]
            segs = [[pos[g[0]], pos[m]] for g in shown for m in g[1:]]
            ax.add_collection(
                LineCollection(
                    segs,
                    colors="tab:red",
                    lw=0.6,
                    alpha=0.7,
                    label=f"groups ({groups.shape[0]}{'' if name == 'test' else ', some shown'})",
                )
            )
        m = metrics["splits"][name]
        group = "n/a" if m[GROUP_OVERLAP] is None else f"{m[GROUP_OVERLAP]:.3f}"
        ax.set_title(
            f"{name}: linear {m[LINEAR_OVERLAP]:.2f}, group {group}, neighbour {m[NEIGHBOUR_OVERLAP]:.3f}, "
            f"group centres {m[GROUP_CENTRE_OVERLAP]:.3f}",
            fontsize=8,
        )
        ax.set_aspect("equal")
        ax.invert_yaxis()
        ax.set_xlabel("x (object px)")
        ax.set_ylabel("y (object px)")
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(
        f"view {metrics['view']} (stride {metrics['stride']}), dose {metrics['dose']:.3g}, seed {metrics['seed']}: "
        f"probe D = {D:.1f} px, f(D/2) = {float(disc_overlap_fraction(D / 2, D)):.3f}",
        fontsize=10,
    )
    save_figure(fig, path)
