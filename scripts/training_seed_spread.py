"""The networks' spread over training seeds alone, per dose x view x method, from copies of one finished study.

Issue 24 asks for each network's training-seed spread per cell (target: a
standard deviation of the phase score of at most 0.05 at 300 and 3,000
photons). Copy a finished study (config/, results/, benchmarks/, logs/) once
per extra draw, set ``training.seed_draw`` to 1, 2, ... in each copy's
config/config.yaml, and rerun only the trainings and what follows them::

    snakemake --forcerun study_config -- results/study_config.json
    snakemake --touch --rerun-triggers mtime -- all_score
    snakemake --rerun-triggers mtime --forcerun train train_per_dose -- all_score

(a copy may restrict ``doses`` or ``seeds`` to the cells it reruns). Then::

    .venv/bin/python scripts/training_seed_spread.py DRAW0_DIR DRAW1_DIR [DRAW2_DIR ...] \\
        [--methods PtychoPINN,Baseline] [--metric phase:ms_ssim]

prints, per cell, each replicate's scores over the draws, the pooled
within-replicate sd with its degrees of freedom and 95 % upper bound
(:mod:`ptycho_core.evaluate.seed_spread`), and, for scale, the replicate sd
of the first directory (over objects, noise, scan and training seed at
once). Exits 2 when the copies are not draws of one study, or a score does
not rest on the copy's own training.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main() -> int:
    from ptycho_core.evaluate.seed_spread import (
        DrawError,
        check_distinct_trainings,
        check_draws,
        draw_scores,
        pooled_spread,
        read_study,
    )
    from ptycho_core.methods import NETWORK_METHODS

    network = {m.value for m in NETWORK_METHODS}

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("directories", type=Path, nargs="+")
    ap.add_argument("--methods", default=None, help="comma-separated network methods (default: every one)")
    ap.add_argument("--metric", default="phase:ms_ssim", help="quantity:metric of the tidy rows")
    args = ap.parse_args()
    quantity, metric = args.metric.split(":")
    methods = set(args.methods.split(",")) if args.methods else network
    unknown = methods - network
    if len(args.directories) < 2 or unknown:
        print(f"expected at least 2 directories and network methods; unknown methods {sorted(unknown)}")
        return 2
    try:
        studies = [read_study(d) for d in args.directories]
        check_draws(studies, args.directories)
        draws = [draw_scores(d, s, methods, quantity, metric) for d, s in zip(args.directories, studies)]
        check_distinct_trainings(draws, args.directories)
    except DrawError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{quantity} {metric} over training.seed_draw {[s.training.seed_draw for s in studies]}")
    print(
        "dose | view | method | scores per replicate (one per draw; 'failed': the training was refused) | "
        "pooled sd | df | 95 % upper | replicate sd | failed trainings"
    )
    keys = set.intersection(*({*d.values, *d.failed} for d in draws))
    for key in sorted(keys, key=lambda k: (float(k[0]), k[1], k[2])):
        seeds = sorted(set.union(*({*d.values.get(key, {}), *d.failed.get(key, [])} for d in draws)))
        rows = [[d.values.get(key, {}).get(s) for d in draws] for s in seeds]
        complete = np.array([r for r in rows if None not in r], dtype=float).reshape(-1, len(draws))
        n_failed = sum(v is None for r in rows for v in r)
        spread = pooled_spread(complete) if len(complete) else None
        first = [r[0] for r in rows if r[0] is not None]
        replicate_sd = float(np.std(first, ddof=1)) if len(first) > 1 else float("nan")
        per_seed = " / ".join(" ".join("failed" if v is None else f"{v:.3f}" for v in r) for r in rows)
        numbers = "- | - | -" if spread is None else f"{spread.sd:.3f} | {spread.df} | {spread.upper95:.3f}"
        print(f"{key[0]} | {key[1]} | {key[2]} | {per_seed} | {numbers} | {replicate_sd:.3f} | {n_failed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
