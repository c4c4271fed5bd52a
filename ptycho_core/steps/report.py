"""Phase G step: the study report's data, tables and figures (one tidy table feeds everything).

Reads every phase F metrics table, aggregates them (:mod:`ptycho_core.evaluate.tables`),
and writes: the tidy table, the summary JSON (means, spread, deltas),
highlights generated from that JSON, dose-response figures, FRC curves, a
reconstruction montage per view, an overlap summary, a run-time table from
the ``benchmark:`` files, and an inventory of the study's artifacts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import time
from pathlib import Path

import numpy as np

from ptycho_core.evaluate import tables as agg
from ptycho_core.config import StudyConfig
from ptycho_core.io.datasets import load_ground_truth
from ptycho_core.methods import Method
from ptycho_core.io.npz import atomic_write_text
from ptycho_core.figures.preview import save_figure
from ptycho_core.io.reconstruction import load_recon
from ptycho_core.io.sentinel import verify_sentinel, write_sentinel

log = logging.getLogger(__name__)

#: (quantity, metric) pairs drawn as dose-response figures.
DOSE_RESPONSE = (("phase", "ms_ssim"), ("phase", "psnr"), ("amplitude", "ms_ssim"), ("amplitude", "mae"), ("phase", "frc50"))


def montage_figure(path, study: StudyConfig, view: str, seed: int, gt_path, recon_path_of) -> None:
    """Rows: doses; columns: ground truth then each method; amplitude and phase of the test region."""
    from matplotlib.figure import Figure

    gt = load_ground_truth(gt_path).obj
    methods = [m.value for m in Method]
    labels = list(study.dose_labels())
    fig = Figure(figsize=(2.2 * 2 * (1 + len(methods)), 2.3 * len(labels) + 0.6), layout="constrained")
    axes = fig.subplots(len(labels), 2 * (1 + len(methods)), squeeze=False)
    for i, label in enumerate(labels):
        recons = {m: load_recon(recon_path_of(label, m), gt.shape) for m in methods}
        covered = np.logical_and.reduce([r.covered for r in recons.values()])
        rows, cols = np.nonzero(covered)
        box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
        g = gt[box]
        amp_lim = (float(np.abs(g).min()), float(np.abs(g).max()))
        for j, (name, img) in enumerate([("ground truth", g)] + [(m, recons[m].obj[box]) for m in methods]):
            # phase shown relative to the ground truth's mean phase over the region (a gauge)
            offset = np.angle(np.vdot(img, g)) if name != "ground truth" else 0.0
            a_ax, p_ax = axes[i, 2 * j], axes[i, 2 * j + 1]
            a_ax.imshow(np.abs(img), cmap="gray", vmin=amp_lim[0], vmax=amp_lim[1])
            p_ax.imshow(np.angle(img * np.exp(1j * offset)), cmap="twilight", vmin=-np.pi / 2, vmax=np.pi / 2)
            if i == 0:
                a_ax.set_title(f"{name}\namplitude", fontsize=8)
                p_ax.set_title(f"{name}\nphase", fontsize=8)
            if j == 0:
                a_ax.set_ylabel(f"dose {label}", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"view {view}, seed {seed}: test region (covered by every method)", fontsize=10)
    save_figure(fig, path)


def overlap_summary(metric_paths: dict) -> str:
    """CSV text: view, dose, seed, split and the measured overlap metrics from phase D."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    keys = ["n_before_view", "n_view", "n_groups", "linear_overlap", "metric_1_group", "metric_2_neighbours", "metric_3_group_centres", "metric_3_pairs"]
    w.writerow(["view", "dose", "seed", "split", *keys])
    for (view, dose, seed), path in sorted(metric_paths.items()):
        m = json.loads(Path(path).read_text())
        for split in ("train", "test"):
            w.writerow([view, dose, seed, split, *(m["splits"][split][k] for k in keys)])
    return buf.getvalue()


def inventory(root: str | Path, directories=("results", "logs", "benchmarks")) -> str:
    """CSV text: relative path, size in bytes and sha256 of every file of the study."""
    root = Path(root)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "bytes", "sha256"])
    for d in directories:
        for p in sorted((root / d).rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                w.writerow([p.relative_to(root).as_posix(), p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()])
    return buf.getvalue()


def run_report(
    study: StudyConfig,
    cells: list[dict],
    frc_tables: list[tuple],
    overlap_paths: dict,
    benchmarks: dict,
    ground_truth: str | Path,
    recon_path_of,
    input_sentinels: list,
    out: dict,
) -> dict:
    """Write every phase G artifact named in ``out`` and the sentinel ``out['sentinel']``."""
    t0 = time.perf_counter()
    for s in input_sentinels:
        verify_sentinel(s)
    table = agg.collect_metrics(cells)
    summary = agg.summarise(table)
    delta_records = agg.deltas(table)
    agg.write_report_data(table, summary, delta_records, out["metrics"], out["summary"])
    document = json.loads(Path(out["summary"]).read_text())
    lines = agg.highlights(document)
    atomic_write_text(out["highlights"], "\n".join(lines) + "\n")
    for quantity, metric in DOSE_RESPONSE:
        agg.dose_response_figure(out["dose_response_dir"] / f"{quantity}_{metric}.png", table, metric, quantity)
    agg.frc_figure(out["frc_figure"], frc_tables)
    for view in (v.name for v in study.views):
        montage_figure(out["montage_dir"] / f"montage_{view}.png", study, view, study.seeds[0], ground_truth, lambda d, m, v=view: recon_path_of(d, v, m))
    atomic_write_text(out["overlap"], overlap_summary(overlap_paths))
    runtime = agg.runtime_table(benchmarks)
    atomic_write_text(out["runtime"], runtime.to_csv(index=False, lineterminator="\n"))
    checks = {"rows": int(len(table)), "cells": len(cells), "deltas": len(delta_records), "highlights": len(lines)}
    produced = [out["metrics"], out["summary"], out["highlights"], out["frc_figure"], out["overlap"], out["runtime"]]
    produced += [out["dose_response_dir"] / f"{q}_{m}.png" for q, m in DOSE_RESPONSE]
    produced += [out["montage_dir"] / f"montage_{v.name}.png" for v in study.views]
    write_sentinel(
        out["sentinel"],
        step="phase_g.report",
        inputs=[str(c["path"]) for c in cells] + [str(s) for s in input_sentinels],
        outputs=[str(p) for p in produced],
        checks=checks,
        config_hash=study.config_hash(),
        wall_time_s=time.perf_counter() - t0,
    )
    log.info("report: %s", checks)
    return {"table": table, "highlights": lines}
