"""What each stitching step buys, measured on a finished study's trained networks.

For every cell (dose x view x seed) of a study's results directory, the
phase E bundles of PtychoPINN and the Baseline reconstruct the view's test
region four ways: the flat raised-cosine window of the whole support or the
probe weights |P|^2, each with and without gauge synchronisation
(ptycho_core.recon.gauge), and each is scored with the study's own scorer on the
study's evaluation region. Nothing is tuned on the ground truth: the four
variants are fixed in advance; the scorer only reads it.

    .venv/bin/python scripts/ablate_stitching.py [results_dir] [config.yaml]

Prints one line per cell, method and variant: phase MS-SSIM / phase PSNR (dB)
/ amplitude MS-SSIM, plus the gauge spread and residual.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from ptycho_core.config import load_study  # noqa: E402
from ptycho_core.evaluate.metrics import score_reconstruction  # noqa: E402
from ptycho_core.evaluate.region import evaluation_region  # noqa: E402
from ptycho_core.io.datasets import load_diffraction_set, load_ground_truth  # noqa: E402
from ptycho_core.io.view_index import load_view  # noqa: E402
from ptycho_core.methods import TRAINED_METHODS  # noqa: E402
from ptycho_core.nn.bundle import load_bundle  # noqa: E402
from ptycho_core.recon.network import predict_and_stitch  # noqa: E402

VARIANTS = (("taper", False), ("taper", True), ("probe", False), ("probe", True))


def main(results: Path, config: Path) -> None:
    study = load_study(config)
    gt = load_ground_truth(results / "phase_c" / "ground_truth.npz").obj.astype(np.complex128)
    print("cell | method | weights | gauge | phase MS-SSIM | phase PSNR dB | amplitude MS-SSIM | gauge spread rad | residual rad | s")
    for label in study.dose_labels():
        for view_cfg in study.views:
            for seed in study.seeds:
                test = load_diffraction_set(results / "phase_c" / f"dose_{label}" / f"seed_{seed}" / "test.npz")
                view = load_view(results / "phase_d" / f"dose_{label}" / f"view_{view_cfg.name}" / f"seed_{seed}" / "view.npz", n_test=test.n)
                D = float(test.metadata["probe"]["fwhm_diameter_px"])
                region = evaluation_region(test, view.test_index, gt.shape, border=D / 2)
                for method in TRAINED_METHODS:
                    d = results / "phase_e" / method.value / f"dose_{label}" / f"view_{view_cfg.name}" / f"seed_{seed}"
                    channels = study.grouping.C if method.spec.grouped else 1
                    model, _ = load_bundle(d / "model.keras", d / "bundle.json", N=test.N, channels=channels, probe=test.probe)
                    for weights, gauge in VARIANTS:
                        t0 = time.perf_counter()
                        st, _, g = predict_and_stitch(model, channels, test, view, gt.shape, gauge=gauge, weights=weights)
                        seconds = time.perf_counter() - t0
                        s = score_reconstruction(gt, st.obj, region)
                        spread = f"{g['offset_spread_rad']:.3f} | {g['consistency_residual_rad']:.3f}" if g else "- | -"
                        print(
                            f"{label} {view_cfg.name} s{seed} | {method.value} | {weights} | {gauge} | "
                            f"{s['phase']['ms_ssim']:.3f} | {s['phase']['psnr']:.1f} | {s['amplitude']['ms_ssim']:.3f} | {spread} | {seconds:.1f}",
                            flush=True,
                        )


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0] if args else "results"), Path(args[1] if len(args) > 1 else "config/config.yaml"))
