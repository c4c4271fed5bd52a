"""Quality of the bfloat16 fast path against float32: the PtychoPINN correctness case over replicate seeds.

Runs the case of tests/test_pinn_correctness.py (simulation, views,
training, refinement and reconstruction through the workflow's own steps:
PtychoPINN trained, PtychoPINN_TTR refined on the test counts, both stitched
and scored on the test region) once per replicate seed and per
``training.precision``. The replicate seed changes the scan jitter, the
Poisson noise and the training seed, exactly as a study's ``seeds`` do, so
the spread over seeds at float32 is the run-to-run noise of these scores;
the fast path is unchanged in quality when its mean lies within that
spread. Prints one line per run, then mean and standard deviation per
precision and method, and the difference of the means in units of the
float32 standard deviation.

    .venv/bin/python scripts/compare_precision.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("PtychoPINN", "PtychoPINN_TTR")
FIGURES = (("phase", "ms_ssim"), ("phase", "mae"), ("amplitude", "ms_ssim"), ("amplitude", "mae"))


def load_case():
    # the test module imports its sibling helper (tests/cells.py) as pytest would find it
    sys.path.insert(0, str(ROOT / "tests"))
    spec = importlib.util.spec_from_file_location("pinn_correctness", ROOT / "tests/test_pinn_correctness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    args = ap.parse_args()
    case = load_case()
    rows = []
    for precision in args.precisions:
        for seed in args.seeds:
            raw = copy.deepcopy(case.STUDY)
            raw["seeds"] = [seed]
            raw["training"]["precision"] = precision
            t = time.perf_counter()
            with tempfile.TemporaryDirectory() as d:
                out = case.run_case(Path(d), raw)
            wall = time.perf_counter() - t
            for method in METHODS:
                s = out["scores"][method]
                row = {"precision": precision, "seed": seed, "method": method, "wall_s": wall}
                row.update({f"{q}_{m}": float(s[q][m]) for q, m in FIGURES})
                row["fit_s"] = (
                    out["train"]["fit_seconds"] if method == "PtychoPINN" else out["refine"]["refine_seconds"]
                )
                row["epochs"] = out["train"]["epochs_run"] if method == "PtychoPINN" else out["refine"]["passes_run"]
                rows.append(row)
                print(
                    f"{precision:15} seed {seed} {method:15} "
                    + " ".join(f"{q} {m} {row[f'{q}_{m}']:.4f}" for q, m in FIGURES)
                    + f"  epochs {row['epochs']}, {row['fit_s']:.0f} s",
                    flush=True,
                )
    print("\nmean +- standard deviation over seeds", args.seeds)
    keys = [f"{q}_{m}" for q, m in FIGURES] + ["fit_s"]
    stats = {}
    for precision in args.precisions:
        for method in METHODS:
            sel = [r for r in rows if r["precision"] == precision and r["method"] == method]
            stats[precision, method] = {
                k: (np.mean([r[k] for r in sel]), np.std([r[k] for r in sel], ddof=1) if len(sel) > 1 else np.nan)
                for k in keys
            }
            print(
                f"{precision:15} {method:15} "
                + "  ".join(f"{k} {m:.4f} +- {sd:.4f}" for k, (m, sd) in stats[precision, method].items())
            )
    if len(args.precisions) == 2:
        ref, fast = args.precisions
        print(f"\n{fast} - {ref}, in units of the {ref} standard deviation over seeds")
        for method in METHODS:
            parts = []
            for k in keys[:-1]:
                d = stats[fast, method][k][0] - stats[ref, method][k][0]
                sd = stats[ref, method][k][1]
                parts.append(f"{k} {d:+.4f} ({d / sd:+.2f} sd)" if sd > 0 else f"{k} {d:+.4f}")
            speed = stats[ref, method]["fit_s"][0] / stats[fast, method]["fit_s"][0]
            print(f"{method:15} " + "  ".join(parts) + f"  fit/refine time ratio {speed:.2f}x")


if __name__ == "__main__":
    main()
