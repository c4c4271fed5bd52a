"""What each stitching step buys, measured on a finished study's trained networks.

For every cell (dose x view x seed) of a finished study, the trained
bundles of PtychoPINN and the Baseline reconstruct the view's test
region four ways: the flat raised-cosine window of the whole support or the
probe weights |P|^2, each with and without gauge synchronisation
(ptycho_core.recon.gauge), and each is scored with the study's own scorer on the
study's evaluation region. Nothing is tuned on the ground truth: the four
variants are fixed in advance; the scorer only reads it.

    .venv/bin/python scripts/ablate_stitching.py [study_dir] [config.yaml]

``study_dir`` is the study's directory (the one holding ``results/``; default
the working directory); its files are found by ``ptycho_core.layout``.

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

from ptycho_core import layout  # noqa: E402
from ptycho_core.config import load_study  # noqa: E402
from ptycho_core.evaluate.metrics import score_reconstruction  # noqa: E402
from ptycho_core.evaluate.region import evaluation_region  # noqa: E402
from ptycho_core.io.datasets import load_diffraction_set, load_ground_truth  # noqa: E402
from ptycho_core.io.view_index import load_view  # noqa: E402
from ptycho_core.methods import TRAINED_METHODS  # noqa: E402
from ptycho_core.nn.bundle import load_bundle  # noqa: E402
from ptycho_core.recon.network import predict_and_stitch  # noqa: E402

VARIANTS = (("taper", False), ("taper", True), ("probe", False), ("probe", True))


def main(root: Path, config: Path) -> None:
    study = load_study(config)
    print(
        "cell | method | weights | gauge | phase MS-SSIM | phase PSNR dB | amplitude MS-SSIM | "
        "gauge spread rad | residual rad | s"
    )
    for cell in layout.cells(study):  # dose, then view, then seed
        gt = load_ground_truth(layout.ground_truth(cell.seed).under(root).obj).obj.astype(np.complex128)
        test = load_diffraction_set(layout.simulated(cell).under(root).test)
        view = load_view(layout.view(cell).under(root).view, n_test=test.n)
        D = float(test.metadata["probe"]["fwhm_diameter_px"])
        rows = {
            name: load_view(f.under(root).view, n_test=test.n).test_index
            for name, f in layout.region_views(study, cell).items()
        }
        region = evaluation_region(test, rows, gt.shape, border=D / 2)  # as the score step
        for method in TRAINED_METHODS:
            bundle = layout.bundle(cell.with_method(method)).under(root)
            channels = study.grouping.C if method.spec.grouped else 1
            model, _ = load_bundle(bundle.model, bundle.sidecar, N=test.N, channels=channels, probe=test.probe)
            for weights, gauge in VARIANTS:
                t0 = time.perf_counter()
                st, _, g = predict_and_stitch(model, channels, test, view, gt.shape, gauge=gauge, weights=weights)
                seconds = time.perf_counter() - t0
                s = score_reconstruction(gt, st.obj, region)
                spread = f"{g['offset_spread_rad']:.3f} | {g['consistency_residual_rad']:.3f}" if g else "- | -"
                print(
                    f"{cell.dose} {cell.view} s{cell.seed} | {method.value} | {weights} | {gauge} | "
                    f"{s['phase']['ms_ssim']:.3f} | {s['phase']['psnr']:.1f} | {s['amplitude']['ms_ssim']:.3f} | "
                    f"{spread} | {seconds:.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0] if args else "."), Path(args[1] if len(args) > 1 else "config/config.yaml"))
