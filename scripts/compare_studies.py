"""What a cost cut did to the scores: two finished studies of the same grid and seeds, compared cell by cell.

Issue 25 asks that no cut trade quality away unseen: each cut (width, epochs,
patience, steps) is measured on objects of the family the study does not
score (``object.seed`` and ``object.train_seed`` of a held-out draw, never
the study's), and each method's score must move by less than its replicate
spread. This script reads the per-cell ``metrics.csv`` of a reference study
and of a cut study (same doses, views and seeds; every replicate draws its
own objects, so seed s is the same objects, scan and noise in both) and
prints, per dose x view x method:

- the reference mean and the cut mean of the metric over the seeds;
- the replicate spread: the standard deviation over seeds of the reference;
- the mean paired difference (cut - reference) over seeds, and that
  difference in units of the replicate spread (|d| / sd < 1: within the
  spread).

Also, per method and rule, the job time of both studies from their
``benchmarks/`` files (seconds per cell-replicate; each file read by
:func:`ptycho_core.evaluate.runtime.read_benchmark`).

    .venv/bin/python scripts/compare_studies.py REFERENCE_DIR CUT_DIR [--metric phase:ms_ssim]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def read_cells(directory: Path, quantity: str, metric: str) -> dict[tuple[str, str, str], dict[int, float]]:
    """{(dose label, view, method): {seed: value}} from every cell's metrics.csv under ``directory``."""
    from ptycho_core.io.records import METRIC_ROWS

    out: dict = defaultdict(dict)
    for path in sorted((directory / "results" / "score").glob("dose_*/view_*/seed_*/metrics.csv")):
        dose, view, seed = (p.split("_", 1)[1] for p in path.parts[-4:-1])
        for row in METRIC_ROWS.read(path):
            if row["quantity"] == quantity and row["metric"] == metric:
                out[(dose, view, row["method"])][int(seed)] = float(row["value"])
    if not out:
        raise SystemExit(f"{directory}: no results/score/dose_*/view_*/seed_*/metrics.csv")
    return out


def job_seconds(directory: Path) -> dict[str, float]:
    """Summed job seconds per rule, or rule/method for a job of one method (its benchmark file is named after
    the method), over every benchmark file under ``directory``."""
    from ptycho_core.evaluate.runtime import read_benchmark
    from ptycho_core.methods import Method

    methods = {m.value for m in Method}
    totals: dict[str, float] = defaultdict(float)
    for tsv in (directory / "benchmarks").rglob("*.tsv"):
        rel = tsv.relative_to(directory / "benchmarks")
        rule = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        key = f"{rule}/{tsv.stem}" if tsv.stem in methods else rule
        totals[key] += read_benchmark(tsv, rule)[0]
    return dict(totals)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reference", type=Path)
    ap.add_argument("cut", type=Path)
    ap.add_argument("--metric", default="phase:ms_ssim", help="quantity:metric of the tidy rows")
    args = ap.parse_args()
    quantity, metric = args.metric.split(":")
    ref, cut = read_cells(args.reference, quantity, metric), read_cells(args.cut, quantity, metric)
    print(f"{quantity} {metric}: reference {args.reference}, cut {args.cut}")
    print("dose | view | method | n | reference mean | cut mean | replicate sd | mean paired diff | diff / sd")
    worst = 0.0
    for key in sorted(set(ref) & set(cut), key=lambda k: (float(k[0]), k[1], k[2])):
        seeds = sorted(set(ref[key]) & set(cut[key]))
        r = np.array([ref[key][s] for s in seeds])
        c = np.array([cut[key][s] for s in seeds])
        sd = float(np.std(r, ddof=1)) if len(seeds) > 1 else float("nan")
        d = float(np.mean(c - r))
        units = abs(d) / sd if sd > 0 else float("nan")
        worst = max(worst, units) if np.isfinite(units) else worst
        print(
            f"{key[0]} | {key[1]} | {key[2]} | {len(seeds)} | {r.mean():.3f} | {c.mean():.3f} | {sd:.3f} | "
            f"{d:+.3f} | {units:.2f}"
        )
    missing = sorted(set(ref) ^ set(cut))
    if missing:
        print(f"cells in one study only: {missing}")
    print(f"largest |paired difference| / replicate sd: {worst:.2f}")
    t_ref, t_cut = job_seconds(args.reference), job_seconds(args.cut)
    n_ref, n_cut = (sum(len(v) for k, v in study.items() if k[2] == "PtyChi") for study in (ref, cut))
    print(f"job seconds per cell-replicate (reference {n_ref}, cut {n_cut} cell-replicates):")
    for key in sorted(set(t_ref) | set(t_cut)):
        a = t_ref.get(key, 0.0) / max(n_ref, 1)
        b = t_cut.get(key, 0.0) / max(n_cut, 1)
        print(f"  {key:32s} {a:8.1f} {b:8.1f}")
    print(f"  {'total':32s} {sum(t_ref.values()) / max(n_ref, 1):8.1f} {sum(t_cut.values()) / max(n_cut, 1):8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
