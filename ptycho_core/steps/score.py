"""Workflow step ``score`` (phase F): score every method's reconstruction of one dose x view x seed.

Every method reconstructs the same test rows of the view (PtychoPINN: the
view's test groups; Baseline: each test row; PtyChi: every test row, in its
own process, :mod:`ptycho_core.recon.ptychi`) onto the ground-truth pixel
frame. Scoring aligns every reconstruction by one policy
(:func:`ptycho_core.evaluate.metrics.score_reconstruction`) on one evaluation
region (:func:`ptycho_core.evaluate.region.evaluation_region`, with a border
of half a probe diameter) and writes the tidy metrics table
(:mod:`ptycho_core.evaluate.rows`), the FRC curves, the alignment record and
the comparison figure.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from ptycho_core.config import StudyConfig
from ptycho_core.evaluate.metrics import MetricError, region_mask, remove_global_phase, score_reconstruction, shift_image
from ptycho_core.evaluate.region import evaluation_region
from ptycho_core.evaluate.rows import QUANTITIES, tidy_rows
from ptycho_core.evaluate.tables import collect_metrics
from ptycho_core.figures.comparison import comparison_figure
from ptycho_core.io.datasets import load_diffraction_set, load_ground_truth
from ptycho_core.io.npz import atomic_write_text
from ptycho_core.io.reconstruction import load_recon
from ptycho_core.io.view_index import load_view
from ptycho_core.methods import Method
from ptycho_core.steps.skeleton import Step, require


def run_score(
    study: StudyConfig,
    *,
    dose: float,
    view_name: str,
    seed: int,
    ground_truth: str | Path,
    test_path: str | Path,
    view_path: str | Path,
    recon_paths: dict,
    input_sentinels: list,
    out_metrics: str | Path,
    out_frc: str | Path,
    out_alignment: str | Path,
    out_figure: str | Path,
    sentinel_path: str | Path,
) -> dict:
    """Score every method's reconstruction against the ground truth on one region; tidy outputs."""
    with Step(
        "score",
        study,
        sentinel=sentinel_path,
        depends_on=("physics", "views", "training", "refinement", "ptychi"),
        input_sentinels=input_sentinels,
        extra={"dose": float(dose), "view": view_name, "seed": int(seed)},
    ) as step:
        step.inputs += [ground_truth, test_path, view_path, *recon_paths.values()]
        step.outputs += [out_metrics, out_frc, out_alignment, out_figure]
        gt = load_ground_truth(ground_truth).obj.astype(np.complex128)
        test = load_diffraction_set(test_path)
        view = load_view(view_path, n_test=test.n)
        D = float(test.metadata["probe"]["fwhm_diameter_px"])
        region = evaluation_region(test, view.test_index, gt.shape, border=D / 2)
        rows, frc_rows, alignment, recons, aligned = [], [], {}, {}, {}
        for method_id, path in recon_paths.items():
            method = Method.parse(method_id).value
            recon = load_recon(path, gt.shape)
            held = recon.metadata["method"]
            require(path, "method", held == method, f"holds {held}, expected {method}")
            require(
                path, "region covered", recon.covered[region].all(),
                f"{method} leaves {int((~recon.covered[region]).sum())} region pixels empty",
            )
            try:
                scores = score_reconstruction(gt, recon.obj.astype(np.complex128), region)
            except MetricError as exc:
                raise MetricError(f"{path}: {method}: {exc}") from None
            rows += tidy_rows(method, scores)
            for q in QUANTITIES:
                frc_rows += [(method, q, float(f), float(c)) for f, c in zip(scores[q]["frc_freq"], scores[q]["frc_curve"])]
            alignment[method] = {
                "shift_dy_dx_px": [float(v) for v in scores["shift"]],
                "phase_offset_rad": float(scores["phase_offset"]),
                "phase_ramp": scores["phase_ramp"],
                "amplitude_scale_reported_not_applied": float(scores["amplitude_scale"]),
                "region_pixels": int(scores["region_pixels"]),
            }
            recons[method] = recon.obj
            shifted = shift_image(recon.obj.astype(np.complex128), scores["shift"])
            aligned[method] = remove_global_phase(gt, shifted, region_mask(region, gt.shape))[0]

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["method", "quantity", "metric", "value"])
        w.writerows((m, q, k, repr(v)) for m, q, k, v in rows)
        atomic_write_text(out_metrics, buf.getvalue())
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["method", "quantity", "frequency_cycles_per_pixel", "frc"])
        w.writerows((m, q, repr(f), repr(c)) for m, q, f, c in frc_rows)
        atomic_write_text(out_frc, buf.getvalue())
        record = {
            "region_rows": [region[0].start, region[0].stop],
            "region_cols": [region[1].start, region[1].stop],
            "border_px": D / 2,
            "policy": "subpixel registration to the ground truth (shift applied), global phase offset removed, amplitude raw",
            "methods": alignment,
        }
        atomic_write_text(out_alignment, json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n")
        comparison_figure(out_figure, gt, recons, region, aligned, f"dose {dose:.3g}, view {view_name}, seed {seed}")
        # The table as phase G will read it: reloaded from disk and validated by the aggregator (every
        # method, every declared metric once, finite), and equal to the rows scored here.
        table = collect_metrics([{"dose": dose, "view": view_name, "seed": seed, "path": out_metrics}], methods=list(recons))
        read = {(r.method, r.quantity, r.metric): r.value for r in table.itertuples()}
        require(out_metrics, "rows read back", read == {(m, q, k): v for m, q, k, v in rows}, "the file holds other rows than those scored")
        step.checks.update({"n_metric_rows": len(table), "methods": sorted(recons)})
    return {"rows": rows, "alignment": alignment}
