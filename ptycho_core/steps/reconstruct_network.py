"""Workflow step ``reconstruct_network``: every trained or refined network reconstructs the view's test region.

One job per cell reconstructs every network method (one interpreter and one
TensorFlow start-up instead of one per method); each reconstruction keeps
its own sentinel. Each bundle predicts the view's test groups (PtychoPINN, PtychoPINN_TTR) or
test rows (Baseline); the patches are brought to one gauge and stitched onto
the ground-truth pixel frame (:mod:`ptycho_core.recon.network`). The
reconstruction is saved, reloaded and must cover every test position before
the sentinel is written. A bundle whose training was refused (a failed run,
its sidecar's ``refused``) is reconstructed as produced and the refusal
carried into the reconstruction's metadata.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from ptycho_core.config import StudyConfig
from ptycho_core.io.datasets import SCHEMA_VERSION, DiffractionSet, load_diffraction_set
from ptycho_core.io.reconstruction import Reconstruction, load_recon, save_recon
from ptycho_core.io.sentinel import provenance
from ptycho_core.io.view_index import load_view
from ptycho_core.layout import BundleFiles, Cell, ReconFiles, SimulatedFiles, ViewFiles
from ptycho_core.methods import Method
from ptycho_core.recon.network import STITCHING, predict_and_stitch
from ptycho_core.steps.skeleton import Step, require

log = logging.getLogger(__name__)


def run_reconstruct_network(
    study: StudyConfig,
    *,
    cell: Cell,
    simulated: SimulatedFiles,
    view: ViewFiles,
    bundles: dict[str, BundleFiles],
    out: dict[str, ReconFiles],
) -> dict:
    """Reconstruct the cell's test region with each network method's bundle (``{method id: files}``, the same
    methods as ``out``); save, verify and write each reconstruction's sentinel. Returns ``{method id: checks}``."""
    if set(bundles) != set(out):
        raise ValueError(f"reconstruct_network: bundles for {sorted(bundles)}, outputs for {sorted(out)}")
    return {m: _reconstruct(study, cell.with_method(m), simulated, view, bundles[m], out[m]) for m in bundles}


def _reconstruct(
    study: StudyConfig, cell: Cell, simulated: SimulatedFiles, view: ViewFiles, bundle: BundleFiles, out: ReconFiles
) -> dict:
    from ptycho_core.nn.bundle import load_bundle

    method = Method.parse(cell.method)
    if not method.spec.network:
        raise ValueError(f"method {method.value} is not reconstructed by a network")
    depends_on = ("physics", "views", "training") + (
        ("refinement", "stopping") if method.spec.produced_by == "refined" else ()
    )
    dose, view_name, seed = cell.photons(study), cell.view, int(cell.seed)
    test_path, sidecar_path, out_recon = simulated.test, bundle.sidecar, out.recon
    with Step(
        "reconstruct_network",
        study,
        sentinel=out.sentinel,
        depends_on=depends_on,
        input_sentinels=[simulated.sentinel, view.sentinel, bundle.sentinel],
        extra=cell.record(study),
    ) as step:
        step.inputs += [test_path, view.view, bundle.model, sidecar_path]
        step.outputs += [out_recon]
        test = load_diffraction_set(test_path)
        view = load_view(view.view, n_test=test.n)
        channels = study.grouping.C if method.spec.grouped else 1
        model, side = load_bundle(bundle.model, sidecar_path, N=test.N, channels=channels, probe=test.probe)
        require(
            sidecar_path,
            "method",
            side["method"] == method.value,
            f"bundle of {side['method']}, expected {method.value}",
        )
        shape = study.frame_shape
        t_inf = time.perf_counter()
        stitched, n_patches, gauge = predict_and_stitch(model, channels, test, view, shape)
        seconds = time.perf_counter() - t_inf
        recon = Reconstruction(
            obj=stitched.obj.astype(np.complex64),
            covered=stitched.covered,
            metadata={
                "schema_version": SCHEMA_VERSION,
                "method": method.value,
                "dose": float(dose),
                "view": view_name,
                "seed": int(seed),
                "n_test_rows": int(view.test_index.size),
                "n_patches_predicted": n_patches,
                "stitching": STITCHING,
                "gauge": gauge,
                "refused": side["refused"],
                "provenance": provenance(study),
            },
        )
        save_recon(out_recon, recon)
        recon = load_recon(out_recon, shape)
        covered_rows = _rows_covered(recon.covered, test, view.test_index)
        step.checks.update(
            {
                "n_test_rows": int(view.test_index.size),
                "n_patches_predicted": n_patches,
                "inference_and_stitching_seconds": seconds,
                "patterns_per_second": n_patches / seconds,
                "covered_pixels": int(recon.covered.sum()),
                "test_positions_covered": covered_rows,
                "gauge_offset_spread_rad": gauge["offset_spread_rad"],
                "gauge_consistency_residual_rad": gauge["consistency_residual_rad"],
                "gauge_components": gauge["n_components"],
                "refused": side["refused"],
            }
        )
        require(out_recon, "every test position covered", covered_rows == 1.0, f"{covered_rows:.3f}")
    log.info("%s reconstruction: %s", method.value, json.dumps(step.checks))
    return step.checks


def _rows_covered(covered: np.ndarray, test: DiffractionSet, rows: np.ndarray) -> float:
    """Fraction of the test positions ``rows`` whose nearest pixel is covered."""
    r = np.clip(np.rint(test.ycoords[rows]).astype(int), 0, covered.shape[0] - 1)
    c = np.clip(np.rint(test.xcoords[rows]).astype(int), 0, covered.shape[1] - 1)
    return float(covered[r, c].mean())
