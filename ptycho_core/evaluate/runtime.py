"""The run-time table of a study: wall seconds and peak memory per rule, from Snakemake's ``benchmark:`` files.

Read by the ``report`` rule; written as ``runtime.csv`` (:data:`ptycho_core.io.records.RUNTIME_TABLE`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ptycho_core.evaluate.tables import AggregationError
from ptycho_core.io.records import RUNTIME_COLUMNS, RUNTIME_TABLE

__all__ = ["runtime_csv", "runtime_table"]


def runtime_table(benchmark_paths: Mapping[str, Sequence]) -> pd.DataFrame:
    """Run time per rule from Snakemake benchmark TSVs.

    ``benchmark_paths``: rule name -> its benchmark files (one per job).
    A file's columns include ``s`` (wall seconds) and ``max_rss`` (MB; "NA"
    or "-" when Snakemake could not measure it). A file with several rows
    (``repeat(...)``) counts as one job whose seconds are the mean of its
    rows. Returns one row per rule, sorted by rule, with the columns of
    :data:`~ptycho_core.io.records.RUNTIME_COLUMNS`: ``rule``, ``jobs``,
    ``total_seconds``, ``mean_seconds``, ``max_rss_mb`` (max over jobs; NaN
    when no job measured it).
    """
    rows = []
    for rule in sorted(benchmark_paths):
        paths = list(benchmark_paths[rule])
        if not paths:
            raise AggregationError(f"runtime_table: rule {rule} has no benchmark files")
        seconds, rss = [], []
        for p in paths:
            p = Path(p)
            if not p.is_file():
                raise AggregationError(f"{p}: benchmark file of rule {rule} not found")
            try:
                df = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)
            except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
                raise AggregationError(f"{p}: benchmark of rule {rule} cannot be read ({exc})") from None
            if "s" not in df.columns or df.empty:
                raise AggregationError(
                    f"{p}: benchmark of rule {rule} lacks column 's' or rows; found {list(df.columns)}"
                )
            s = pd.to_numeric(df["s"], errors="coerce").to_numpy(float)
            if not np.isfinite(s).all() or (s < 0).any():
                raise AggregationError(f"{p}: benchmark of rule {rule}: seconds missing or invalid ({list(df['s'])})")
            seconds.append(float(s.mean()))
            if "max_rss" in df.columns:
                r = pd.to_numeric(df["max_rss"], errors="coerce").to_numpy(float)
                r = r[np.isfinite(r)]
                if r.size:
                    rss.append(float(r.max()))
        rows.append(
            {
                "rule": rule,
                "jobs": len(seconds),
                "total_seconds": float(sum(seconds)),
                "mean_seconds": float(sum(seconds) / len(seconds)),
                "max_rss_mb": max(rss) if rss else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=list(RUNTIME_COLUMNS))


def runtime_csv(table: pd.DataFrame) -> str:
    """``runtime.csv``: :func:`runtime_table` as the :data:`~ptycho_core.io.records.RUNTIME_TABLE` record
    (no measured memory: empty)."""
    rows = []
    for r in table.to_dict("records"):
        rss = r["max_rss_mb"]
        rows.append({**r, "max_rss_mb": None if rss is None or not np.isfinite(rss) else rss})
    return RUNTIME_TABLE.format(rows, source="runtime table")
