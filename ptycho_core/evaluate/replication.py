"""Whether two replicate sets of one study agree: the verdicts and crossover doses of two reports, side by side.

A study run twice with disjoint replicate seeds (say 0-2 and 3-5) must not
state anything in one run that the other contradicts. This module compares
the evidence of two reports (the ``verdicts`` and ``crossovers`` of their
``summary.json``, :mod:`ptycho_core.evaluate.verdicts`) and gives every
statement one of four statuses:

**Cell verdicts** (per metric x view x dose). A report *states* an ordering
``X > Y`` for every pair it separated: the 95 % paired interval of
``best - other`` excludes zero.

- ``contradicts``: one report states ``X > Y`` and the other ``Y > X``
  (different winners are the plainest case);
- ``agrees``: the same verdict, that is the same winner, or a tie of the same
  best method with the same methods not separable from it;
- ``differs``: neither, e.g. a winner in one report and a tie in the other
  with no ordering reversed: the second set did not replicate a separation,
  but says nothing against it;
- ``not compared``: either report has no verdict there (fewer than two paired
  seeds, or the cell is missing).

**Crossover doses** (per view x method). Each report gives an interval,
possibly open (``< d``: below its lowest dose; ``> d``: above its highest).

- ``contradicts``: the two intervals are disjoint;
- ``agrees``: they overlap;
- ``not compared``: either interval is not determined (n < 2) or missing.

Only the intervals are compared: two estimates differ in every replicate set,
and their intervals say by how much they may.
"""

from __future__ import annotations

import math
from typing import Iterator

from ptycho_core.evaluate.verdicts import NO_VERDICT

__all__ = ["AGREES", "CONTRADICTS", "DIFFERS", "NOT_COMPARED", "compare_crossovers", "compare_verdicts", "replication"]

AGREES, DIFFERS, CONTRADICTS, NOT_COMPARED = "agrees", "differs", "contradicts", "not compared"


def stated_orderings(verdict: dict) -> set[tuple[str, str]]:
    """The ``(better, worse)`` pairs a cell verdict states: the best method over each method separated from it."""
    return {(verdict["best"], p["other"]) for p in verdict.get("pairs", []) if p.get("separated") is True}


def _verdict_status(a: dict | None, b: dict | None) -> str:
    if a is None or b is None or NO_VERDICT in (a["verdict"], b["verdict"]):
        return NOT_COMPARED
    oa, ob = stated_orderings(a), stated_orderings(b)
    if any((worse, better) in ob for better, worse in oa):
        return CONTRADICTS
    same = a["verdict"] == b["verdict"] and a["best"] == b["best"]
    if same and set(a.get("not_separable", [])) == set(b.get("not_separable", [])):
        return AGREES
    return DIFFERS


def _matched(a: list[dict], b: list[dict], fields: tuple[str, ...]) -> Iterator[tuple[dict, dict | None, dict | None]]:
    """Records of ``a`` and ``b`` matched on ``fields``, every key of either once (``a``'s order first):
    ``({field: value}, record of a or None, record of b or None)``."""
    ia = {tuple(r[f] for f in fields): r for r in a}
    ib = {tuple(r[f] for f in fields): r for r in b}
    for key in list(ia) + [k for k in ib if k not in ia]:
        yield dict(zip(fields, key)), ia.get(key), ib.get(key)


def _row(key: dict, ra: dict | None, rb: dict | None, status: str) -> dict:
    return {**key, "a": ra["text"] if ra else None, "b": rb["text"] if rb else None, "status": status}


def compare_verdicts(a: list[dict], b: list[dict]) -> list[dict]:
    """One row per metric x view x dose of either report: ``quantity``, ``metric``, ``view``, ``dose``, ``a``,
    ``b`` (the verdict texts, None where missing) and ``status``."""
    return [
        _row(key, ra, rb, _verdict_status(ra, rb))
        for key, ra, rb in _matched(a, b, ("quantity", "metric", "view", "dose"))
    ]


def _bound(point: dict, side: str) -> float:
    """The extreme dose a crossover bound allows on ``side`` ("low" or "high"): an open bound reaches 0 or infinity."""
    d, rel = float(point["dose"]), point["relation"]
    if rel == "=":
        return d
    if rel == "<":
        return 0.0 if side == "low" else d
    if rel == ">":
        return d if side == "low" else math.inf
    raise ValueError(f"crossover bound: relation expected '=', '<' or '>', found {rel!r}")


def crossover_range(rec: dict) -> tuple[float, float] | None:
    """The doses a crossover record's interval allows, ``(low, high)``; None when it is not determined."""
    if rec.get("lower") is None or rec.get("upper") is None:
        return None
    return _bound(rec["lower"], "low"), _bound(rec["upper"], "high")


def _crossover_status(a: dict | None, b: dict | None) -> str:
    xa = crossover_range(a) if a else None
    xb = crossover_range(b) if b else None
    if xa is None or xb is None:
        return NOT_COMPARED
    return CONTRADICTS if xa[1] < xb[0] or xb[1] < xa[0] else AGREES


def compare_crossovers(a: list[dict], b: list[dict]) -> list[dict]:
    """One row per view x method of either report: ``view``, ``method``, ``a``, ``b`` (the crossover texts, None
    where missing) and ``status``."""
    return [_row(key, ra, rb, _crossover_status(ra, rb)) for key, ra, rb in _matched(a, b, ("view", "method"))]


def replication(summary_a: dict, summary_b: dict) -> dict:
    """``{"verdicts": [...], "crossovers": [...], "counts": {status: n}}`` of two report summaries (the documents of
    :data:`ptycho_core.io.records.SUMMARY_DOCUMENT`)."""
    verdicts = compare_verdicts(summary_a["verdicts"], summary_b["verdicts"])
    crossovers = compare_crossovers(summary_a["crossovers"], summary_b["crossovers"])
    counts = {s: 0 for s in (AGREES, DIFFERS, CONTRADICTS, NOT_COMPARED)}
    for row in verdicts + crossovers:
        counts[row["status"]] += 1
    return {"verdicts": verdicts, "crossovers": crossovers, "counts": counts}
