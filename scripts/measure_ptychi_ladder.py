"""Where the iterative method breaks down: PtyChi's scores over a dose ladder, per view and noise model.

Runs the study's own rules (phases C and D, ``reconstruct_ptychi``) for a
configuration derived from ``config/config.yaml`` (doses, views, seeds, the
base scan step and the LSQML noise model overlaid), one directory per noise
model, then scores each PtyChi reconstruction exactly as the ``score`` step
does (one evaluation region, registration, global phase removed). No network
is trained. The printed table is what choosing the default dose ladder, the
views and PtyChi's noise model rests on:

    .venv/bin/python scripts/measure_ptychi_ladder.py OUT_DIR \\
        [--doses 10 100 1000 10000] [--views dense:1 mid:2 sparse:4] [--step-fraction 0.2] \\
        [--noise-models gaussian poisson] [--seeds 0] [--epochs 100] [--cores 2] [--object-seed S]

Per dose, view, noise model and seed it prints: photons per pattern, photons
per illuminated object pixel (dose / area of the probe's FWHM disc), the
view's nominal linear overlap and its measured group overlap (metric 2,
neighbours), PtyChi's phase MS-SSIM, phase PSNR (dB), amplitude MS-SSIM, its
final loss and wall time. Settings (the noise model, the epochs) are chosen
on an object of the same family drawn with another seed (``--object-seed``),
never on the study object whose test region is scored, and recorded in the
configuration.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def study_config(args, noise_model: str) -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["name"] = f"ptychi-ladder-{noise_model}"
    cfg["doses"] = [float(d) for d in args.doses]
    cfg["seeds"] = [int(s) for s in args.seeds]
    cfg["views"] = {name: {"stride": int(stride)} for name, stride in (v.split(":") for v in args.views)}
    if args.step_fraction is not None:
        cfg["scan"]["step_fraction"] = float(args.step_fraction)
    cfg["ptychi"] = {**cfg.get("ptychi", {}), "noise_model": noise_model, "epochs": int(args.epochs)}
    if args.object_seed is not None:
        cfg["object"]["seed"] = int(args.object_seed)
    return cfg


def run(args, noise_model: str) -> tuple[Path, dict]:
    from ptycho_core.config import study_from_dict

    workdir = Path(args.out) / noise_model
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    cfg = study_config(args, noise_model)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    study = study_from_dict(cfg)
    targets = [
        f"results/phase_f/dose_{label}/view_{view.name}/seed_{seed}/PtyChi/recon.npz"
        for label in study.dose_labels()
        for view in study.views
        for seed in study.seeds
    ]
    cmd = [str(SNAKEMAKE), "-s", str(ROOT / "workflow" / "Snakefile"), "-d", str(workdir), "--cores", str(args.cores), *targets]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"snakemake failed for {noise_model} (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    print(f"{noise_model}: phases C, D and PtyChi in {time.monotonic() - start:.0f} s ({workdir})", flush=True)
    return workdir, {"study": study}


def score_cell(workdir: Path, label: str, view: str, seed: int) -> dict:
    from ptycho_core.evaluate.metrics import score_reconstruction
    from ptycho_core.evaluate.region import evaluation_region
    from ptycho_core.io.datasets import load_diffraction_set, load_ground_truth
    from ptycho_core.io.reconstruction import load_recon
    from ptycho_core.io.view_index import load_view

    r = workdir / "results"
    gt = load_ground_truth(r / "phase_c" / "ground_truth.npz").obj.astype(np.complex128)
    test = load_diffraction_set(r / "phase_c" / f"dose_{label}" / f"seed_{seed}" / "test.npz")
    cell = r / "phase_d" / f"dose_{label}" / f"view_{view}" / f"seed_{seed}"
    v = load_view(cell / "view.npz", n_test=test.n)
    overlap = json.loads((cell / "overlap_metrics.json").read_text())["splits"]["test"]
    D = float(test.metadata["probe"]["fwhm_diameter_px"])
    region = evaluation_region(test, v.test_index, gt.shape, border=D / 2)
    fcell = r / "phase_f" / f"dose_{label}" / f"view_{view}" / f"seed_{seed}" / "PtyChi"
    recon = load_recon(fcell / "recon.npz", gt.shape)
    s = score_reconstruction(gt, recon.obj.astype(np.complex128), region)
    checks = json.loads((fcell / "sentinel.json").read_text())["checks"]
    dose = float(test.metadata["dose"])
    return {
        "dose": dose,
        "photons_per_px": dose / (math.pi * (D / 2) ** 2),
        "linear_overlap": overlap["linear_overlap"],
        "metric_2": overlap["metric_2_neighbours"],
        "phase_ms_ssim": s["phase"]["ms_ssim"],
        "phase_psnr": s["phase"]["psnr"],
        "amplitude_ms_ssim": s["amplitude"]["ms_ssim"],
        "final_loss": checks["final_loss"],
        "seconds": checks["reconstruction_seconds"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="output directory (one study directory per noise model)")
    p.add_argument("--doses", nargs="+", type=float, default=[10.0, 100.0, 1000.0, 10000.0])
    p.add_argument("--views", nargs="+", default=["dense:1", "mid:2", "sparse:4"], help="name:stride, densest first")
    p.add_argument("--step-fraction", type=float, default=0.2, help="base scan step / probe FWHM (None: the default config's)")
    p.add_argument("--noise-models", nargs="+", default=["gaussian", "poisson"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument(
        "--object-seed", type=int, default=None,
        help="draw the object with this seed instead of the study's: choose settings on another object, never on the study's own ground truth",
    )
    args = p.parse_args(argv)

    rows = []
    for noise_model in args.noise_models:
        workdir, info = run(args, noise_model)
        study = info["study"]
        for label in study.dose_labels():
            for view in study.views:
                for seed in study.seeds:
                    rows.append({"noise_model": noise_model, "view": view.name, "seed": seed, **score_cell(workdir, label, view.name, seed)})

    header = f"{'noise':>8} {'view':>7} {'seed':>4} {'photons/pattern':>15} {'photons/px':>10} {'lin.ovl':>7} {'metric2':>7} {'ph MS-SSIM':>10} {'ph PSNR':>7} {'amp MS-SSIM':>11} {'loss':>10} {'s':>6}"
    print(header)
    for r in sorted(rows, key=lambda r: (r["noise_model"], r["view"], r["seed"], r["dose"])):
        print(
            f"{r['noise_model']:>8} {r['view']:>7} {r['seed']:>4} {r['dose']:>15.4g} {r['photons_per_px']:>10.3g} {r['linear_overlap']:>7.2f} {r['metric_2']:>7.3f} "
            f"{r['phase_ms_ssim']:>10.3f} {r['phase_psnr']:>7.2f} {r['amplitude_ms_ssim']:>11.3f} {r['final_loss']:>10.4g} {r['seconds']:>6.1f}"
        )
    out = Path(args.out) / "ladder.json"
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"rows written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
