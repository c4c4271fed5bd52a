"""Phase F steps: reconstruct the view's test region with the trained networks, and score every method.

Every method reconstructs the same test rows of the view (PtychoPINN: the
view's test groups; Baseline: each test row; PtyChi: every test row, in its
own process, :mod:`ptycho_core.recon.ptychi`) onto the ground-truth pixel
frame. Scoring aligns every reconstruction by one policy
(:func:`ptycho_core.evaluate.metrics.score_reconstruction`) on one evaluation region:
the bounding box of the view's test positions shrunk by a border of half a
probe diameter.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from ptycho_core.config import StudyConfig
from ptycho_core.io.datasets import SCHEMA_VERSION, DiffractionSet, ground_truth_shape, load_diffraction_set, load_ground_truth
from ptycho_core.methods import Method
from ptycho_core.evaluate.metrics import MetricError, region_mask, remove_global_phase, score_reconstruction, shift_image
from ptycho_core.io.npz import atomic_write_text
from ptycho_core.steps.simulate import provenance
from ptycho_core.io.reconstruction import Reconstruction, load_recon, save_recon
from ptycho_core.io.sentinel import ArtifactCheckError, verify_sentinel, write_sentinel
from ptycho_core.recon.gauge import apply_offsets, synchronise
from ptycho_core.recon.stitch import probe_window, stitch_patches, taper_window
from ptycho_core.io.view_index import ViewIndex, load_view

log = logging.getLogger(__name__)

#: Metrics every method must have, per quantity (amplitude, phase).
METRICS = ("mae", "rmse", "psnr", "ssim", "ms_ssim", "frc50", "frc1_7")
QUANTITIES = ("amplitude", "phase")
#: Quantity of the registration rows: what the common alignment policy had to do to each method.
ALIGNMENT = "alignment"
ALIGNMENT_METRICS = ("shift_px", "shift_dy_px", "shift_dx_px", "phase_offset_rad")
#: Secondary, paper-style rows (metrics.paper_phase_metrics / paper_amplitude_metrics): the
#: PtychoPINN literature's conventions (phase: each image's own plane removed, mapped to
#: (phi + pi) / (2 pi), data range 1; amplitude: rescaled by the ratio of means), under their
#: own quantity names so that they cannot be read as the strict amplitude/phase rows.
#: PAPER_QUANTITIES[i] is the paper-style counterpart of QUANTITIES[i].
PAPER_QUANTITIES = ("amplitude_paper", "phase_paper")
PAPER_METRICS = ("ssim", "ms_ssim", "psnr")
#: Extra amplitude_paper row: the ratio of means applied to that row only (no better direction).
PAPER_AMPLITUDE_METRICS = ("mean_ratio",)


#: How the network arms' patches become one object (recorded in every reconstruction).
STITCHING = (
    "each unit's constant phase (PtychoPINN: a group, Baseline: a patch) solved by angular synchronisation "
    "over the probe-weighted overlaps (ptycho_core.recon.gauge), then the |P|^2-weighted average sum |P|^2 O / sum |P|^2 "
    "of the N/2 x N/2 support patches at their scan positions"
)


def predict_patches(model, channels: int, test: DiffractionSet, view: ViewIndex, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Chunked prediction from NumPy storage of the view's test groups (rows for one channel).

    Returns the complex support patches (n, N/2, N/2) complex64 and the
    group (unit) index of each; at most ``chunk`` groups are handed to the
    model at once.
    """
    groups = view.test_groups if channels > 1 else view.test_index[:, None]
    if groups.shape[1] != channels:
        raise ValueError(f"{channels}-channel model, but the view's test groups have {groups.shape[1]} members")
    n2 = test.N // 2
    out = np.empty((groups.size, n2, n2), dtype=np.complex64)
    for start in range(0, groups.shape[0], chunk):
        g = groups[start : start + chunk]
        amp, phase = (np.asarray(a, dtype=np.float64) for a in model.predict(np.moveaxis(test.diffraction[g], 1, -1), batch_size=64, verbose=0))
        out[start * channels : (start + g.shape[0]) * channels] = np.moveaxis(amp * np.exp(1j * phase), -1, 1).reshape(-1, n2, n2)
    return out, groups


def predict_and_stitch(
    model, channels: int, test: DiffractionSet, view: ViewIndex, shape: tuple[int, int], chunk: int = 512, gauge: bool = True, weights: str = "probe"
):
    """Predict the view's test groups, bring them to one gauge, stitch with probe weights.

    Prediction is chunked; the synchronisation needs every patch of the test
    region at once, so they are held (n x (N/2)^2 complex64).

    ``gauge=False`` and ``weights="taper"`` (the flat raised-cosine window of
    the whole support) exist to measure what each step contributes. Returns
    the Stitched object, the number of patches predicted and the gauge
    summary (None without synchronisation).
    """
    patches, groups = predict_patches(model, channels, test, view, chunk)
    positions = np.column_stack([test.xcoords, test.ycoords])[groups.ravel()]
    if weights == "probe":
        window = probe_window(test.probe)
    elif weights == "taper":
        window = taper_window(test.N // 2)
    else:
        raise ValueError(f"stitching weights: expected 'probe' or 'taper', found {weights!r}")
    summary = None
    if gauge:
        units = np.repeat(np.arange(groups.shape[0]), groups.shape[1])
        solution = synchronise(patches, positions, window, units)
        patches = apply_offsets(patches, solution, units)
        summary = solution.summary()
    return stitch_patches(patches, positions, shape, window=window), int(groups.size), summary


def run_reconstruct_network(
    study: StudyConfig,
    method: str,
    dose: float,
    view_name: str,
    seed: int,
    test_path: str | Path,
    view_path: str | Path,
    model_path: str | Path,
    sidecar_path: str | Path,
    input_sentinels: list,
    ground_truth: str | Path,
    out_recon: str | Path,
    sentinel_path: str | Path,
) -> dict:
    """Reconstruct the view's test region with a trained bundle; save, verify, write the sentinel."""
    from ptycho_core.nn.bundle import load_bundle

    t0 = time.perf_counter()
    method = Method.parse(method)
    for s in input_sentinels:
        verify_sentinel(s)
    test = load_diffraction_set(test_path)
    view = load_view(view_path, n_test=test.n)
    if not method.spec.network:
        raise ValueError(f"method {method.value} is not reconstructed by a network")
    channels = study.grouping.C if method.spec.grouped else 1
    model, side = load_bundle(model_path, sidecar_path, N=test.N, channels=channels, probe=test.probe)
    if side["method"] != method.value:
        raise ArtifactCheckError(f"{sidecar_path}: check 'method' failed: bundle of {side['method']}, expected {method.value}")
    shape = ground_truth_shape(ground_truth)
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
            "provenance": provenance(study),
        },
    )
    save_recon(out_recon, recon)
    recon = load_recon(out_recon, shape)
    covered_rows = _rows_covered(recon.covered, test, view.test_index)
    checks = {
        "n_test_rows": int(view.test_index.size),
        "n_patches_predicted": n_patches,
        "inference_and_stitching_seconds": seconds,
        "patterns_per_second": n_patches / seconds,
        "covered_pixels": int(recon.covered.sum()),
        "test_positions_covered": covered_rows,
        "gauge_offset_spread_rad": gauge["offset_spread_rad"],
        "gauge_consistency_residual_rad": gauge["consistency_residual_rad"],
        "gauge_components": gauge["n_components"],
    }
    if covered_rows != 1.0:
        raise ArtifactCheckError(f"{out_recon}: check 'every test position covered' failed: {covered_rows:.3f}")
    write_sentinel(
        sentinel_path,
        step="phase_f.reconstruct",
        inputs=[str(test_path), str(view_path), str(model_path), str(sidecar_path), *map(str, input_sentinels)],
        outputs=[str(out_recon)],
        checks=checks,
        config_hash=study.config_hash(),
        wall_time_s=time.perf_counter() - t0,
        extra={"method": method.value, "dose": float(dose), "view": view_name, "seed": int(seed)},
    )
    log.info("%s reconstruction: %s", method.value, json.dumps(checks))
    return checks


def _rows_covered(covered: np.ndarray, test: DiffractionSet, rows: np.ndarray) -> float:
    r = np.clip(np.rint(test.ycoords[rows]).astype(int), 0, covered.shape[0] - 1)
    c = np.clip(np.rint(test.xcoords[rows]).astype(int), 0, covered.shape[1] - 1)
    return float(covered[r, c].mean())


def evaluation_region(test: DiffractionSet, rows: np.ndarray, shape: tuple[int, int], border: float) -> tuple[slice, slice]:
    """Bounding box of the view's test positions, shrunk by ``border`` pixels on every side."""
    x, y = test.xcoords[rows], test.ycoords[rows]
    r0, r1 = int(math.ceil(y.min() + border)), int(math.floor(y.max() - border)) + 1
    c0, c1 = int(math.ceil(x.min() + border)), int(math.floor(x.max() - border)) + 1
    if r1 - r0 < 8 or c1 - c0 < 8:
        raise ArtifactCheckError(f"evaluation region: the test positions span too little ({r1 - r0} x {c1 - c0} px after a {border:.1f} px border)")
    return slice(max(r0, 0), min(r1, shape[0])), slice(max(c0, 0), min(c1, shape[1]))


def _tidy_rows(method: str, scores: dict) -> list[tuple]:
    rows = []
    for q in QUANTITIES:
        for m in METRICS:
            v = scores[q].get(m)
            if v is None or not np.isfinite(v):
                raise MetricError(f"{method}: metric '{m}' of {q} is missing or not finite ({v!r})")
            rows.append((method, q, m, float(v)))
    rows.append((method, "amplitude", "amplitude_scale", float(scores["amplitude_scale"])))
    for q in QUANTITIES:
        rows.append((method, q, "ms_ssim_scales", float(scores[q]["ms_ssim_scales"])))
    dy, dx = (float(v) for v in scores["shift"])
    values = {"shift_px": math.hypot(dy, dx), "shift_dy_px": dy, "shift_dx_px": dx, "phase_offset_rad": float(scores["phase_offset"])}
    rows += [(method, ALIGNMENT, k, values[k]) for k in ALIGNMENT_METRICS]
    for q, pq in zip(QUANTITIES, PAPER_QUANTITIES):
        extra = PAPER_AMPLITUDE_METRICS if q == "amplitude" else ()
        for m in PAPER_METRICS + extra:
            v = scores["paper"][q].get(m)
            if v is None or not np.isfinite(v):
                raise MetricError(f"{method}: metric '{m}' of {pq} is missing or not finite ({v!r})")
            rows.append((method, pq, m, float(v)))
    return rows


def comparison_figure(path, gt: np.ndarray, recons: dict, region, aligned: dict, title: str) -> None:
    """Ground truth and each method (amplitude, phase) with error maps, shared colour limits, on the region."""
    from matplotlib.figure import Figure

    from ptycho_core.figures.preview import save_figure

    rs, cs = region
    g = gt[rs, cs]
    cols = 1 + len(recons)
    fig = Figure(figsize=(3.2 * cols, 11), layout="constrained")
    axes = fig.subplots(4, cols, squeeze=False)
    amp_lim = (float(np.abs(g).min()), float(np.abs(g).max()))
    ph_lim = (float(np.angle(g).min()), float(np.angle(g).max()))
    err_amp = max(1e-6, *(float(np.abs(np.abs(a[rs, cs]) - np.abs(g)).max()) for a in aligned.values()))
    err_ph = max(1e-6, *(float(np.abs(np.angle(a[rs, cs] * np.conj(g))).max()) for a in aligned.values()))
    panels = [("ground truth", g)] + [(m, aligned[m][rs, cs]) for m in recons]
    for j, (name, img) in enumerate(panels):
        axes[0, j].imshow(np.abs(img), cmap="gray", vmin=amp_lim[0], vmax=amp_lim[1])
        axes[0, j].set_title(f"{name}\namplitude", fontsize=9)
        axes[1, j].imshow(np.angle(g) + np.angle(img * np.conj(g)), cmap="twilight", vmin=ph_lim[0], vmax=ph_lim[1])
        axes[1, j].set_title("phase (rad)", fontsize=9)
        if j == 0:
            axes[2, 0].axis("off")
            axes[3, 0].axis("off")
            continue
        im2 = axes[2, j].imshow(np.abs(img) - np.abs(g), cmap="RdBu_r", vmin=-err_amp, vmax=err_amp)
        axes[2, j].set_title("amplitude error", fontsize=9)
        im3 = axes[3, j].imshow(np.angle(img * np.conj(g)), cmap="RdBu_r", vmin=-err_ph, vmax=err_ph)
        axes[3, j].set_title("phase error (rad)", fontsize=9)
    if cols > 1:
        fig.colorbar(im2, ax=axes[2, :].tolist(), fraction=0.02)
        fig.colorbar(im3, ax=axes[3, :].tolist(), fraction=0.02)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def run_score(
    study: StudyConfig,
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
    t0 = time.perf_counter()
    for s in input_sentinels:
        verify_sentinel(s)
    gt = load_ground_truth(ground_truth).obj.astype(np.complex128)
    test = load_diffraction_set(test_path)
    view = load_view(view_path, n_test=test.n)
    D = float(test.metadata["probe"]["fwhm_diameter_px"])
    region = evaluation_region(test, view.test_index, gt.shape, border=D / 2)
    rows, frc_rows, alignment, recons, aligned = [], [], {}, {}, {}
    for method_id, path in recon_paths.items():
        method = Method.parse(method_id).value
        recon = load_recon(path, gt.shape)
        if recon.metadata["method"] != method:
            raise ArtifactCheckError(f"{path}: check 'method' failed: holds {recon.metadata['method']}, expected {method}")
        if not recon.covered[region].all():
            raise ArtifactCheckError(f"{path}: check 'region covered' failed: {method} leaves {int((~recon.covered[region]).sum())} region pixels empty")
        try:
            scores = score_reconstruction(gt, recon.obj.astype(np.complex128), region)
        except MetricError as exc:
            raise MetricError(f"{path}: {method}: {exc}") from None
        rows += _tidy_rows(method, scores)
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
    paper_rows = len(PAPER_QUANTITIES) * len(PAPER_METRICS) + len(PAPER_AMPLITUDE_METRICS)
    expected = len(recon_paths) * (len(QUANTITIES) * (len(METRICS) + 1) + 1 + len(ALIGNMENT_METRICS) + paper_rows)
    checks = {"n_metric_rows": len(rows), "expected_rows": expected, "methods": sorted(recons)}
    if len(rows) != expected:
        raise ArtifactCheckError(f"{out_metrics}: check 'row count' failed: {len(rows)} rows, expected {expected}")
    write_sentinel(
        sentinel_path,
        step="phase_f.score",
        inputs=[str(ground_truth), str(test_path), str(view_path), *map(str, recon_paths.values()), *map(str, input_sentinels)],
        outputs=[str(out_metrics), str(out_frc), str(out_alignment), str(out_figure)],
        checks=checks,
        config_hash=study.config_hash(),
        wall_time_s=time.perf_counter() - t0,
        extra={"dose": float(dose), "view": view_name, "seed": int(seed)},
    )
    return {"rows": rows, "alignment": alignment}
