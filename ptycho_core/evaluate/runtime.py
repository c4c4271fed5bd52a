"""The run-time (cost) table of a study, from Snakemake's ``benchmark:`` files.

Every job of the study but the report's own (``report`` and ``inventory``, whose
benchmark files are written after the table) is read from its benchmark file
(:func:`ptycho_core.layout.benchmark_jobs`): wall seconds (column ``s``) and
peak memory (``max_rss``). Every rule runs with ``threads: 1``, so a job's wall
seconds are its core-seconds. The table (``runtime.csv``,
:data:`ptycho_core.io.records.RUNTIME_TABLE`) has one row for the whole study,
one per rule and one per rule and method for the rules whose jobs take a method
(``train``, ``train_per_dose``, ``refine``, ``reconstruct_ptychi``;
``reconstruct_network`` is one job per cell for every network method), each
with its total, its mean per job and its share of the study per cell replicate:
the total divided by the number of dose x view x seed cells. The study row's
figure is what one more cell replicate costs at the same size;
``scripts/estimate_cost.py`` scales the same benchmarks to another configuration.

Read by the ``report`` rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ptycho_core.evaluate.tables import AggregationError
from ptycho_core.io.records import RUNTIME_COLUMNS, RUNTIME_TABLE

__all__ = ["REPORT_RULES", "job_times", "read_benchmark", "runtime_csv", "runtime_table"]

#: The report's own rules: their benchmark files are written after ``runtime.csv``, so it does not count them.
REPORT_RULES = ("report", "inventory")


def read_benchmark(path: str | Path, rule: str) -> tuple[float, float]:
    """Wall seconds and peak memory (MB; NaN when not measured) of one job from its benchmark file.

    A file's columns include ``s`` (wall seconds) and ``max_rss`` (MB; "NA" or "-" when Snakemake could not
    measure it). A file with several rows (``repeat(...)``) counts as one job whose seconds are the mean of
    its rows. A missing, unreadable or malformed file raises :class:`AggregationError` naming it and ``rule``.
    """
    p = Path(path)
    if not p.is_file():
        raise AggregationError(f"{p}: benchmark file of rule {rule} not found")
    try:
        df = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise AggregationError(f"{p}: benchmark of rule {rule} cannot be read ({exc})") from None
    if "s" not in df.columns or df.empty:
        raise AggregationError(f"{p}: benchmark of rule {rule} lacks column 's' or rows; found {list(df.columns)}")
    s = pd.to_numeric(df["s"], errors="coerce").to_numpy(float)
    if not np.isfinite(s).all() or (s < 0).any():
        raise AggregationError(f"{p}: benchmark of rule {rule}: seconds missing or invalid ({list(df['s'])})")
    rss = float("nan")
    if "max_rss" in df.columns:
        r = pd.to_numeric(df["max_rss"], errors="coerce").to_numpy(float)
        r = r[np.isfinite(r)]
        if r.size:
            rss = float(r.max())
    return float(s.mean()), rss


def job_times(jobs: Iterable[tuple]) -> pd.DataFrame:
    """One row per job: ``rule``, ``method`` (None where the job takes none), ``wall_s``, ``max_rss_mb``.

    ``jobs``: ``(rule, cell, benchmark path)`` triples, as :func:`ptycho_core.layout.benchmark_jobs` lists
    them (the path under the study's directory); ``cell`` is a :class:`~ptycho_core.layout.Cell` or None.
    """
    rows = []
    for rule, cell, path in jobs:
        seconds, rss = read_benchmark(path, rule)
        method = None if cell is None else cell.method
        rows.append({"rule": rule, "method": method, "wall_s": seconds, "max_rss_mb": rss})
    return pd.DataFrame(rows, columns=["rule", "method", "wall_s", "max_rss_mb"])


def _row(scope: str, rule, method, times: pd.DataFrame, cell_replicates: int, study_total: float) -> dict:
    total = float(times["wall_s"].sum())
    rss = times["max_rss_mb"].to_numpy(float)
    rss = rss[np.isfinite(rss)]
    return {
        "scope": scope,
        "rule": rule,
        "method": method,
        "jobs": int(len(times)),
        "cell_replicates": int(cell_replicates),
        "total_wall_s": total,
        "mean_wall_s_per_job": total / len(times),
        "wall_s_per_cell_replicate": total / cell_replicates,
        "percent_of_study": 100.0 * total / study_total if study_total > 0 else 0.0,
        "max_rss_mb": float(rss.max()) if rss.size else float("nan"),
    }


def runtime_table(jobs: Iterable[tuple], *, cell_replicates: int) -> pd.DataFrame:
    """The cost table of a study's jobs (``(rule, cell, benchmark path)``, :func:`job_times`).

    Rows (:data:`~ptycho_core.io.records.RUNTIME_COLUMNS`): first the whole study (``scope`` ``study``, rule
    and method None), then each rule in the order of its first job (the workflow's order), each followed by
    its rows per method where its jobs take one. ``cell_replicates``: the number of dose x view x seed cells,
    the divisor of ``wall_s_per_cell_replicate``. A job whose benchmark file is missing or malformed raises
    :class:`AggregationError` naming the file; so does an empty job list.
    """
    if cell_replicates < 1:
        raise AggregationError(f"runtime_table: cell_replicates must be >= 1, found {cell_replicates}")
    times = job_times(jobs)
    if times.empty:
        raise AggregationError("runtime_table: no jobs")
    study_total = float(times["wall_s"].sum())
    rows = [_row("study", None, None, times, cell_replicates, study_total)]
    for rule in dict.fromkeys(times["rule"]):
        of_rule = times[times["rule"] == rule]
        rows.append(_row("rule", rule, None, of_rule, cell_replicates, study_total))
        methods = of_rule["method"]
        if methods.notna().any():
            if methods.isna().any():
                raise AggregationError(f"runtime_table: rule {rule} has jobs with and without a method")
            for method in dict.fromkeys(methods):
                rows.append(_row("rule_method", rule, method, of_rule[methods == method], cell_replicates, study_total))
    return pd.DataFrame(rows, columns=list(RUNTIME_COLUMNS))


def runtime_csv(table: pd.DataFrame) -> str:
    """``runtime.csv``: :func:`runtime_table` as the :data:`~ptycho_core.io.records.RUNTIME_TABLE` record
    (an empty cell: no rule or method on the study row, no measured memory)."""
    rows = []
    for r in table.to_dict("records"):
        rows.append({k: None if _missing(v) else v for k, v in r.items()})
    return RUNTIME_TABLE.format(rows, source="runtime table")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and not np.isfinite(value))
