"""Verdicts with their evidence: per-cell paired comparisons and interpolated crossover doses with intervals.

Everything here is computed from the report's summary records
(:func:`ptycho_core.evaluate.tables.summarise`), which carry each group's
per-seed ``values`` beside its ``seeds``; the records of this module are
written into the report's JSON (``verdicts`` and ``crossovers``,
:data:`ptycho_core.io.records.SUMMARY_DOCUMENT`) and every text view
(:mod:`ptycho_core.evaluate.headline`) formats them with
:func:`verdict_text` and :func:`crossover_text`.

**Verdict of a cell** (one dose x view, one metric of :data:`VERDICT_METRICS`).
The *best* method is the one with the best mean over its seeds (highest for a
higher-is-better metric, lowest for an error). For every other method the
difference ``best - other`` is taken per replicate seed present for both
(paired), then its mean and two-sided 95 % Student-t interval
(:func:`ptycho_core.evaluate.tables.t_half_width`, n >= 2 pairs). The other
method is *separated* from the best when that interval lies wholly on the
best's side of zero.

- ``winner``: every other method is separated from the best;
- ``tie``: some pair has an interval that includes zero; the cell names the
  best and the methods not separable from it (``not_separable``);
- ``no verdict``: some pair has fewer than 2 paired seeds, so no interval
  (``"no verdict (n = 1)"`` in a study with one seed); never a winner.

A method that lost runs keeps its own ``n`` (and seeds) in the record; it is
compared on the seeds it shares with the best, and the pair's ``n`` says how
many. A method with no run at all in a cell (n = 0) is listed with ``n = 0``
and left out of the comparison.

**Crossover dose** (per view and method; :data:`CROSSOVER`: quantity, metric,
threshold). Going up the dose ladder, the *last crossing from below*: the last
ladder step d_i -> d_i+1 with mean(d_i) < threshold <= mean(d_i+1); the dose is
interpolated linearly in log10 dose,
``log10 d = log10 d_i + (t - m_i) / (m_i+1 - m_i) * (log10 d_i+1 - log10 d_i)``.
With the mean at or above the threshold at every dose the crossover is
*below the ladder* (written ``< d_1``); with the mean below it at the highest
dose it is *above the ladder* (``> d_k``). The interval applies the same rule
to the edges of the 95 % band, mean -+ half-width at each dose: the lower edge
gives the upper bound of the dose, the upper edge the lower bound. An edge
that does not cross within the ladder gives an open bound (``< d_1`` or
``> d_k``); with n < 2 seeds at some dose there is no band and the interval is
*not determined* (the point estimate is still given). Each of the estimate,
the lower and the upper bound is ``{"dose": d, "relation": r}`` with ``r``
``"="`` (interpolated), ``"<"`` (below the ladder's lowest dose ``d``) or
``">"`` (above its highest dose ``d``).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from ptycho_core.config import dose_label
from ptycho_core.evaluate.tables import CONFIDENCE, direction, t_half_width
from ptycho_core.io.records import HEADLINE_METRICS
from ptycho_core.methods import Method

__all__ = [
    "CROSSOVER",
    "NO_VERDICT",
    "TIE",
    "VERDICT_METRICS",
    "WINNER",
    "cell_verdicts",
    "crossing_dose",
    "crossover_records",
    "crossover_text",
    "dose_text",
    "evidence",
    "methods_of",
    "paired_difference",
    "point_text",
    "verdict_text",
]

#: The quality threshold that defines a method's crossover dose: (quantity, metric, threshold).
CROSSOVER = ("phase", "ms_ssim", 0.8)
#: (quantity, metric) pairs that get a verdict per cell: the headline metrics.
VERDICT_METRICS = HEADLINE_METRICS
WINNER, TIE, NO_VERDICT = "winner", "tie", "no verdict"


def methods_of(summary: dict) -> list[str]:
    """The methods of the summary, in registry order (ids unknown to the registry after them, sorted)."""
    present = {r["method"] for r in summary["records"]}
    known = [m.value for m in Method if m.value in present]
    return known + sorted(present - set(known))


def _ladder(summary: dict) -> tuple[list[float], list[str]]:
    doses = sorted({float(r["dose"]) for r in summary["records"]})
    views = list(dict.fromkeys(r["view"] for r in summary["records"]))
    return doses, views


def _index(summary: dict) -> dict:
    return {(r["dose"], r["view"], r["method"], r["quantity"], r["metric"]): r for r in summary["records"]}


def _values(record: dict) -> dict[int, float]:
    """{seed: value} of a summary record."""
    if "values" not in record:
        raise ValueError(
            "summary record lacks per-seed 'values' (written by summarise since summary version 2): "
            f"dose {record['dose']}, view {record['view']}, method {record['method']}"
        )
    return dict(zip((int(s) for s in record["seeds"]), (float(v) for v in record["values"]), strict=True))


def paired_difference(best: dict, other: dict, metric_direction: str) -> dict:
    """``best - other`` paired by seed (the seeds both summary records hold): n, seeds, mean, std, interval and
    whether the interval lies wholly on the best's side of zero (``separated``; None without an interval)."""
    a, b = _values(best), _values(other)
    seeds = sorted(set(a) & set(b))
    diff = np.array([a[s] - b[s] for s in seeds], dtype=float)
    n = int(diff.size)
    mean = float(diff.mean()) if n else None
    std = float(diff.std(ddof=1)) if n >= 2 else None
    half = t_half_width(std, n)
    interval = None if half is None else [mean - half, mean + half]
    separated = None
    if interval is not None:
        separated = bool(interval[0] > 0) if metric_direction == "higher" else bool(interval[1] < 0)
    return {
        "other": other["method"],
        "n": n,
        "seeds": seeds,
        "mean": mean,
        "std": std,
        "interval": interval,
        "separated": separated,
    }


def _method_stats(record: dict | None) -> dict:
    if record is None:
        return {"n": 0, "seeds": [], "mean": None, "half_width": None, "interval": None, "failed": 0}
    half = t_half_width(record["std"], record["n"])
    mean = float(record["mean"])
    return {
        "n": int(record["n"]),
        "seeds": [int(s) for s in record["seeds"]],
        "mean": mean,
        "half_width": half,
        "interval": None if half is None else [mean - half, mean + half],
        "failed": len(record["failed_seeds"]),
    }


def _verdict(methods: dict, records: dict, metric_direction: str) -> dict:
    """The verdict fields of one cell from its methods' stats and summary records (see the module docs)."""
    present = [m for m, s in methods.items() if s["n"] >= 1]
    if len(present) < 2:
        return {
            "best": present[0] if present else None,
            "pairs": [],
            "verdict": NO_VERDICT,
            "winner": None,
            "not_separable": [],
        }
    sign = 1.0 if metric_direction == "higher" else -1.0
    best = max(present, key=lambda m: (sign * methods[m]["mean"], -present.index(m)))
    pairs = [paired_difference(records[best], records[m], metric_direction) for m in present if m != best]
    not_separable = [p["other"] for p in pairs if p["separated"] is not True]
    if any(p["interval"] is None for p in pairs):
        verdict, winner = NO_VERDICT, None
    elif not not_separable:
        verdict, winner = WINNER, best
    else:
        verdict, winner = TIE, None
    return {"best": best, "pairs": pairs, "verdict": verdict, "winner": winner, "not_separable": not_separable}


def verdict_text(v: dict) -> str:
    """A cell's verdict in a few words: ``"winner: PtyChi"``, ``"tie: PtyChi, Baseline"`` (the best first, then
    the methods not separable from it) or ``"no verdict (n = 1)"`` (the fewest paired seeds of the cell)."""
    if v["verdict"] == WINNER:
        return f"winner: {v['winner']}"
    if v["verdict"] == TIE:
        return "tie: " + ", ".join([v["best"], *v["not_separable"]])
    ns = [p["n"] for p in v["pairs"]]
    return f"no verdict (n = {min(ns)})" if ns else "no verdict (one method)"


def cell_verdicts(summary: dict, metrics: Iterable[tuple[str, str]] = VERDICT_METRICS) -> list[dict]:
    """One verdict record per metric x view x dose (in that order, doses ascending; see the module docs).

    Each record: ``dose``, ``dose_label``, ``view``, ``quantity``, ``metric``,
    ``direction``, ``confidence``, ``methods`` ({method: n, seeds, mean,
    half_width, interval, failed} for every method of the summary; n = 0 where a
    method has no run in the cell; ``failed``: how many of its n runs failed,
    scored as produced and kept in the statistics), ``best``, ``pairs`` (best - other per
    method compared: other, n, seeds, mean, std, interval, separated),
    ``verdict`` (``"winner"``, ``"tie"`` or ``"no verdict"``), ``winner``
    (None unless the verdict is ``"winner"``), ``not_separable`` and
    ``text`` (:func:`verdict_text`).
    """
    idx = _index(summary)
    doses, views = _ladder(summary)
    methods = methods_of(summary)
    out = []
    for quantity, metric in metrics:
        metric_direction = direction(metric)
        for view in views:
            for dose in doses:
                records = {m: idx.get((dose, view, m, quantity, metric)) for m in methods}
                if not any(records.values()):
                    continue
                stats = {m: _method_stats(r) for m, r in records.items()}
                rec = {
                    "dose": dose,
                    "dose_label": dose_label(dose),
                    "view": view,
                    "quantity": quantity,
                    "metric": metric,
                    "direction": metric_direction,
                    "confidence": CONFIDENCE,
                    "methods": stats,
                    **_verdict(stats, records, metric_direction),
                }
                rec["text"] = verdict_text(rec)
                out.append(rec)
    return out


def evidence(
    summary: dict,
    crossover: tuple[str, str, float] = CROSSOVER,
    metrics: Iterable[tuple[str, str]] = VERDICT_METRICS,
) -> dict:
    """``{"verdicts": cell_verdicts(...), "crossovers": crossover_records(...)}`` of the summary: what the report's
    JSON holds beside the statistics (:func:`ptycho_core.evaluate.tables.write_report_data` takes it as keywords)."""
    return {"verdicts": cell_verdicts(summary, metrics), "crossovers": crossover_records(summary, crossover)}


# --------------------------------------------------------------------------
# crossover doses
# --------------------------------------------------------------------------


def crossing_dose(doses: Sequence[float], values: Sequence[float], threshold: float) -> dict:
    """Where ``values`` (over the ascending ladder ``doses``) last cross ``threshold`` from below, interpolated
    linearly in log10 dose: ``{"dose": d, "relation": "="}``; ``{"dose": doses[0], "relation": "<"}`` when every
    value is at or above the threshold (below the ladder), ``{"dose": doses[-1], "relation": ">"}`` when the value
    at the highest dose is below it (above the ladder)."""
    d = [float(x) for x in doses]
    v = [float(x) for x in values]
    if not d or len(d) != len(v) or any(b <= a for a, b in zip(d, d[1:])):
        raise ValueError(f"crossing_dose: expected one value per dose of an ascending ladder, found {d} and {v}")
    if v[-1] < threshold:
        return {"dose": d[-1], "relation": ">"}
    below = [i for i, x in enumerate(v) if x < threshold]
    if not below:
        return {"dose": d[0], "relation": "<"}
    i = below[-1]  # v[i] < threshold <= v[i + 1]
    frac = (threshold - v[i]) / (v[i + 1] - v[i])
    x0, x1 = math.log10(d[i]), math.log10(d[i + 1])
    return {"dose": float(10 ** (x0 + frac * (x1 - x0))), "relation": "="}


def crossover_records(summary: dict, crossover: tuple[str, str, float] = CROSSOVER) -> list[dict]:
    """One crossover record per view x method (see the module docs).

    Each record: ``view``, ``method``, ``quantity``, ``metric``,
    ``threshold``, ``confidence``, ``doses`` (the ladder doses the method has
    runs at), ``n`` (the fewest seeds at any of them), ``estimate``,
    ``lower``, ``upper`` (``{"dose", "relation"}``; the bounds None when the
    interval is not determined), ``determined`` (both bounds interpolated
    within the ladder), ``note`` (why not, else None) and ``text``
    (:func:`crossover_text`).
    """
    quantity, metric, threshold = crossover
    idx = _index(summary)
    doses, views = _ladder(summary)
    out = []
    for view in views:
        for m in methods_of(summary):
            recs = [(d, idx[(d, view, m, quantity, metric)]) for d in doses if (d, view, m, quantity, metric) in idx]
            if not recs:
                continue
            ladder = [d for d, _ in recs]
            means = np.array([r["mean"] for _, r in recs], dtype=float)
            halves = [t_half_width(r["std"], r["n"]) for _, r in recs]
            n = min(int(r["n"]) for _, r in recs)
            estimate = crossing_dose(ladder, means, threshold)
            if any(h is None for h in halves):
                lower = upper = None
                note = f"n = {n}: no interval, not determined"
            else:
                h = np.array(halves, dtype=float)
                lower = crossing_dose(ladder, means + h, threshold)  # the upper edge crosses first
                upper = crossing_dose(ladder, means - h, threshold)  # the lower edge crosses last
                open_bound = lower["relation"] != "=" or upper["relation"] != "="
                note = "a band edge does not cross within the ladder: open bound" if open_bound else None
            rec = {
                "view": view,
                "method": m,
                "quantity": quantity,
                "metric": metric,
                "threshold": float(threshold),
                "confidence": CONFIDENCE,
                "doses": ladder,
                "n": n,
                "estimate": estimate,
                "lower": lower,
                "upper": upper,
                "determined": note is None,
                "note": note,
            }
            rec["text"] = crossover_text(rec)
            out.append(rec)
    return out


def dose_text(d: float, digits: int = 2) -> str:
    """A dose for reading: ``digits`` significant figures, plain below 1e5 (``"3"``, ``"45"``, ``"1200"``,
    ``"0.14"``), the dose label's exponent form above (``"2.5e5"``)."""
    d = float(f"{float(d):.{digits}g}")
    if 0.01 <= d < 1e5:
        return f"{d:g}"
    return dose_label(d)


def point_text(p: dict) -> str:
    """A dose point of a crossover record: ``"1200"`` (interpolated, 2 significant figures), ``"< 3"`` or
    ``"> 3000"`` (an open bound: the ladder dose in full)."""
    exact = p["relation"] != "="  # an open bound is a ladder dose: give it in full
    text = dose_text(p["dose"], digits=6 if exact else 2)
    return text if p["relation"] == "=" else f"{p['relation']} {text}"


def crossover_text(rec: dict, *, short: bool = False) -> str:
    """A crossover in a few characters: ``"120 [45, 310]"`` (estimate [lower, upper], photons per pattern),
    ``"< 3 [< 3, 45]"`` with open bounds, ``"> 3000"`` when the whole band lies above the ladder, and
    ``"120 (interval not determined)"`` without an interval (``short``: ``"120 (n.d.)"``)."""
    est = point_text(rec["estimate"])
    if rec["lower"] is None or rec["upper"] is None:
        return f"{est} (n.d.)" if short else f"{est} (interval not determined)"
    lo, hi = point_text(rec["lower"]), point_text(rec["upper"])
    if lo == hi == est and rec["estimate"]["relation"] != "=":
        return est
    return f"{est} [{lo}, {hi}]"
