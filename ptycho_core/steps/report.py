"""Workflow steps ``report`` and ``inventory``: the study report's data, tables and figures.

``report`` reads every cell's metrics table and alignment record (its failed
runs, :mod:`ptycho_core.evaluate.failed_runs`), aggregates them
(:mod:`ptycho_core.evaluate.tables`; one tidy table feeds everything), and
writes: the tidy table, the summary JSON (means, spread, deltas, per-cell
verdicts and crossover doses with their intervals), highlights and the
landing page generated from that JSON, dose-response figures (the crossover
metric's with its threshold and crossover doses leads the landing page) and FRC curves
(:mod:`ptycho_core.figures.study`), a reconstruction montage per view
(:mod:`ptycho_core.figures.comparison`), an overlap summary
(:mod:`ptycho_core.evaluate.overlap_table`) and a run-time (cost) table
from the ``benchmark:`` files of every job before the report: per rule, per
rule and method and per cell replicate (:mod:`ptycho_core.evaluate.runtime`).
``inventory`` lists the study's artifacts.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ptycho_core import layout
from ptycho_core.config import StudyConfig
from ptycho_core.evaluate import tables as agg
from ptycho_core.evaluate import verdicts
from ptycho_core.evaluate.failed_runs import collect_failed_runs, failed_run_lines
from ptycho_core.evaluate.headline import CROSSOVER, landing_rst, summary_lines, view_overlap, wide_csv
from ptycho_core.evaluate.overlap_table import overlap_summary
from ptycho_core.evaluate.rows import DOSE_RESPONSE
from ptycho_core.evaluate.runtime import REPORT_RULES, runtime_csv, runtime_table
from ptycho_core.figures.comparison import montage_figure
from ptycho_core.figures.study import dose_response_figure, frc_figure
from ptycho_core.io.npz import atomic_write_text
from ptycho_core.io.records import INVENTORY, OVERLAP_RECORD, SUMMARY_DOCUMENT
from ptycho_core.io.sentinel import sha256_file
from ptycho_core.layout import ReportFiles
from ptycho_core.steps.skeleton import Step

log = logging.getLogger(__name__)


def inventory(root: str | Path, study: StudyConfig, directories=("results", "logs", "benchmarks")) -> str:
    """CSV text: relative path, size in bytes, sha256 and ``in_study`` of every file under ``directories``.

    ``in_study``: whether the file is one a run of ``study`` writes
    (:func:`ptycho_core.layout.study_files`); a file left by an earlier study
    in the same directory (a dose, view or seed since removed) is not.
    """
    root = Path(root)
    expected = layout.study_files(study)
    rows = []
    for d in directories:
        for p in sorted((root / d).rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                rel = p.relative_to(root).as_posix()
                rows.append((rel, p.stat().st_size, sha256_file(p), "yes" if rel in expected else "no"))
    return INVENTORY.format(rows, source="inventory")


def run_inventory(study: StudyConfig, *, out_path: str | Path, root: str | Path = ".") -> None:
    """Workflow step ``inventory``: write :func:`inventory` of ``root`` to ``out_path`` (atomically)."""
    atomic_write_text(out_path, inventory(root, study))


def config_lines(study: StudyConfig, diameter: float) -> list[str]:
    """The configuration in a few lines, for the report's landing page."""
    o, p, t, c = study.object, study.probe, study.training, study.ptychi
    doses = ", ".join(study.dose_labels())
    return [
        f"diffraction patterns N = {study.N} px; object {o.family}, {o.size} x {o.size} px"
        + ("" if o.train_seed is None else " (networks trained on a second object of the family)"),
        f"probe {p.kind}, FWHM diameter {diameter:.2f} px",
        f"doses (photons per pattern): {doses}",
        "views: "
        + ", ".join(f"{v.name} (stride {v.stride})" for v in study.views)
        + f"; base scan step {study.scan.step_fraction:g} x FWHM",
        f"seeds: {', '.join(str(s) for s in study.seeds)}",
        (
            f"networks: filters {list(t.filters)}, up to {t.epochs} epochs, {t.precision}; "
            f"PtyChi LSQML {c.epochs} epochs, {c.noise_model} noise model"
        ),
    ]


def probe_diameter(overlap_paths: dict) -> float:
    """The study's probe FWHM diameter (object pixels), as every cell's overlap record (views step) measured it.

    One probe serves the whole study, so every record must agree; a disagreement
    means the files come from different studies and is an error naming them.
    """
    found = {str(path): float(OVERLAP_RECORD.read(path)["probe_diameter_px"]) for path in overlap_paths.values()}
    values = sorted(set(found.values()))
    if not values:
        raise ValueError("report: no overlap records to read the probe diameter from")
    if values[-1] - values[0] > 1e-9 * values[-1]:
        raise ValueError(f"report: the overlap records disagree on the probe FWHM diameter: {found}")
    return values[0]


def _figure_caption(quantity: str, metric: str, diameter: float) -> str:
    """The landing figure's caption: what the band, the line and the axes show."""
    label = agg.METRIC_LABELS.get(metric, metric)
    return (
        f"{quantity} {label} against dose per view: mean over seeds, 95 % Student-t band (n >= 2), threshold "
        f"{CROSSOVER[2]:g} (dashed), crossover doses (diamonds; bars: intervals). Bottom axis: photons per pattern; "
        f"top: photons per illuminated pixel (dose / area of the probe's FWHM disc, D = {diameter:.2f} px)."
    )


def run_report(study: StudyConfig, *, out: ReportFiles, root: str | Path = ".") -> dict:
    """Write every report artifact of ``out`` from the study's cells below ``root``
    (paths: :mod:`ptycho_core.layout`)."""
    cells = layout.cells(study)
    scores = {c: layout.scores(c).under(root) for c in cells}
    views = {c: layout.view(c).under(root) for c in cells}
    ground_truth = layout.ground_truth(study.seeds[0]).under(root)  # the montages show the first replicate
    with Step(
        "report",
        study,
        sentinel=out.sentinel,
        depends_on=("physics", "views", "training", "refinement", "ptychi", "stopping"),
        input_sentinels=[
            ground_truth.sentinel,
            *(v.sentinel for v in views.values()),
            *(
                f.under(root).sentinel for c in cells for f in layout.reconstructions(c).values()
            ),  # the montages read them
            *(s.sentinel for s in scores.values()),
        ],
    ) as step:
        step.inputs += [scores[c].metrics for c in cells] + [scores[c].alignment for c in cells]
        cell_records = [
            {"dose": c.photons(study), "view": c.view, "seed": int(c.seed), "path": scores[c].metrics} for c in cells
        ]
        overlap_paths = {(c.view, c.photons(study), int(c.seed)): views[c].overlap for c in cells}
        table = agg.collect_metrics(cell_records)
        failed = collect_failed_runs([{**r, "path": scores[c].alignment} for r, c in zip(cell_records, cells)])
        diameter = probe_diameter(overlap_paths)
        summary = agg.summarise(table, fwhm_diameter_px=diameter, failed={k: list(v) for k, v in failed.items()})
        delta_records = agg.deltas(table)
        agg.write_report_data(
            table, summary, delta_records, out.metrics, out.summary, **verdicts.evidence(summary, CROSSOVER)
        )
        document = SUMMARY_DOCUMENT.read(out.summary)  # every text view below is generated from the JSON
        atomic_write_text(out.deltas, "\n".join(agg.delta_lines(document)) + "\n")
        overlap = view_overlap(overlap_paths)
        lines = summary_lines(document["summary"], overlap, CROSSOVER[2])
        lines += [f"Failed run: {line}" for line in failed_run_lines(failed)]
        atomic_write_text(out.highlights, "\n".join(lines) + "\n")
        atomic_write_text(out.headline, wide_csv(document["summary"], overlap))
        landing_figures = []
        for path, (quantity, metric) in zip(out.dose_response, DOSE_RESPONSE, strict=True):
            crossing = (quantity, metric) == CROSSOVER[:2]
            dose_response_figure(
                path,
                table,
                metric,
                quantity,
                fwhm_diameter_px=diameter,
                threshold=CROSSOVER[2] if crossing else None,
                crossovers=document["crossovers"] if crossing else (),
            )
            if crossing:  # the landing page leads with it, embedded
                landing_figures.append((Path(path).as_posix(), _figure_caption(quantity, metric, diameter)))
        landing = landing_rst(
            study_name=study.name,
            config_lines=config_lines(study, diameter),
            summary=document["summary"],
            overlap=overlap,
            threshold=CROSSOVER[2],
            figures=landing_figures,
        )
        atomic_write_text(out.landing, landing)
        frc_figure(out.frc, [(c.photons(study), c.view, int(c.seed), scores[c].frc) for c in cells])
        seed = study.seeds[0]  # the montage shows the first replicate
        for path, v in zip(out.montages, (v.name for v in study.views), strict=True):
            montage_figure(
                path,
                study,
                v,
                seed,
                ground_truth.obj,
                lambda label, m, v=v: layout.reconstruction(layout.Cell(label, seed, v, m)).under(root).recon,
                lambda label, v=v: layout.scores(layout.Cell(label, seed, v)).under(root).alignment,
            )
        atomic_write_text(out.overlap, overlap_summary(overlap_paths))
        jobs = [(r, c, os.path.join(root, p)) for r, c, p in layout.benchmark_jobs(study) if r not in REPORT_RULES]
        runtime = runtime_table(jobs, cell_replicates=len(cells))
        atomic_write_text(out.runtime, runtime_csv(runtime))
        step.checks.update(
            {
                "probe_fwhm_diameter_px": diameter,
                "rows": int(len(table)),
                "cells": len(cells),
                "deltas": len(delta_records),
                "verdicts": len(document["verdicts"]),
                "verdict_winners": sum(v["winner"] is not None for v in document["verdicts"]),
                "failed_runs": sum(len(v) for v in failed.values()),
                "crossovers": len(document["crossovers"]),
                "highlights": len(lines),
            }
        )
        step.outputs += [p for p in out if p not in (out.sentinel, out.inventory)]
    log.info("report: %s", step.checks)
    return {"table": table, "highlights": lines}
