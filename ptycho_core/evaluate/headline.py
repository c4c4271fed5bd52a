"""The study's answer, first: headline table, crossover doses, a short summary and a wide CSV.

Everything here is computed from the report's summary records
(:func:`ptycho_core.evaluate.tables.summarise`: per dose x view x method x
quantity x metric, statistics over replicate seeds) and the views' overlap
records; nothing reads a reconstruction or the ground truth again.

- **Headline metrics** (:data:`HEADLINE`): phase MS-SSIM and amplitude
  MS-SSIM of the stitched, registered test region (the primary, strict rows).
  Per cell the method with the highest mean is the winner of that metric.
  With n >= 2 seeds each mean carries the half-width of its two-sided 95 %
  Student-t interval; with n = 1 there is none, and the summary says so.
- **Crossover dose** (:data:`CROSSOVER`): per view and method, the lowest dose
  of the ladder from which the mean phase MS-SSIM stays at or above the
  threshold at every higher dose. "below the ladder" when even the lowest
  dose passes (the method's breakdown lies below the ladder), "none" when the
  highest dose fails.
"""

from __future__ import annotations

from collections import defaultdict

from ptycho_core.config import dose_label
from ptycho_core.evaluate.tables import CONFIDENCE, t_half_width
from ptycho_core.io.records import (
    HEADLINE_COLUMNS,
    HEADLINE_METRICS,
    HEADLINE_TABLE,
    LINEAR_OVERLAP,
    NEIGHBOUR_OVERLAP,
    OVERLAP_MEASURES,
    OVERLAP_RECORD,
    WIDE_METRICS,
)
from ptycho_core.io.records import HEADLINE_LABELS as LABELS
from ptycho_core.methods import Method

__all__ = [
    "CROSSOVER",
    "HEADLINE",
    "crossover_doses",
    "headline_cells",
    "landing_rst",
    "summary_lines",
    "view_overlap",
    "wide_csv",
]

#: (quantity, metric) of the headline table, in column order (the wide CSV's columns, labels and
#: units are the record's: :data:`ptycho_core.io.records.HEADLINE_TABLE`).
HEADLINE = HEADLINE_METRICS
#: The quality threshold that defines a method's crossover dose: (quantity, metric, threshold).
CROSSOVER = ("phase", "ms_ssim", 0.8)


def _index(summary: dict) -> dict:
    """(dose, view, method, quantity, metric) -> record."""
    return {(r["dose"], r["view"], r["method"], r["quantity"], r["metric"]): r for r in summary["records"]}


def _methods(summary: dict) -> list[str]:
    present = {r["method"] for r in summary["records"]}
    return [m.value for m in Method if m.value in present]


def _ladder(summary: dict) -> tuple[list[float], list[str]]:
    doses = sorted({r["dose"] for r in summary["records"]})
    views = list(dict.fromkeys(r["view"] for r in summary["records"]))
    return doses, views


def headline_cells(summary: dict) -> list[dict]:
    """One record per dose x view: for each headline metric, each method's mean, n, interval half-width,
    and the winner."""
    idx = _index(summary)
    doses, views = _ladder(summary)
    methods = _methods(summary)
    cells = []
    for view in views:
        for dose in doses:
            cell = {"dose": dose, "dose_label": dose_label(dose), "view": view, "metrics": {}}
            for quantity, metric in HEADLINE:
                values = {}
                for m in methods:
                    r = idx[(dose, view, m, quantity, metric)]
                    values[m] = {"mean": r["mean"], "n": r["n"], "half_width": t_half_width(r["std"], r["n"])}
                winner = max(values, key=lambda m: values[m]["mean"])
                cell["metrics"][(quantity, metric)] = {"values": values, "winner": winner}
            ppp = idx[(dose, view, methods[0], *HEADLINE[0])].get("photons_per_illuminated_pixel")
            cell["photons_per_illuminated_pixel"] = ppp
            cells.append(cell)
    return cells


def crossover_doses(summary: dict, threshold: float = CROSSOVER[2]) -> dict:
    """{view: {method: dose | "below the ladder" | None}}: where each method's mean phase MS-SSIM stays >= threshold.

    The crossover dose is the lowest ladder dose d such that the mean is at or
    above the threshold at d and at every higher dose; "below the ladder" when
    that holds at the lowest dose too; None when it fails at the highest dose.
    """
    quantity, metric, _ = CROSSOVER
    idx = _index(summary)
    doses, views = _ladder(summary)
    out: dict = {}
    for view in views:
        out[view] = {}
        for m in _methods(summary):
            passing = [idx[(d, view, m, quantity, metric)]["mean"] >= threshold for d in doses]
            k = len(doses)
            while k > 0 and passing[k - 1]:
                k -= 1
            out[view][m] = None if k == len(doses) else ("below the ladder" if k == 0 else doses[k])
    return out


def view_overlap(overlap_paths: dict) -> dict:
    """{view: {measure: mean}} of the :data:`~ptycho_core.io.records.OVERLAP_MEASURES` of the test split
    over doses and seeds.

    ``overlap_paths``: ``{(view, dose, seed): overlap_metrics.json}``. The
    group overlap is None where the groups are single positions (gridsize 1).
    """
    acc: dict = defaultdict(list)
    for (view, _dose, _seed), path in overlap_paths.items():
        acc[view].append(OVERLAP_RECORD.read(path)["splits"]["test"])

    def mean(values: list) -> float | None:
        return None if any(v is None for v in values) else float(sum(values) / len(values))

    return {view: {k: mean([r[k] for r in rows]) for k in OVERLAP_MEASURES} for view, rows in acc.items()}


def _fmt(v: dict) -> str:
    text = f"{v['mean']:.3f}"
    if v["half_width"] is not None:
        text += f" ± {v['half_width']:.3f}"
    return text


def _crossover_text(value, unit: str = " photons per pattern") -> str:
    if value is None:
        return "none in the ladder"
    if value == "below the ladder":
        return "below the ladder"
    return f"{dose_label(value)}{unit}"


def _seeds_caveat(summary: dict) -> str:
    ns = sorted({r["n"] for r in summary["records"]})
    if ns == [1]:
        return (
            "One seed per cell (n = 1): every number is a single realisation of noise and scan, with no interval; "
            "differences between close values may not repeat."
        )
    return (
        f"n = {', '.join(map(str, ns))} seeds per cell; "
        f"± is the half-width of the two-sided {CONFIDENCE:.0%} Student-t interval of the mean over seeds."
    )


def summary_lines(summary: dict, overlap: dict, threshold: float = CROSSOVER[2]) -> list[str]:
    """A few sentences that answer the study's question, with the replicate caveat (``highlights.txt``)."""
    doses, views = _ladder(summary)
    methods = _methods(summary)
    cells = headline_cells(summary)
    ppp = [c["photons_per_illuminated_pixel"] for c in cells if c["photons_per_illuminated_pixel"] is not None]
    dose_text = f"{dose_label(doses[0])} to {dose_label(doses[-1])} photons per pattern"
    if ppp:
        dose_text += f", i.e. {min(ppp):.3g} to {max(ppp):.3g} photons per illuminated pixel"
    lines = [
        f"{len(doses)} doses from {dose_text}; {len(views)} views; {len(methods)} methods; "
        "headline metric: phase MS-SSIM of the stitched test region."
    ]
    cross = crossover_doses(summary, threshold)
    for view in views:
        ovl = overlap.get(view)
        where = f"view {view}" + (f" (linear overlap {ovl[LINEAR_OVERLAP]:.0%})" if ovl else "")
        parts = [f"{Method.parse(m).value} {_crossover_text(cross[view][m])}" for m in methods]
        lines.append(f"{where}: lowest dose from which phase MS-SSIM stays >= {threshold:g}: " + "; ".join(parts) + ".")
    wins: dict = defaultdict(int)
    key = HEADLINE[0]
    for c in cells:
        wins[c["metrics"][key]["winner"]] += 1
    ranking = ", ".join(f"{m} in {wins[m]}" for m in sorted(wins, key=lambda m: (-wins[m], m)))
    lines.append(f"Highest mean phase MS-SSIM: {ranking} of {len(cells)} dose x view cells.")
    lines.append(_seeds_caveat(summary))
    return lines


def wide_csv(summary: dict, overlap: dict) -> str:
    """CSV text (:data:`~ptycho_core.io.records.HEADLINE_TABLE`): one row per dose x view x method,
    one column per metric (mean over seeds), units in the header."""
    idx = _index(summary)
    doses, views = _ladder(summary)
    rows = []
    for dose in doses:
        for view in views:
            for m in _methods(summary):
                rec = {k: idx[(dose, view, m, *k)] for k in WIDE_METRICS}
                ppp = rec[WIDE_METRICS[0]].get("photons_per_illuminated_pixel")
                row = [
                    dose,
                    ppp,
                    view,
                    overlap[view][LINEAR_OVERLAP] if view in overlap else None,
                    m,
                    rec[WIDE_METRICS[0]]["n"],
                ]
                row += [rec[k]["mean"] for k in WIDE_METRICS]
                row += [idx[(dose, view, m, *k)]["std"] for k in HEADLINE]
                rows.append(dict(zip(HEADLINE_COLUMNS, row, strict=True)))
    return HEADLINE_TABLE.format(rows, source="headline table")


def _rst_table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    out = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        out.append(f"   * - {row[0]}")
        out += [f"     - {c}" for c in row[1:]]
    return out + [""]


def landing_rst(
    *, study_name: str, config_lines: list[str], summary: dict, overlap: dict, threshold: float = CROSSOVER[2]
) -> str:
    """The report's landing page (reStructuredText): configuration, headline table, crossover doses, summary."""
    doses, views = _ladder(summary)
    methods = _methods(summary)
    cells = headline_cells(summary)
    lines = [f"Study **{study_name}**", "", *(f"- {c}" for c in config_lines), ""]
    lines += ["**In short.** " + " ".join(summary_lines(summary, overlap, threshold)), ""]
    for quantity, metric in HEADLINE:
        header = ["view", "dose (photons/pattern)", "photons/illuminated px", *methods]
        rows = []
        for c in cells:
            entry = c["metrics"][(quantity, metric)]
            ppp = c["photons_per_illuminated_pixel"]
            row = [c["view"], c["dose_label"], "" if ppp is None else f"{ppp:.3g}"]
            for m in methods:
                text = _fmt(entry["values"][m])
                row.append(f"**{text}** ★" if m == entry["winner"] else text)
            rows.append(row)
        lines += _rst_table(f"{quantity} {LABELS[metric]} of the stitched test region (★ highest mean)", header, rows)
    cross = crossover_doses(summary, threshold)
    header = ["view", "linear overlap", "neighbour overlap", *methods]
    rows = []
    for view in views:
        ovl = overlap.get(view, {})
        rows.append(
            [
                view,
                f"{ovl[LINEAR_OVERLAP]:.0%}" if ovl else "",
                f"{ovl[NEIGHBOUR_OVERLAP]:.3f}" if ovl else "",
                *(_crossover_text(cross[view][m], "") for m in methods),
            ]
        )
    lines += _rst_table(
        f"Crossover dose (photons per pattern): lowest dose from which phase MS-SSIM stays >= {threshold:g}",
        header,
        rows,
    )
    return "\n".join(lines) + "\n"
