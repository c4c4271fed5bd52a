"""The study's overlap table: the measured overlap of every view, one row per view x dose x seed x split.

Collected by the ``report`` rule from the phase D ``overlap_metrics.json``
files (:mod:`ptycho_core.sampling.overlap`) into ``results/phase_g/overlap.csv``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

__all__ = ["overlap_summary"]


def overlap_summary(metric_paths: dict) -> str:
    """CSV text: view, dose, seed, split and the measured overlap metrics from phase D."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    keys = ["n_before_view", "n_view", "n_groups", "linear_overlap", "metric_1_group", "metric_2_neighbours", "metric_3_group_centres", "metric_3_pairs"]
    w.writerow(["view", "dose", "seed", "split", *keys])
    for (view, dose, seed), path in sorted(metric_paths.items()):
        m = json.loads(Path(path).read_text())
        for split in ("train", "test"):
            w.writerow([view, dose, seed, split, *(m["splits"][split][k] for k in keys)])
    return buf.getvalue()
