"""Workflow steps ``report`` and ``inventory`` (phase G): the study report's data, tables and figures.

``report`` reads every phase F metrics table, aggregates them
(:mod:`ptycho_core.evaluate.tables`; one tidy table feeds everything), and
writes: the tidy table, the summary JSON (means, spread, deltas), highlights
generated from that JSON, dose-response figures and FRC curves
(:mod:`ptycho_core.figures.study`), a reconstruction montage per view
(:mod:`ptycho_core.figures.comparison`), an overlap summary
(:mod:`ptycho_core.evaluate.overlap_table`) and a run-time table from the
``benchmark:`` files (:mod:`ptycho_core.evaluate.runtime`). ``inventory``
lists the study's artifacts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from pathlib import Path

from ptycho_core.config import StudyConfig
from ptycho_core.evaluate import tables as agg
from ptycho_core.evaluate.headline import landing_rst, summary_lines, view_overlap, wide_csv
from ptycho_core.evaluate.overlap_table import overlap_summary
from ptycho_core.evaluate.rows import DOSE_RESPONSE
from ptycho_core.evaluate.runtime import runtime_table
from ptycho_core.figures.comparison import montage_figure
from ptycho_core.figures.study import dose_response_figure, frc_figure
from ptycho_core.io.npz import atomic_write_text
from ptycho_core.steps.skeleton import Step

log = logging.getLogger(__name__)


#: A path part naming a cell: ``dose_<label>`` (as ``config.dose_label`` writes it), ``view_<name>``, ``seed_<int>``.
_CELL_PART = re.compile(r"^(?:dose_(?P<dose>\d(?:\.\d+)?e-?\d+)|view_(?P<view>[A-Za-z0-9]+)|seed_(?P<seed>\d+))$")


def in_study(rel_path: str, study: StudyConfig) -> bool:
    """Whether a file's cell labels (``dose_<d>``, ``view_<v>``, ``seed_<s>`` path parts) all belong to ``study``.

    A file left by an earlier study in the same directory (a dose, view or
    seed since removed from the configuration) is not.
    """
    allowed = {
        "dose": set(study.dose_labels()),
        "view": {v.name for v in study.views},
        "seed": {str(s) for s in study.seeds},
    }
    for part in Path(rel_path).parts[:-1]:  # directories only
        match = _CELL_PART.match(part)
        if match and any(value is not None and value not in allowed[kind] for kind, value in match.groupdict().items()):
            return False
    return True


def inventory(root: str | Path, study: StudyConfig, directories=("results", "logs", "benchmarks")) -> str:
    """CSV text: relative path, size in bytes, sha256 and ``in_study`` (see :func:`in_study`) of every file under ``directories``."""
    root = Path(root)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "bytes", "sha256", "in_study"])
    for d in directories:
        for p in sorted((root / d).rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                rel = p.relative_to(root).as_posix()
                w.writerow([rel, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest(), "yes" if in_study(rel, study) else "no"])
    return buf.getvalue()


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
        "views: " + ", ".join(f"{v.name} (stride {v.stride})" for v in study.views) + f"; base scan step {study.scan.step_fraction:g} x FWHM",
        f"seeds: {', '.join(str(s) for s in study.seeds)}",
        f"networks: filters {list(t.filters)}, up to {t.epochs} epochs, {t.precision}; PtyChi LSQML {c.epochs} epochs, {c.noise_model} noise model",
    ]


def probe_diameter(overlap_paths: dict) -> float:
    """The study's probe FWHM diameter (object pixels), as every cell's phase D overlap record measured it.

    One probe serves the whole study, so every record must agree; a disagreement
    means the files come from different studies and is an error naming them.
    """
    found = {str(path): float(json.loads(Path(path).read_text())["probe_diameter_px"]) for path in overlap_paths.values()}
    values = sorted(set(found.values()))
    if not values:
        raise ValueError("report: no phase D overlap records to read the probe diameter from")
    if values[-1] - values[0] > 1e-9 * values[-1]:
        raise ValueError(f"report: the overlap records disagree on the probe FWHM diameter: {found}")
    return values[0]


def run_report(
    study: StudyConfig,
    *,
    cells: list[dict],
    frc_tables: list[tuple],
    overlap_paths: dict,
    benchmarks: dict,
    ground_truth: str | Path,
    recon_path_of,
    alignment_path_of,
    input_sentinels: list,
    out: dict,
) -> dict:
    """Write every phase G artifact named in ``out`` and the sentinel ``out['sentinel']``."""
    with Step(
        "report",
        study,
        sentinel=out["sentinel"],
        depends_on=("physics", "views", "training", "refinement", "ptychi"),
        input_sentinels=input_sentinels,
    ) as step:
        step.inputs += [c["path"] for c in cells]
        table = agg.collect_metrics(cells)
        diameter = probe_diameter(overlap_paths)
        summary = agg.summarise(table, fwhm_diameter_px=diameter)
        delta_records = agg.deltas(table)
        agg.write_report_data(table, summary, delta_records, out["metrics"], out["summary"])
        document = json.loads(Path(out["summary"]).read_text())
        atomic_write_text(out["deltas"], "\n".join(agg.delta_lines(document)) + "\n")
        overlap = view_overlap(overlap_paths)
        lines = summary_lines(summary, overlap)
        atomic_write_text(out["highlights"], "\n".join(lines) + "\n")
        atomic_write_text(out["headline"], wide_csv(summary, overlap))
        landing = landing_rst(study_name=study.name, config_lines=config_lines(study, diameter), summary=summary, overlap=overlap)
        atomic_write_text(out["landing"], landing)
        for quantity, metric in DOSE_RESPONSE:
            dose_response_figure(out["dose_response_dir"] / f"{quantity}_{metric}.png", table, metric, quantity, fwhm_diameter_px=diameter)
        frc_figure(out["frc_figure"], frc_tables)
        for view in (v.name for v in study.views):
            montage_figure(
                out["montage_dir"] / f"montage_{view}.png", study, view, study.seeds[0], ground_truth,
                lambda d, m, v=view: recon_path_of(d, v, m), lambda d, v=view: alignment_path_of(d, v),
            )
        atomic_write_text(out["overlap"], overlap_summary(overlap_paths))
        runtime = runtime_table(benchmarks)
        atomic_write_text(out["runtime"], runtime.to_csv(index=False, lineterminator="\n"))
        step.checks.update({"probe_fwhm_diameter_px": diameter, "rows": int(len(table)), "cells": len(cells), "deltas": len(delta_records), "highlights": len(lines)})
        step.outputs += [out["metrics"], out["summary"], out["highlights"], out["deltas"], out["headline"], out["landing"]]
        step.outputs += [out["frc_figure"], out["overlap"], out["runtime"]]
        step.outputs += [out["dose_response_dir"] / f"{q}_{m}.png" for q, m in DOSE_RESPONSE]
        step.outputs += [out["montage_dir"] / f"montage_{v.name}.png" for v in study.views]
    log.info("report: %s", step.checks)
    return {"table": table, "highlights": lines}
