"""What each training change buys: one cell of the default study, trained and scored per variant.

Each variant is the default configuration (``config/config.yaml``)
restricted to one dose and one view, with a fixed overlay; it runs
simulation, views, training, refinement, reconstruction and scoring in its
own directory through the workflow itself (its own results, logs and
benchmarks, placed by ``ptycho_core.layout``), so every number comes from
the study's own rules, sentinels and scorer. The variants are fixed in
advance; nothing is tuned on the ground truth, which the scorer only reads.
Choosing between variants is done on what a user could see without it (the
validation loss on the held-out strip, the cost), and the test-region scores
report what the choice bought.

    .venv/bin/python scripts/ablate_training.py OUT_DIR [--dose 100000] [--view dense] [--variants a,b] [--cores 2]

Prints, per variant and method: phase MS-SSIM / phase PSNR (dB) / amplitude
MS-SSIM on the stitched test region, and the training job's wall time, the
training samples and best validation loss from its sentinel.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

#: Overlays on the default configuration, applied section by section.
VARIANTS: dict[str, dict] = {
    "default": {},
    "study_object_only": {"object": {"train_seed": None}},
    "training_object": {"object": {"train_seed": 4321}},
    "training_object_3_groups": {"object": {"train_seed": 4321}, "grouping": {"train_groups_per_position": 3}},
}


def variant_config(name: str, dose: float, view: str) -> dict:
    from ptycho_core.study_files import read_study_file

    cfg = read_study_file(ROOT / "config" / "config.yaml", "config/config.yaml")
    cfg["name"] = f"ablation-{name}"
    cfg["doses"] = [float(dose)]
    cfg["views"] = {view: cfg["views"][view]}
    for section, values in VARIANTS[name].items():
        cfg[section] = {**cfg.get(section, {}), **values}
    return cfg


def read_scores(metrics: str | Path) -> dict:
    from ptycho_core.io.records import METRIC_ROWS

    rows = METRIC_ROWS.read(metrics)
    value = {(r["method"], r["quantity"], r["metric"]): r["value"] for r in rows}
    methods = sorted({r["method"] for r in rows})
    return {
        m: (value[(m, "phase", "ms_ssim")], value[(m, "phase", "psnr")], value[(m, "amplitude", "ms_ssim")])
        for m in methods
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--dose", type=float, default=1.0e5)
    ap.add_argument("--view", default="dense")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    from ptycho_core import layout
    from ptycho_core.config import dose_label
    from ptycho_core.methods import TRAINED_METHODS

    cell = layout.Cell(dose_label(args.dose), 0, args.view)
    trained = {m.value for m in TRAINED_METHODS}
    lines = [
        "variant | method | phase MS-SSIM | phase PSNR dB | amplitude MS-SSIM | train s | train samples | best val loss"
    ]
    for name in args.variants.split(","):
        d = (args.out / name).resolve()
        d.mkdir(parents=True, exist_ok=True)
        (d / "study.yaml").write_text(yaml.safe_dump(variant_config(name, args.dose, args.view), sort_keys=False))
        t0 = time.perf_counter()
        cmd = [
            sys.executable, "-m", "snakemake", "-s", str(ROOT / "workflow" / "Snakefile"), "--directory", str(d),
            "--configfile", str(d / "study.yaml"),
            "--workflow-profile", str(ROOT / "workflow" / "profiles" / "default"), "--cores", str(args.cores),
            "all_networks", "all_reconstruct", "all_score",
        ]  # fmt: skip
        with open(d / "snakemake.log", "w") as log:
            rc = subprocess.run(cmd, cwd=d, stdout=log, stderr=subprocess.STDOUT).returncode
        if rc:
            print(f"{name}: snakemake failed (exit {rc}); see {d / 'snakemake.log'}", file=sys.stderr)
            return rc
        print(
            f"{name}: simulation, views, training, refinement, reconstruction and scoring "
            f"in {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
        )
        for method, (pm, pp, am) in read_scores(layout.scores(cell).under(d).metrics).items():
            extra = ""
            # the training job's sentinel (a refined bundle's is not a training job's)
            sentinel = Path(layout.bundle(cell.with_method(method)).under(d).sentinel)
            if method in trained and sentinel.is_file():
                s = json.loads(sentinel.read_text())
                c = s["checks"]
                extra = f" | {s['wall_time_s']:.0f} | {c.get('n_samples_train', '-')} | {c.get('best_val_loss')}"
            lines.append(f"{name} | {method} | {pm:.3f} | {pp:.1f} | {am:.3f}{extra}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
