"""Where the iterative method breaks down: PtyChi's scores over a dose ladder, per view and noise model.

Runs the study's own rules (simulation, views, ``reconstruct_ptychi``) for a
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
view's nominal linear overlap and its measured neighbour overlap (each
position with its K - 1 nearest), PtyChi's phase MS-SSIM, phase PSNR (dB), amplitude MS-SSIM, its
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
    from ptycho_core.study_files import read_study_file

    cfg = read_study_file(ROOT / "config" / "config.yaml", "config/config.yaml")
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
    from ptycho_core import layout
    from ptycho_core.config import study_from_dict
    from ptycho_core.methods import Method

    workdir = Path(args.out) / noise_model
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    cfg = study_config(args, noise_model)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    study = study_from_dict(cfg)
    # the PtyChi reconstructions (paths relative to the study directory);
    # Snakemake runs the simulation and views they need
    targets = [layout.reconstruction(cell.with_method(Method.PTYCHI)).recon for cell in layout.cells(study)]
    cmd = [
        str(SNAKEMAKE),
        "-s",
        str(ROOT / "workflow" / "Snakefile"),
        "-d",
        str(workdir),
        "--cores",
        str(args.cores),
        *targets,
    ]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"snakemake failed for {noise_model} (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    print(
        f"{noise_model}: simulation, views and PtyChi reconstruction in {time.monotonic() - start:.0f} s ({workdir})",
        flush=True,
    )
    return workdir, {"study": study}


def score_cell(workdir: Path, study, cell) -> dict:
    """Score the PtyChi reconstruction of one ``layout.Cell`` of the study in ``workdir``."""
    from ptycho_core import layout
    from ptycho_core.evaluate.metrics import score_reconstruction
    from ptycho_core.evaluate.region import evaluation_region
    from ptycho_core.io.datasets import load_diffraction_set, load_ground_truth
    from ptycho_core.io.reconstruction import load_recon
    from ptycho_core.io.records import OVERLAP_RECORD
    from ptycho_core.io.view_index import load_view
    from ptycho_core.methods import Method

    gt = load_ground_truth(layout.ground_truth(cell.seed).under(workdir).obj).obj.astype(np.complex128)
    test = load_diffraction_set(layout.simulated(cell).under(workdir).test)
    view_files = layout.view(cell).under(workdir)
    overlap = OVERLAP_RECORD.read(view_files.overlap)["splits"]["test"]
    D = float(test.metadata["probe"]["fwhm_diameter_px"])
    rows = {
        name: load_view(f.under(workdir).view, n_test=test.n).test_index
        for name, f in layout.region_views(study, cell).items()
    }
    region = evaluation_region(test, rows, gt.shape, border=D / 2)  # as the score step
    ptychi = layout.reconstruction(cell.with_method(Method.PTYCHI)).under(workdir)
    recon = load_recon(ptychi.recon, gt.shape)
    s = score_reconstruction(gt, recon.obj.astype(np.complex128), region)
    checks = json.loads(Path(ptychi.sentinel).read_text())["checks"]
    dose = float(test.metadata["dose"])
    return {
        "dose": dose,
        "photons_per_px": dose / (math.pi * (D / 2) ** 2),
        "linear_overlap": overlap["linear_overlap"],
        "neighbour_overlap": overlap["neighbour_overlap"],
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
    p.add_argument(
        "--step-fraction", type=float, default=0.2, help="base scan step / probe FWHM (None: the default config's)"
    )
    p.add_argument("--noise-models", nargs="+", default=["gaussian", "poisson"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument(
        "--object-seed",
        type=int,
        default=None,
        help=(
            "draw the object with this seed instead of the study's: "
            "choose settings on another object, never on the study's own ground truth"
        ),
    )
    args = p.parse_args(argv)

    from ptycho_core import layout

    rows = []
    for noise_model in args.noise_models:
        workdir, info = run(args, noise_model)
        for cell in layout.cells(info["study"]):
            scores = score_cell(workdir, info["study"], cell)
            rows.append({"noise_model": noise_model, "view": cell.view, "seed": cell.seed, **scores})

    header = (
        f"{'noise':>8} {'view':>7} {'seed':>4} {'photons/pattern':>15} {'photons/px':>10} "
        f"{'lin.ovl':>7} {'nbr.ovl':>7} {'ph MS-SSIM':>10} {'ph PSNR':>7} {'amp MS-SSIM':>11} {'loss':>10} {'s':>6}"
    )
    print(header)
    for r in sorted(rows, key=lambda r: (r["noise_model"], r["view"], r["seed"], r["dose"])):
        print(
            f"{r['noise_model']:>8} {r['view']:>7} {r['seed']:>4} {r['dose']:>15.4g} {r['photons_per_px']:>10.3g} "
            f"{r['linear_overlap']:>7.2f} {r['neighbour_overlap']:>7.3f} "
            f"{r['phase_ms_ssim']:>10.3f} {r['phase_psnr']:>7.2f} {r['amplitude_ms_ssim']:>11.3f} "
            f"{r['final_loss']:>10.4g} {r['seconds']:>6.1f}"
        )
    out = Path(args.out) / "ladder.json"
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"rows written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
