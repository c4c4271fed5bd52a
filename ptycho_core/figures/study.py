"""The study figures drawn from the report's tables: metric against dose, and FRC curves.

:data:`~ptycho_core.evaluate.rows.DOSE_RESPONSE` names the (quantity, metric)
pairs drawn as dose-response figures (one file ``{quantity}_{metric}.png``
each; the ``report`` rule declares the same files from it). The data come from
:mod:`ptycho_core.evaluate.tables` (the tidy table, the validated ``frc.csv``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ptycho_core.config import dose_label
from ptycho_core.evaluate.metrics import FRC_THRESHOLDS
from ptycho_core.evaluate.rows import QUANTITIES
from ptycho_core.evaluate.tables import (
    CONFIDENCE,
    METRIC_LABELS,
    AggregationError,
    cell_name,
    check_table,
    read_frc_table,
    t_half_width,
)
from ptycho_core.methods import Method
from ptycho_core.physics.probe import photons_per_illuminated_pixel

__all__ = ["dose_response_figure", "frc_figure"]


def _method_label(method: str) -> str:
    try:
        return Method(method).label
    except ValueError:
        return method


def _method_order(method: str) -> tuple:
    """Registry order, then unknown ids by name."""
    order = [m.value for m in Method]
    return (order.index(method), "") if method in order else (len(order), method)


def _method_colours(methods: Sequence[str]) -> dict:
    extra = iter(["tab:red", "tab:brown", "tab:gray", "tab:olive"])
    return {m: Method(m).spec.colour if m in Method._value2member_map_ else next(extra) for m in methods}


def dose_response_figure(
    path,
    table: pd.DataFrame,
    metric: str,
    quantity: str,
    *,
    fwhm_diameter_px: float | None = None,
    threshold: float | None = None,
    crossovers: Sequence[dict] = (),
) -> None:
    """Metric vs dose (log axis): one line per method, one panel per view.

    Points are means across seeds; the shaded band is the two-sided 95 %
    Student-t interval of the mean (:func:`~ptycho_core.evaluate.tables.t_half_width`),
    drawn where n >= 2 (none for n = 1). With the probe's FWHM diameter, a
    second x axis (top) gives the dose in photons per illuminated object pixel
    (dose / (pi (D/2)^2), linear in the dose). ``threshold``: a dashed
    horizontal line; ``crossovers``: crossover records of
    :func:`ptycho_core.evaluate.verdicts.crossover_records` for this metric, each
    drawn on the threshold line as a marker at its estimate with a bar over its
    interval (clipped to the ladder where a bound is open).
    """
    from matplotlib.figure import Figure

    from ptycho_core.figures.common import save_figure

    t = check_table(table)
    sel = t[(t["metric"] == metric) & (t["quantity"] == quantity)]
    if sel.empty:
        raise AggregationError(f"dose_response_figure: no rows for {quantity} {metric} in the table")
    stats = (
        sel.groupby(["view", "method", "dose"], sort=True)["value"]
        .agg(mean="mean", std=lambda v: v.std(ddof=1) if v.size >= 2 else np.nan, n="size")
        .reset_index()
    )
    stats["half_width"] = [
        np.nan if n < 2 else t_half_width(float(sd), int(n)) for sd, n in zip(stats["std"], stats["n"])
    ]
    views = sorted(stats["view"].unique())
    methods = sorted(stats["method"].unique(), key=_method_order)
    colours = _method_colours(methods)
    fig = Figure(figsize=(4.2 * len(views), 3.8), layout="constrained")
    axes = fig.subplots(1, len(views), squeeze=False, sharey=True)[0]
    for ax, view in zip(axes, views):
        for m in methods:
            s = stats[(stats["view"] == view) & (stats["method"] == m)].sort_values("dose")
            if s.empty:
                continue
            x, y = s["dose"].to_numpy(float), s["mean"].to_numpy(float)
            ax.plot(x, y, marker="o", color=colours[m], label=_method_label(m))
            half = s["half_width"].to_numpy(float)
            band = np.isfinite(half)
            if band.any():
                h = np.where(band, half, 0.0)
                ax.fill_between(x, y - h, y + h, where=band, color=colours[m], alpha=0.2, lw=0, interpolate=False)
        if threshold is not None:
            ax.axhline(threshold, color="k", ls="--", lw=0.8)
            ax.text(1.0, threshold, f" {threshold:g}", transform=ax.get_yaxis_transform(), va="center", fontsize=8)
            lo_x, hi_x = float(stats["dose"].min()), float(stats["dose"].max())
            for rec in (r for r in crossovers if r["view"] == view and r["method"] in colours):
                est = rec["estimate"]
                if est["relation"] == "=":
                    ax.plot(est["dose"], threshold, marker="D", ms=5, color=colours[rec["method"]], zorder=5)
                if rec["lower"] is not None and rec["upper"] is not None:
                    a = lo_x if rec["lower"]["relation"] == "<" else min(max(rec["lower"]["dose"], lo_x), hi_x)
                    b = hi_x if rec["upper"]["relation"] == ">" else min(max(rec["upper"]["dose"], lo_x), hi_x)
                    if b > a:
                        ax.plot([a, b], [threshold, threshold], color=colours[rec["method"]], lw=3, alpha=0.6)
        ax.set_xscale("log")
        ax.set_xlabel("dose (photons per pattern)")
        if fwhm_diameter_px is not None:
            per_px = photons_per_illuminated_pixel(1.0, fwhm_diameter_px)  # the axes differ by this factor
            top = ax.secondary_xaxis("top", functions=(lambda d, f=per_px: d * f, lambda p, f=per_px: p / f))
            top.set_xlabel(f"photons per illuminated pixel (probe FWHM {fwhm_diameter_px:.2f} px)", fontsize=8)
        ax.set_title(f"view {view}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(f"{quantity} {METRIC_LABELS.get(metric, metric)}")
    axes[0].legend(fontsize=8)
    n_text = ", ".join(str(n) for n in sorted(stats["n"].unique()))
    extra = (
        "" if threshold is None else f"; dashed: {threshold:g}" + (", diamonds: crossover doses" if crossovers else "")
    )
    fig.suptitle(
        f"{quantity} {METRIC_LABELS.get(metric, metric)} vs dose\n"
        f"(mean; band: {CONFIDENCE:.0%} Student-t interval over seeds, n = {n_text}; none where n = 1{extra})",
        fontsize=10,
    )
    save_figure(fig, path)


def frc_figure(path, frc_tables: Sequence[tuple], dose: float | None = None) -> None:
    """FRC curves at one dose (default: the highest): rows amplitude/phase, one panel per view.

    ``frc_tables``: (dose, view, seed, path of frc.csv) per cell. Each
    method has one colour; every seed's curve is drawn (the test regions of
    different seeds may have different ring grids, so curves are not
    averaged). The 0.5 and 1/7 thresholds are drawn as dashed lines.
    """
    from matplotlib.figure import Figure

    from ptycho_core.figures.common import save_figure

    if not frc_tables:
        raise AggregationError("frc_figure: no FRC tables given")
    doses = sorted({float(d) for d, _, _, _ in frc_tables})
    chosen = doses[-1] if dose is None else float(dose)
    if chosen not in doses:
        raise AggregationError(
            f"frc_figure: dose {dose_label(chosen)} not among the FRC tables' doses {[dose_label(d) for d in doses]}"
        )
    entries = sorted((str(v), int(s), Path(p)) for d, v, s, p in frc_tables if float(d) == chosen)
    views = sorted({v for v, _, _ in entries})
    loaded = [(v, s, read_frc_table(p, f"cell {cell_name(chosen, v, s)}")) for v, s, p in entries]
    methods = sorted({m for _, _, df in loaded for m in df["method"]})
    colours = _method_colours(methods)
    fig = Figure(figsize=(4.6 * len(views), 7.0), layout="constrained")
    axes = fig.subplots(len(QUANTITIES), len(views), squeeze=False, sharex=True, sharey=True)
    for j, view in enumerate(views):
        cells = [(s, df) for v, s, df in loaded if v == view]
        for i, q in enumerate(QUANTITIES):
            ax = axes[i, j]
            for m in methods:
                labelled = False
                n = sum(1 for _, df in cells if ((df["method"] == m) & (df["quantity"] == q)).any())
                for s, df in cells:
                    c = df[(df["method"] == m) & (df["quantity"] == q)].sort_values("frequency_cycles_per_pixel")
                    if c.empty:
                        continue
                    ax.plot(
                        c["frequency_cycles_per_pixel"],
                        c["frc"],
                        color=colours[m],
                        lw=1.2,
                        alpha=0.8,
                        label=None if labelled else f"{_method_label(m)} (n = {n})",
                    )
                    labelled = True
            for name, thr in FRC_THRESHOLDS.items():
                ax.axhline(thr, color="k", ls="--", lw=0.8)
                ax.text(0.49, thr, "0.5" if name == "frc50" else "1/7", ha="right", va="bottom", fontsize=7)
            ax.set_xlim(0, 0.5)
            ax.set_title(f"view {view}, {q}", fontsize=10)
            ax.grid(True, alpha=0.3)
            if i == len(QUANTITIES) - 1:
                ax.set_xlabel("spatial frequency (cycles/pixel)")
            if j == 0:
                ax.set_ylabel("FRC")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"Fourier ring correlation at dose {dose_label(chosen)} (one curve per seed)", fontsize=10)
    save_figure(fig, path)
