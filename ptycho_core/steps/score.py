"""Workflow step ``score``: score every method's reconstruction of one dose x view x seed.

Every method reconstructs the same test rows of the view (PtychoPINN: the
view's test groups; Baseline: each test row; PtyChi: every test row, in its
own process, :mod:`ptycho_core.recon.ptychi`) onto the ground-truth pixel
frame, at the known positions with the known probe. Scoring takes every
reconstruction in that frame (no translation search; the residual shift is a
diagnostic) with one gauge policy
(:func:`ptycho_core.evaluate.metrics.score_reconstruction`) on the
replicate's evaluation region, common to all views
(:func:`ptycho_core.evaluate.region.evaluation_region`, with a border of half
a probe diameter), and writes the tidy metrics table
(:mod:`ptycho_core.evaluate.rows`), the FRC curves, the alignment record and
the comparison figure. A failed run (a network whose training was refused,
:func:`ptycho_core.steps.train.outcome_refusals`) is scored as produced; the
alignment record names its refusals, and the report counts them.
"""

from __future__ import annotations

import numpy as np

from ptycho_core.config import StudyConfig
from ptycho_core.evaluate.metrics import (
    MetricError,
    region_mask,
    remove_global_phase,
    score_reconstruction,
)
from ptycho_core.evaluate.region import evaluation_region
from ptycho_core.evaluate.rows import QUANTITIES, tidy_rows
from ptycho_core.evaluate.tables import collect_metrics
from ptycho_core.figures.comparison import comparison_figure
from ptycho_core.io.datasets import load_diffraction_set, load_ground_truth
from ptycho_core.io.reconstruction import load_recon
from ptycho_core.io.records import ALIGNMENT_RECORD, FRC_ROWS, METRIC_ROWS
from ptycho_core.io.view_index import load_view
from ptycho_core.layout import Cell, GroundTruthFiles, ReconFiles, ScoreFiles, SimulatedFiles, ViewFiles
from ptycho_core.methods import Method
from ptycho_core.steps.skeleton import Step, require


def run_score(
    study: StudyConfig,
    *,
    cell: Cell,
    ground_truth: GroundTruthFiles,
    simulated: SimulatedFiles,
    view: ViewFiles,
    region_views: dict[str, ViewFiles],
    reconstructions: dict[str, ReconFiles],
    out: ScoreFiles,
) -> dict:
    """Score every method's reconstruction (``{method id: files}``) of the cell against the ground truth
    on the region common to the views ``region_views`` (``{view name: files}``, every view of the study
    at this dose and seed)."""
    dose, view_name, seed = cell.photons(study), cell.view, int(cell.seed)
    recon_paths = {m: files.recon for m, files in reconstructions.items()}
    out_metrics, out_frc, out_alignment, out_figure = out.metrics, out.frc, out.alignment, out.figure
    with Step(
        "score",
        study,
        sentinel=out.sentinel,
        depends_on=("physics", "views", "training", "refinement", "ptychi", "stopping"),
        input_sentinels=[
            ground_truth.sentinel,
            simulated.sentinel,
            view.sentinel,
            *(f.sentinel for name, f in region_views.items() if name != cell.view),
            *(f.sentinel for f in reconstructions.values()),
        ],
        extra=cell.record(study),
    ) as step:
        step.inputs += [ground_truth.obj, simulated.test, view.view, *recon_paths.values()]
        step.inputs += [f.view for name, f in region_views.items() if name != cell.view]
        step.outputs += [out_metrics, out_frc, out_alignment, out_figure]
        test_path, view_path = simulated.test, view.view
        gt = load_ground_truth(ground_truth.obj).obj.astype(np.complex128)
        test = load_diffraction_set(test_path)
        view = load_view(view_path, n_test=test.n)
        D = float(test.metadata["probe"]["fwhm_diameter_px"])
        rows_by_view = {
            name: (view if name == cell.view else load_view(f.view, n_test=test.n)).test_index
            for name, f in region_views.items()
        }
        require(view_path, "region views", cell.view in rows_by_view, f"the region's views lack {cell.view}")
        region = evaluation_region(test, rows_by_view, gt.shape, border=D / 2)
        rows, frc_rows, alignment, recons, aligned = [], [], {}, {}, {}
        for method_id, path in recon_paths.items():
            method = Method.parse(method_id).value
            recon = load_recon(path, gt.shape)
            held = recon.metadata["method"]
            require(path, "method", held == method, f"holds {held}, expected {method}")
            require(
                path,
                "region covered",
                recon.covered[region].all(),
                f"{method} leaves {int((~recon.covered[region]).sum())} region pixels empty",
            )
            try:
                scores = score_reconstruction(gt, recon.obj.astype(np.complex128), region)
            except MetricError as exc:
                raise MetricError(f"{path}: {method}: {exc}") from None
            rows += tidy_rows(method, scores)
            for q in QUANTITIES:
                frc_rows += [
                    (method, q, float(f), float(c)) for f, c in zip(scores[q]["frc_freq"], scores[q]["frc_curve"])
                ]
            alignment[method] = {
                "residual_shift_dy_dx_px": [float(v) for v in scores["residual_shift"]],
                "phase_offset_rad": float(scores["phase_offset"]),
                "phase_ramp": scores["phase_ramp"],
                "amplitude_scale_reported_not_applied": float(scores["amplitude_scale"]),
                "region_pixels": int(scores["region_pixels"]),
                "refused": list(recon.metadata["refused"]),
            }
            recons[method] = recon.obj
            aligned[method] = remove_global_phase(gt, recon.obj.astype(np.complex128), region_mask(region, gt.shape))[0]

        METRIC_ROWS.write(out_metrics, rows)
        FRC_ROWS.write(out_frc, frc_rows)
        record = {
            "region_rows": [region[0].start, region[0].stop],
            "region_cols": [region[1].start, region[1].stop],
            "border_px": D / 2,
            "policy": (
                "known frame (no shift applied; residual cross-correlation shift reported as a diagnostic), "
                f"global phase offset removed, amplitude raw; region common to the views {sorted(region_views)}"
            ),
            "methods": alignment,
        }
        ALIGNMENT_RECORD.write(out_alignment, record)
        comparison_figure(out_figure, gt, recons, region, aligned, f"dose {dose:.3g}, view {view_name}, seed {seed}")
        # The table as the report will read it: reloaded from disk and validated by the aggregator (every
        # method, every declared metric once, finite), and equal to the rows scored here.
        table = collect_metrics(
            [{"dose": dose, "view": view_name, "seed": seed, "path": out_metrics}], methods=list(recons)
        )
        read = {(r.method, r.quantity, r.metric): r.value for r in table.itertuples()}
        require(
            out_metrics,
            "rows read back",
            read == {(m, q, k): v for m, q, k, v in rows},
            "the file holds other rows than those scored",
        )
        step.checks.update(
            {
                "n_metric_rows": len(table),
                "methods": sorted(recons),
                "refused_methods": sorted(m for m, a in alignment.items() if a["refused"]),
            }
        )
    return {"rows": rows, "alignment": alignment}
