"""The study's answer, first: verdicts with their evidence, crossover doses, a short summary and a wide CSV.

Everything here is computed from the report's summary records
(:func:`ptycho_core.evaluate.tables.summarise`: per dose x view x method x
quantity x metric, statistics and per-seed values over replicate seeds) and
the views' overlap records; nothing reads a reconstruction or the ground
truth again. The verdicts and crossover doses are those of
:mod:`ptycho_core.evaluate.verdicts`, the same records the report's JSON holds.

- **Headline metrics** (:data:`HEADLINE`): phase MS-SSIM and amplitude
  MS-SSIM of the stitched test region (the primary, strict rows). Per cell
  each method's mean carries the half-width of its two-sided 95 % Student-t
  interval over seeds (none with n = 1), and the cell a verdict: a winner
  only where the best mean's paired difference with every other method has
  an interval that excludes zero; else a tie naming the methods not
  separable from the best; ``no verdict (n = 1)`` without intervals.
- **Crossover dose** (:data:`CROSSOVER`): per view and method, where the mean
  phase MS-SSIM last crosses the threshold from below going up the ladder,
  interpolated in log10 dose, with the doses where the edges of the 95 %
  band cross as its interval.
- **Landing page** (:func:`landing_rst`): the dose-response figure of the
  crossover metric (one panel per view, interval bands, threshold, both dose
  axes), per view a table of mean ± interval with the verdict, the crossover
  table, the summary as short bullets, then the configuration.
"""

from __future__ import annotations

import base64
import mimetypes
from collections import Counter, defaultdict
from pathlib import Path
from typing import Sequence

from ptycho_core.evaluate.tables import CONFIDENCE
from ptycho_core.evaluate.verdicts import (
    CROSSOVER,
    NO_VERDICT,
    TIE,
    WINNER,
    cell_verdicts,
    crossover_records,
    crossover_text,
    dose_text,
    methods_of,
    point_text,
)
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

#: (quantity, metric) of the headline tables, in order; the first is the verdict metric of the summary lines
#: (the wide CSV's columns, labels and units are the record's: :data:`ptycho_core.io.records.HEADLINE_TABLE`).
HEADLINE = HEADLINE_METRICS
#: A non-breaking space: the landing page's table cells never wrap inside a value.
NBSP = "\u00a0"


def _index(summary: dict) -> dict:
    """(dose, view, method, quantity, metric) -> record."""
    return {(r["dose"], r["view"], r["method"], r["quantity"], r["metric"]): r for r in summary["records"]}


def _methods(summary: dict) -> list[str]:
    return methods_of(summary)


def _ladder(summary: dict) -> tuple[list[float], list[str]]:
    doses = sorted({r["dose"] for r in summary["records"]})
    views = list(dict.fromkeys(r["view"] for r in summary["records"]))
    return doses, views


def _label(quantity: str, metric: str) -> str:
    return f"{quantity} {LABELS.get(metric, metric)}"


def _crossover(threshold: float) -> tuple[str, str, float]:
    return (CROSSOVER[0], CROSSOVER[1], float(threshold))


def headline_cells(summary: dict, metrics: Sequence[tuple[str, str]] = HEADLINE) -> list[dict]:
    """One record per dose x view (views in summary order, doses ascending): for each of ``metrics``, each
    method's mean, n and interval half-width, and the cell's verdict.

    ``cell["metrics"][(quantity, metric)]`` holds ``values`` ({method: mean,
    n, half_width, failed}), ``verdict`` (``"winner"``, ``"tie"`` or ``"no
    verdict"``), ``winner`` (None unless the verdict is a winner), ``best``,
    ``not_separable``, ``pairs`` and ``text``
    (:func:`ptycho_core.evaluate.verdicts.cell_verdicts`).
    """
    idx = _index(summary)
    doses, views = _ladder(summary)
    methods = _methods(summary)
    by_key = {(v["dose"], v["view"], v["quantity"], v["metric"]): v for v in cell_verdicts(summary, metrics)}
    cells = []
    for view in views:
        for dose in doses:
            cell = {"dose": dose, "dose_label": dose_text(dose, 6), "view": view, "metrics": {}}
            for quantity, metric in metrics:
                v = by_key[(dose, view, quantity, metric)]
                cell["metrics"][(quantity, metric)] = {
                    "values": {
                        m: {k: v["methods"][m][k] for k in ("mean", "n", "half_width", "failed")} for m in v["methods"]
                    },
                    **{k: v[k] for k in ("verdict", "winner", "best", "not_separable", "pairs", "text")},
                }
            first = next((idx[k] for k in ((dose, view, m, *metrics[0]) for m in methods) if k in idx), None)
            cell["photons_per_illuminated_pixel"] = (
                None if first is None else first.get("photons_per_illuminated_pixel")
            )
            cells.append(cell)
    return cells


def crossover_doses(summary: dict, threshold: float = CROSSOVER[2]) -> dict:
    """{view: {method: crossover record}} of the :data:`CROSSOVER` metric at ``threshold``
    (:func:`ptycho_core.evaluate.verdicts.crossover_records`: estimate, interval bounds, text)."""
    out: dict = defaultdict(dict)
    for rec in crossover_records(summary, _crossover(threshold)):
        out[rec["view"]][rec["method"]] = rec
    return dict(out)


def _crossover_words(rec: dict, *, say_missing: bool) -> str:
    """A crossover in words for the summary: ``"1200 [72, 2100]"``, ``"below the ladder (< 10) [< 10, 15]"``,
    ``"above the ladder (> 10000)"``; ``say_missing``: add ``"(interval not determined)"`` without an interval."""
    est = rec["estimate"]
    ladder = dose_text(est["dose"], 6)
    words = {"<": f"below the ladder (< {ladder})", ">": f"above the ladder (> {ladder})"}.get(
        est["relation"], point_text(est)
    )
    if rec["lower"] is None or rec["upper"] is None:
        return words + (" (interval not determined)" if say_missing else "")
    text = crossover_text(rec)
    return words + (text[text.index(" [") :] if " [" in text else "")


def _overlap_text(view: str, overlap: dict) -> str:
    ovl = overlap.get(view)
    return f"view {view}" + (f" (linear overlap {ovl[LINEAR_OVERLAP]:.0%})" if ovl else "")


def _mixed_n_cells(summary: dict) -> int:
    """How many dose x view cells have a method with fewer runs than another (or none): runs were lost."""
    methods = set(_methods(summary))
    groups: dict = defaultdict(dict)
    for r in summary["records"]:
        groups[(r["dose"], r["view"], r["quantity"], r["metric"])][r["method"]] = r["n"]
    return len({k[:2] for k, g in groups.items() if set(g) != methods or len(set(g.values())) > 1})


def _failed_runs(summary: dict) -> int:
    """How many runs (dose x view x method x seed) failed: networks whose training was refused, scored as
    produced."""
    return len({(r["dose"], r["view"], r["method"], s) for r in summary["records"] for s in r["failed_seeds"]})


def _seeds_caveat(summary: dict) -> str:
    ns = sorted({r["n"] for r in summary["records"]})
    mixed = _mixed_n_cells(summary)
    lost = (
        f" In {mixed} dose x view cell(s) some method lost runs: each method keeps its own n, and pairs use the "
        "seeds both methods have."
        if mixed
        else ""
    )
    failed = _failed_runs(summary)
    if failed:
        lost += (
            f" {failed} run(s) failed (a network's training refused by an outcome check, e.g. a saturated phase): "
            "scored as produced and kept in every mean, interval and verdict ('k failed' in the tables)."
        )
    if ns == [1]:
        return (
            "One seed per cell (n = 1): every number is a single realisation of noise and scan, with no interval; "
            "no cell has a verdict and no crossover dose an interval." + lost
        )
    return (
        f"n = {', '.join(map(str, ns))} seeds per cell; ± and [ ] are two-sided {CONFIDENCE:.0%} Student-t "
        "intervals over seeds; verdicts pair the methods by seed." + lost
    )


def _summary_parts(summary: dict, overlap: dict, threshold: float) -> dict:
    doses, views = _ladder(summary)
    methods = _methods(summary)
    verdict_metric = HEADLINE[0]
    label = _label(*verdict_metric)
    cells = headline_cells(summary, (verdict_metric,))
    ppp = [c["photons_per_illuminated_pixel"] for c in cells if c["photons_per_illuminated_pixel"] is not None]
    dose_range = f"{dose_text(doses[0], 6)} to {dose_text(doses[-1], 6)} photons per pattern"
    if ppp:
        dose_range += f", i.e. {min(ppp):.3g} to {max(ppp):.3g} photons per illuminated pixel"
    ladder = (
        f"{len(doses)} doses from {dose_range}; {len(views)} views; {len(methods)} methods; "
        f"headline metric: {label} of the stitched test region."
    )
    crossing = []
    cross = crossover_doses(summary, threshold)
    for view in views:
        recs = [cross[view][m] for m in methods if m in cross.get(view, {})]
        none = all(r["lower"] is None for r in recs)
        parts = [f"{r['method']} {_crossover_words(r, say_missing=not none)}" for r in recs]
        tail = f"; intervals not determined (n = {min(r['n'] for r in recs)})" if none else ""
        crossing.append(
            f"{_overlap_text(view, overlap)}: mean {_label(*CROSSOVER[:2])} crosses {threshold:g} at "
            + "; ".join(parts)
            + f" photons per pattern{tail}."
        )
    per_view = []
    for view in views:
        entries = [f"{c['dose_label']} {c['metrics'][verdict_metric]['text']}" for c in cells if c["view"] == view]
        per_view.append(f"{_overlap_text(view, overlap)}, {label} verdict per dose: " + "; ".join(entries) + ".")
    kinds = Counter(c["metrics"][verdict_metric]["verdict"] for c in cells)
    winners = Counter(c["metrics"][verdict_metric]["winner"] for c in cells if c["metrics"][verdict_metric]["winner"])
    tally = []
    if winners:
        tally.append("winner " + ", ".join(f"{m} in {k}" for m, k in sorted(winners.items(), key=lambda x: -x[1])))
    if kinds[TIE]:
        tally.append(f"tie in {kinds[TIE]}")
    if kinds[NO_VERDICT]:
        tally.append(f"no verdict in {kinds[NO_VERDICT]}")
    verdicts = f"Verdicts on {label} in {len(cells)} dose x view cells: " + ", ".join(tally) + "."
    assert sum(kinds[k] for k in (WINNER, TIE, NO_VERDICT)) == len(cells)
    return {
        "ladder": ladder,
        "crossing": crossing,
        "per_view": per_view,
        "verdicts": verdicts,
        "caveat": _seeds_caveat(summary),
    }


def summary_lines(summary: dict, overlap: dict, threshold: float = CROSSOVER[2], *, per_cell: bool = True) -> list[str]:
    """The answer in short lines (``highlights.txt``): the ladder; per view each method's crossover dose with its
    interval; per view the verdict of every dose (``per_cell``); the count of verdicts; the replicate caveat."""
    parts = _summary_parts(summary, overlap, threshold)
    return [
        parts["ladder"],
        *parts["crossing"],
        *(parts["per_view"] if per_cell else []),
        parts["verdicts"],
        parts["caveat"],
    ]


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
                    len(rec[WIDE_METRICS[0]]["failed_seeds"]),
                ]
                row += [rec[k]["mean"] for k in WIDE_METRICS]
                row += [idx[(dose, view, m, *k)]["std"] for k in HEADLINE]
                rows.append(dict(zip(HEADLINE_COLUMNS, row, strict=True)))
    return HEADLINE_TABLE.format(rows, source="headline table")


def _rst_table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    """A list-table; spaces inside a cell are non-breaking, so that no cell wraps."""
    out = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        cells = [c.replace(" ", NBSP) for c in row]
        out.append(f"   * - {cells[0]}")
        out += [f"     - {c}" for c in cells[1:]]
    return out + [""]


def _value_cell(stats: dict, n_row: int, bold: bool) -> str:
    """``0.912 ± 0.013`` (``0.912`` with n = 1), then in brackets the method's own n where it differs from the
    row's and the failed runs among them (``1 failed``); bold for a winner."""
    if stats["n"] == 0 or stats["mean"] is None:
        return "no run (n = 0)"
    text = f"{stats['mean']:.3f}" + ("" if stats["half_width"] is None else f" ± {stats['half_width']:.3f}")
    text = f"**{text}**" if bold else text
    notes = ([f"n = {stats['n']}"] if stats["n"] != n_row else []) + (
        [f"{stats['failed']} failed"] if stats["failed"] else []
    )
    return text + (f" ({', '.join(notes)})" if notes else "")


def _verdict_tables(summary: dict, overlap: dict, quantity: str, metric: str) -> list[str]:
    """Per view: one row per dose, mean ± interval per method, n, and the verdict."""
    methods = _methods(summary)
    cells = headline_cells(summary, ((quantity, metric),))
    lines = []
    for view in dict.fromkeys(c["view"] for c in cells):
        rows = []
        for c in (c for c in cells if c["view"] == view):
            entry = c["metrics"][(quantity, metric)]
            ns = [entry["values"][m]["n"] for m in methods]
            n_row = max(ns)
            n_text = str(n_row) if min(ns) == n_row else f"{min(ns)}–{n_row}"
            row = [c["dose_label"], n_text]
            row += [_value_cell(entry["values"][m], n_row, m == entry["winner"]) for m in methods]
            rows.append(row + [entry["text"]])
        ovl = overlap.get(view)
        where = f"view {view}" + (
            f" (linear overlap {ovl[LINEAR_OVERLAP]:.0%}, neighbour overlap {ovl[NEIGHBOUR_OVERLAP]:.2f})"
            if ovl
            else ""
        )
        lines += _rst_table(f"{where}: {_label(quantity, metric)}", ["dose", "n", *methods, "verdict"], rows)
    return lines


def _crossover_table(summary: dict, overlap: dict, threshold: float) -> list[str]:
    """Rows: the views' overlaps, then one row per method; one column per view."""
    views = _ladder(summary)[1]
    cross = crossover_doses(summary, threshold)
    rows = [
        ["linear overlap", *(f"{overlap[v][LINEAR_OVERLAP]:.0%}" if v in overlap else "" for v in views)],
        ["neighbour overlap", *(f"{overlap[v][NEIGHBOUR_OVERLAP]:.3f}" if v in overlap else "" for v in views)],
    ]
    for m in _methods(summary):
        rows.append([m, *(crossover_text(cross[v][m], short=True) if m in cross.get(v, {}) else "" for v in views)])
    title = (
        f"Crossover dose (photons per pattern): where the mean {_label(*CROSSOVER[:2])} crosses {threshold:g}, "
        f"[{CONFIDENCE:.0%} interval]"
    )
    return _rst_table(title, ["view", *views], rows)


def _figure_directive(path, caption: str) -> list[str]:
    """A ``figure`` directive whose image is the file at ``path`` as a data URI (wrapped at 100 characters)."""
    mime = mimetypes.guess_type(str(path))[0] or "image/png"
    uri = f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
    chunks = [uri[i : i + 100] for i in range(0, len(uri), 100)]
    return [
        f".. figure:: {chunks[0]}",
        *(f"   {c}" for c in chunks[1:]),
        "   :width: 100%",
        f"   :alt: {Path(path).name}",
        "",
        f"   {caption}",
        "",
    ]


def landing_rst(
    *,
    study_name: str,
    config_lines: list[str],
    summary: dict,
    overlap: dict,
    threshold: float = CROSSOVER[2],
    figures: Sequence[tuple[str, str]] = (),
) -> str:
    """The report's landing page (reStructuredText).

    In order: the dose-response figures (``figures``: (path of the image,
    caption) each, embedded in the page as a data URI: the report's HTML is
    one file, and Snakemake's ``embeddedfigure`` directive leaves the path
    as it is), per view the table of the
    first headline metric (mean ± 95 % interval per method, n, verdict), the
    crossover table, the summary as short bullets (:func:`summary_lines`
    without the per-cell lines, which the tables show), the other headline
    metrics' tables, and the configuration. Table cells do not wrap and no
    paragraph runs past about 60 words, so the page reads in a browser
    window of 1,400 px.
    """
    lines = [f"Study **{study_name}**", ""]
    for path, caption in figures:
        lines += _figure_directive(path, caption)
    first, *others = HEADLINE
    label = _label(*first)
    lines += [
        f"**{label[0].upper() + label[1:]} per view**: mean ± half-width of the two-sided {CONFIDENCE:.0%} "
        "Student-t interval over seeds (none with n = 1); n: seeds per method.",
        "",
        "- winner: the best mean, and its difference with every other method, paired by seed, has an interval "
        "that excludes 0;",
        "- tie: the best first, then the methods whose paired interval with it includes 0;",
        "- no verdict (n = 1): one seed, so no interval.",
        "",
    ]
    lines += _verdict_tables(summary, overlap, *first)
    lines += _crossover_table(summary, overlap, threshold)
    lines += [
        f"< d: the mean passes {threshold:g} from the ladder's lowest dose d on; > d: it is still below at the "
        "highest dose d; [lower, upper]: where the upper and lower edges of the interval band cross; "
        "n.d.: interval not determined (n = 1).",
        "",
        "**In short**",
        "",
        *(f"- {line}" for line in summary_lines(summary, overlap, threshold, per_cell=False)),
        "",
    ]
    for quantity, metric in others:
        lines += [f"**{_label(quantity, metric)} per view** (as above)", ""]
        lines += _verdict_tables(summary, overlap, quantity, metric)
    lines += ["**Configuration**", "", *(f"- {c}" for c in config_lines), ""]
    return "\n".join(lines) + "\n"
