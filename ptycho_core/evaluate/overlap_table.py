"""The study's overlap table: the measured overlap of every view, one row per view x dose x seed x split.

Collected by the ``report`` rule from the views step's ``overlap_metrics.json``
files (:data:`ptycho_core.io.records.OVERLAP_RECORD`, measured by
:mod:`ptycho_core.sampling.overlap`) into the report's ``overlap.csv``
(:data:`ptycho_core.io.records.OVERLAP_TABLE`).
"""

from __future__ import annotations

from ptycho_core.io.records import OVERLAP_RECORD, OVERLAP_TABLE, OVERLAP_TABLE_COLUMNS

__all__ = ["overlap_summary"]


def overlap_summary(metric_paths: dict) -> str:
    """CSV text: view, dose, seed, split and the measured overlap metrics of each
    ``{(view, dose, seed): overlap_metrics.json}``."""
    keys = OVERLAP_TABLE_COLUMNS[4:]
    rows = []
    for (view, dose, seed), path in sorted(metric_paths.items()):
        m = OVERLAP_RECORD.read(path)
        for split in ("train", "test"):
            rows.append((view, dose, seed, split, *(m["splits"][split][k] for k in keys)))
    return OVERLAP_TABLE.format(rows, source="overlap table")
