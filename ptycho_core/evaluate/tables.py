"""The report's core: aggregate every cell's score tables, summarise, compare, report.

Holds the ingestion of the score tables (``metrics.csv``, ``frc.csv``),
the statistics over seeds, the deltas, the one JSON and the highlights
generated from it. The tables' columns are the records of
:mod:`ptycho_core.io.records` (:data:`~ptycho_core.io.records.METRIC_ROWS`,
:data:`~ptycho_core.io.records.STUDY_METRIC_ROWS`,
:data:`~ptycho_core.io.records.FRC_ROWS`), the quantities and metrics their
rows name those of :mod:`ptycho_core.evaluate.rows`; the study figures drawn from the table are in
:mod:`ptycho_core.figures.study`, the run-time table in
:mod:`ptycho_core.evaluate.runtime`, the overlap table in
:mod:`ptycho_core.evaluate.overlap_table`.

Pure functions with explicit arguments (no module state beyond constants).
The flow of a report is::

    table = collect_metrics(cells)                 # tidy, validated
    summary = summarise(table)                     # per-cell statistics over seeds
    records = deltas(table)                        # PtychoPINN minus each other method
    evidence = verdicts.evidence(summary)          # per-cell verdicts, crossover doses
    write_report_data(table, summary, records, "results/report/metrics.csv",
                      "results/report/summary.json", **evidence)
    lines = delta_lines(json.load(open("results/report/summary.json")))

**The one JSON** (written by :func:`write_report_data`, built by
:func:`report_document`) is an object with the keys

- ``schema_version`` (:data:`ptycho_core.io.records.SUMMARY_VERSION`),
- ``summary``: the value of :func:`summarise` (a *list of records* under
  ``records``; records sort and diff better than nested dicts and need no
  stringified float keys),
- ``deltas``: the list of records of :func:`deltas`,
- ``verdicts`` and ``crossovers``: the per-cell verdicts and the crossover
  doses with their intervals, computed from the summary by
  :func:`ptycho_core.evaluate.verdicts.evidence` and passed in (this module
  does not import that one: the score step loads this module, and an edit of
  the verdicts must not rerun it),
- ``conventions``: the direction of every metric, the interval method, the
  verdict and crossover rules, in words.

Its contract is :data:`ptycho_core.io.records.SUMMARY_DOCUMENT`: the writer
validates the document before writing it, and the report reads it back through
the same record.

**Every text view is generated from that JSON by one function**,
:func:`highlights` (docs/DESIGN.md section 9, lesson 9): no other code formats the
delta numbers, and each number carries an explicit sign (``f"{x:+.3f}"``).

**Directions.** Higher is better for ``ssim``, ``ms_ssim``, ``psnr`` and for
the FRC resolutions ``frc50`` and ``frc1_7``: they are the *spatial frequency*
(cycles/pixel) at which the Fourier ring correlation first drops below the
threshold (0.5 or 1/7), so a higher frequency means the reconstruction agrees
with the ground truth down to finer detail (a smaller resolution length
1/f pixels). They saturate at the Nyquist frequency 0.5 cycles/pixel when the
curve never drops below the threshold
(:func:`ptycho_core.evaluate.metrics.frc_resolution`). Lower is better for ``mae`` and
``rmse``. ``amplitude_scale``, ``ms_ssim_scales`` and ``mean_ratio`` are
aggregated and summarised but have no "better" direction; :func:`deltas`
refuses them.

**Primary and secondary rows.** The quantities ``amplitude`` and ``phase``
hold the strict metrics (the primary results); ``alignment`` what the common
alignment did. ``amplitude_paper`` and ``phase_paper`` hold the secondary,
paper-style metrics of :mod:`ptycho_core.evaluate.metrics` (``ssim``, ``ms_ssim``,
``psnr``, higher is better; ``amplitude_paper`` also ``mean_ratio``, the
ratio of means applied to that row only), kept so that results can be set
beside published PtychoPINN figures. They are required, carried by the tidy
table and the summary, but :func:`deltas` and the highlights use the strict
quantities only (its default ``quantities`` is :data:`QUANTITIES`).

**Deltas** are paired by seed (the same replicate of the same cell is one
pair): ``difference = reference - other`` per seed, then the mean, the
standard deviation (ddof = 1), ``n``, and a two-sided 95 % Student-t
interval ``mean +- t(0.975, n - 1) * std / sqrt(n)`` for ``n >= 2``. With
``n = 1`` no interval is invented: ``interval`` is ``null`` and ``note`` says
``"n = 1: no interval"``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ptycho_core.config import dose_label
from ptycho_core.evaluate.rows import (
    ALIGNMENT,
    METRICS,
    PAPER_AMPLITUDE_METRICS,
    PAPER_METRICS,
    PAPER_QUANTITIES,
    QUANTITIES,
)
from ptycho_core.io.npz import DataContractError, atomic_write_text
from ptycho_core.io.records import (
    FRC_ROWS,
    METRIC_ROWS,
    STUDY_METRIC_COLUMNS,
    STUDY_METRIC_ROWS,
    SUMMARY_DOCUMENT,
    SUMMARY_VERSION,
    CsvRecord,
)
from ptycho_core.methods import Method
from ptycho_core.physics.probe import photons_per_illuminated_pixel

#: Metrics where a higher value is better (FRC resolutions are frequencies in cycles/pixel).
HIGHER_IS_BETTER = frozenset({"ssim", "ms_ssim", "psnr", "frc50", "frc1_7"})
#: Metrics where a lower value is better (errors).
LOWER_IS_BETTER = frozenset({"mae", "rmse"})

#: Strict metrics compared by :func:`deltas` (never the paper-style rows).
DELTA_METRICS = ("ms_ssim", "ssim", "psnr", "mae", "frc50", "frc1_7")
#: (quantity, metric) of the secondary paper-style rows every method must have.
PAPER_ROWS = tuple((q, m) for q in PAPER_QUANTITIES for m in PAPER_METRICS) + tuple(
    (PAPER_QUANTITIES[QUANTITIES.index("amplitude")], m) for m in PAPER_AMPLITUDE_METRICS
)
REFERENCE = Method.PTYCHOPINN.value
CONFIDENCE = 0.95
NO_INTERVAL_NOTE = "n = 1: no interval"

#: Display names of metrics in text and figures (identifiers stay the metric ids).
METRIC_LABELS = {
    "mae": "MAE",
    "rmse": "RMSE",
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "ms_ssim": "MS-SSIM",
    "frc50": "FRC 0.5 resolution (cycles/px)",
    "frc1_7": "FRC 1/7 resolution (cycles/px)",
    "amplitude_scale": "amplitude scale",
    "ms_ssim_scales": "MS-SSIM scales",
    "mean_ratio": "ratio of means mean|gt| / mean|recon|",
}


def t_half_width(std: float | None, n: int) -> float | None:
    """Half-width of the two-sided :data:`CONFIDENCE` Student-t interval of a mean of ``n`` values with sample std
    ``std``; None when n < 2."""
    from scipy.stats import t as student_t

    if std is None or n < 2:
        return None
    return float(student_t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * std / math.sqrt(n)


class AggregationError(ValueError):
    """A score table is missing, incomplete, inconsistent or not finite."""


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def cell_name(dose, view, seed=None) -> str:
    """How messages name a cell: ``"dose 1e4, view dense, seed 0"`` (seed optional)."""
    text = f"dose {dose_label(dose)}, view {view}"
    return text if seed is None else f"{text}, seed {int(seed)}"


def _canonical_methods(methods: Iterable[str] | None) -> tuple[str, ...]:
    if methods is None:
        return tuple(m.value for m in Method)
    out = []
    for m in methods:
        try:
            out.append(Method.parse(str(m)).value)
        except ValueError as exc:
            raise AggregationError(f"expected methods: {exc}") from None
    if not out:
        raise AggregationError("expected methods: none given")
    return tuple(out)


def direction(metric: str) -> str:
    """``"higher"`` or ``"lower"``: which values of ``metric`` are better; a metric with no better direction raises
    :class:`AggregationError`."""
    if metric in HIGHER_IS_BETTER:
        return "higher"
    if metric in LOWER_IS_BETTER:
        return "lower"
    raise AggregationError(
        f"metric '{metric}' has no better direction; expected one of {sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER)}"
    )


def _read_rows(record: CsvRecord, path: Path, where: str) -> pd.DataFrame:
    """The rows of ``record`` in ``path``, validated by the record (columns, types, finite numbers); errors name
    the file and ``where``."""
    prefix = f"{where}: " if where else ""
    if not path.is_file():
        raise AggregationError(f"{path}: {prefix}{record.name} file not found")
    try:
        rows = record.read(path, source=f"{path}: {where}" if where else str(path))
    except DataContractError as exc:
        raise AggregationError(str(exc)) from None
    return pd.DataFrame(rows, columns=list(record.fields))


# --------------------------------------------------------------------------
# aggregation
# --------------------------------------------------------------------------


def collect_metrics(
    cells: Sequence[Mapping],
    methods: Iterable[str] | None = None,
    metrics: Iterable[str] = METRICS,
    quantities: Iterable[str] = QUANTITIES,
    paper: Iterable[tuple[str, str]] = PAPER_ROWS,
) -> pd.DataFrame:
    """Every cell's ``metrics.csv`` (score step) in one tidy, validated table.

    ``cells``: one mapping per cell with ``dose`` (float), ``view``
    (str), ``seed`` (int) and ``path`` (its ``metrics.csv``).

    Checks, each failing with :class:`AggregationError` naming the file, the
    cell and what is wrong: the grid is complete (every dose x view x seed
    combination of the cells given is present exactly once); every row's
    method is a canonical id among ``methods`` (default: all of
    :class:`~ptycho_core.methods.Method`) and every expected method is
    present; every expected ``metric`` x ``quantity`` and every secondary
    (quantity, metric) pair of ``paper`` (default :data:`PAPER_ROWS`; pass
    ``()`` to require none) is present for every method; every quantity is
    known (strict, ``alignment`` or paper-style); no (method, quantity,
    metric) row appears twice; every value is finite. Rows beyond the
    expected metrics (``amplitude_scale``, ``ms_ssim_scales``, alignment)
    are kept.

    Returns columns :data:`~ptycho_core.io.records.STUDY_METRIC_COLUMNS` (dose float, view str, seed int,
    value float), sorted by dose, view, seed, method, quantity, metric.
    """
    expected_methods = _canonical_methods(methods)
    metrics, quantities, paper = tuple(metrics), tuple(quantities), tuple(tuple(p) for p in paper)
    if not cells:
        raise AggregationError("collect_metrics: no cells given")

    seen: dict[tuple, str] = {}
    for cell in cells:
        missing = [k for k in ("dose", "view", "seed", "path") if k not in cell]
        if missing:
            raise AggregationError(f"cell {dict(cell)!r}: lacks key(s) {missing}")
        key = (float(cell["dose"]), str(cell["view"]), int(cell["seed"]))
        if not (math.isfinite(key[0]) and key[0] > 0):
            raise AggregationError(f"cell {dict(cell)!r}: dose must be positive and finite")
        if key in seen:
            raise AggregationError(f"cell {cell_name(*key)} listed twice: {seen[key]} and {cell['path']}")
        seen[key] = str(cell["path"])
    doses = sorted({k[0] for k in seen})
    views = sorted({k[1] for k in seen})
    seeds = sorted({k[2] for k in seen})
    for d in doses:
        for v in views:
            for s in seeds:
                if (d, v, s) not in seen:
                    raise AggregationError(
                        f"cell {cell_name(d, v, s)} missing: no metrics.csv given for it "
                        f"(grid: doses {[dose_label(x) for x in doses]}, views {views}, seeds {seeds})"
                    )

    frames = []
    for (dose, view, seed), path_text in sorted(seen.items()):
        path = Path(path_text)
        where = f"cell {cell_name(dose, view, seed)}"
        df = _read_rows(METRIC_ROWS, path, where)
        if df.empty:
            raise AggregationError(f"{path}: {where}: metrics table has no rows")
        unknown = sorted(set(df["method"]) - set(expected_methods))
        if unknown:
            raise AggregationError(
                f"{path}: {where}: unexpected method(s) {unknown}; expected canonical ids {list(expected_methods)}"
            )
        known_q = (*QUANTITIES, ALIGNMENT, *PAPER_QUANTITIES)
        bad_q = sorted(set(df["quantity"]) - set(known_q))
        if bad_q:
            raise AggregationError(f"{path}: {where}: unknown quantity(ies) {bad_q}; expected {list(known_q)}")
        dup = df.duplicated(["method", "quantity", "metric"], keep=False)
        if dup.any():
            first = df[dup].iloc[0]
            raise AggregationError(
                f"{path}: {where}: duplicate row(s) for method {first['method']}, "
                f"{first['quantity']} {first['metric']} ({int(dup.sum())} rows)"
            )
        present = set(zip(df["method"], df["quantity"], df["metric"]))
        for m in expected_methods:
            if not any(p[0] == m for p in present):
                raise AggregationError(f"{path}: {where}: method {m} missing (no rows)")
            lacking = [f"{q} {k}" for q in quantities for k in metrics if (m, q, k) not in present]
            lacking += [f"{q} {k}" for q, k in paper if (m, q, k) not in present]
            if lacking:
                raise AggregationError(f"{path}: {where}: method {m} lacks metric(s) {lacking}")
        values = df["value"].to_numpy(dtype=float)
        frames.append(
            pd.DataFrame(
                {
                    "dose": dose,
                    "view": view,
                    "seed": seed,
                    "method": df["method"].to_numpy(),
                    "quantity": df["quantity"].to_numpy(),
                    "metric": df["metric"].to_numpy(),
                    "value": values,
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    return _sorted_table(table)


def _sorted_table(table: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in STUDY_METRIC_COLUMNS if c not in table.columns]
    if missing:
        raise AggregationError(f"table lacks column(s) {missing}; expected {list(STUDY_METRIC_COLUMNS)}")
    t = table[list(STUDY_METRIC_COLUMNS)].copy()
    t["dose"] = t["dose"].astype(float)
    t["view"] = t["view"].astype(str)
    t["seed"] = t["seed"].astype(np.int64)
    t["method"] = t["method"].astype(str)
    t["quantity"] = t["quantity"].astype(str)
    t["metric"] = t["metric"].astype(str)
    t["value"] = t["value"].astype(float)
    return t.sort_values(list(STUDY_METRIC_COLUMNS[:-1]), kind="mergesort").reset_index(drop=True)


def check_table(table: pd.DataFrame) -> pd.DataFrame:
    """The tidy table with its columns typed and sorted; a non-finite value or a duplicate row raises
    :class:`AggregationError`."""
    t = _sorted_table(table)
    if not np.isfinite(t["value"].to_numpy()).all():
        bad = t[~np.isfinite(t["value"])].iloc[0]
        raise AggregationError(
            f"table: value not finite for {cell_name(bad['dose'], bad['view'], bad['seed'])}, "
            f"method {bad['method']}, {bad['quantity']} {bad['metric']}"
        )
    dup = t.duplicated(list(STUDY_METRIC_COLUMNS[:-1]), keep=False)
    if dup.any():
        bad = t[dup].iloc[0]
        raise AggregationError(
            f"table: duplicate row for {cell_name(bad['dose'], bad['view'], bad['seed'])}, "
            f"method {bad['method']}, {bad['quantity']} {bad['metric']}"
        )
    return t


# --------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------


def summarise(
    table: pd.DataFrame,
    *,
    fwhm_diameter_px: float | None = None,
    failed: Mapping[tuple[float, str, str], Iterable[int]] | None = None,
) -> dict:
    """Per (dose, view, method, quantity, metric) statistics across replicate seeds.

    With the probe's FWHM diameter (object pixels), each record gives the
    dose in physical terms, ``photons_per_illuminated_pixel``
    (:func:`ptycho_core.physics.probe.photons_per_illuminated_pixel`; None
    without it).

    ``failed``: ``{(dose, view, method): seeds}`` of the failed runs
    (:func:`ptycho_core.evaluate.failed_runs.collect_failed_runs`); each is
    scored as produced, so it is one of the record's seeds, kept in its
    statistics and named in ``failed_seeds``.

    Returns a JSON-serialisable dict::

        {"layout": "records",
         "group_by": ["dose", "view", "method", "quantity", "metric"],
         "std_ddof": 1,
         "records": [{"dose", "dose_label", "photons_per_illuminated_pixel", "view", "method",
                      "quantity", "metric", "mean", "std", "n", "min", "max", "seeds", "values",
                      "failed_seeds"}, ...]}

    ``std`` is the sample standard deviation (ddof = 1), ``None`` when
    ``n = 1``; ``values`` are the per-seed values in the order of ``seeds``
    (the verdicts pair them by seed). Records are sorted by the group keys;
    all numbers are Python floats/ints, never NaN.
    """
    t = check_table(table)
    keys = ["dose", "view", "method", "quantity", "metric"]
    failed = {(float(d), str(v), str(m)): sorted(int(s) for s in seeds) for (d, v, m), seeds in (failed or {}).items()}
    scored = {(float(d), str(v), str(m)): set(g["seed"].astype(int)) for (d, v, m), g in t.groupby(keys[:3])}
    for key, seeds in failed.items():
        if not set(seeds) <= scored.get(key, set()):
            raise AggregationError(
                f"failed runs of {key[2]} in cell {cell_name(key[0], key[1])}: seeds {seeds}, but it was scored at "
                f"{sorted(scored.get(key, set()))} (a failed run is scored as produced)"
            )
    records = []
    for key, g in t.groupby(keys, sort=True):
        g = g.sort_values("seed", kind="mergesort")
        v = g["value"].to_numpy(dtype=float)
        n = int(v.size)
        records.append(
            {
                "dose": float(key[0]),
                "dose_label": dose_label(key[0]),
                "photons_per_illuminated_pixel": None
                if fwhm_diameter_px is None
                else photons_per_illuminated_pixel(key[0], fwhm_diameter_px),
                "view": str(key[1]),
                "method": str(key[2]),
                "quantity": str(key[3]),
                "metric": str(key[4]),
                "mean": float(v.mean()),
                "std": float(v.std(ddof=1)) if n >= 2 else None,
                "n": n,
                "min": float(v.min()),
                "max": float(v.max()),
                "seeds": [int(s) for s in g["seed"]],
                "values": [float(x) for x in v],
                "failed_seeds": failed.get((float(key[0]), str(key[1]), str(key[2])), []),
            }
        )
    return {"layout": "records", "group_by": keys, "std_ddof": 1, "records": records}


def deltas(
    table: pd.DataFrame,
    reference: str = REFERENCE,
    metrics: Sequence[str] = DELTA_METRICS,
    quantities: Sequence[str] = QUANTITIES,
) -> list[dict]:
    """``reference`` minus each other method, paired by seed, per dose, view, quantity, metric.

    One record per (other method, dose, view, quantity, metric) with:
    ``reference``, ``other``, ``dose``, ``dose_label``, ``view``,
    ``quantity``, ``metric``, ``direction`` ("higher" or "lower" is better),
    ``seeds`` and ``differences`` (per seed, reference - other), ``mean``,
    ``std`` (ddof = 1, ``None`` for n = 1), ``n``, ``confidence`` (0.95),
    ``interval`` ([low, high] Student-t, ``None`` for n = 1), ``note``
    (``"n = 1: no interval"`` for n = 1, else ``None``) and ``better``:
    True when the mean difference favours the reference (positive for
    higher-is-better metrics, negative for lower-is-better), False otherwise
    (a zero mean is not better); ``interval_excludes_zero`` (``None`` for
    n = 1) says whether that verdict survives the 95 % interval.

    Fails with :class:`AggregationError` when the reference or a metric is
    missing from a cell, or a seed is present for one method only.
    """

    t = check_table(table)
    reference = str(reference)
    directions = {m: direction(m) for m in metrics}
    methods = sorted(set(t["method"]))
    if reference not in methods:
        raise AggregationError(f"deltas: reference method {reference} missing from the table (methods: {methods})")
    others = [m for m in methods if m != reference]
    if not others:
        raise AggregationError(f"deltas: no method other than {reference} in the table")
    records = []
    for (dose, view), cell in t.groupby(["dose", "view"], sort=True):
        for q in quantities:
            for k in metrics:
                sel = cell[(cell["quantity"] == q) & (cell["metric"] == k)]
                by_method = {
                    m: dict(zip(g["seed"].astype(int), g["value"].astype(float))) for m, g in sel.groupby("method")
                }
                for m in [reference, *others]:
                    if m not in by_method:
                        raise AggregationError(f"deltas: {cell_name(dose, view)}: method {m} lacks {q} {k}")
                ref = by_method[reference]
                for other in others:
                    oth = by_method[other]
                    only_ref, only_oth = sorted(set(ref) - set(oth)), sorted(set(oth) - set(ref))
                    if only_ref or only_oth:
                        side = (
                            f"seed(s) {only_ref} present for {reference} only"
                            if only_ref
                            else f"seed(s) {only_oth} present for {other} only"
                        )
                        raise AggregationError(f"deltas: {cell_name(dose, view)}, {q} {k}: unpaired {side}")
                    seeds = sorted(int(s) for s in ref)
                    diff = np.array([ref[s] - oth[s] for s in seeds], dtype=float)
                    n = int(diff.size)
                    mean = float(diff.mean())
                    if n >= 2:
                        std = float(diff.std(ddof=1))
                        half = t_half_width(std, n)
                        interval, note = [mean - half, mean + half], None
                    else:
                        std, interval, note = None, None, NO_INTERVAL_NOTE
                    better = mean > 0 if directions[k] == "higher" else mean < 0
                    records.append(
                        {
                            "reference": reference,
                            "other": other,
                            "dose": float(dose),
                            "dose_label": dose_label(dose),
                            "view": str(view),
                            "quantity": q,
                            "metric": k,
                            "direction": directions[k],
                            "seeds": seeds,
                            "differences": [float(x) for x in diff],
                            "mean": mean,
                            "std": std,
                            "n": n,
                            "confidence": CONFIDENCE,
                            "interval": interval,
                            "note": note,
                            "better": bool(better),
                            "interval_excludes_zero": None
                            if interval is None
                            else bool(interval[0] > 0 or interval[1] < 0),
                        }
                    )
    return sorted(records, key=_delta_key)


def _delta_key(r: Mapping) -> tuple:
    return (r["dose"], r["view"], r["quantity"], r["metric"], r["other"])


# --------------------------------------------------------------------------
# the one JSON and its text view
# --------------------------------------------------------------------------


def report_document(
    summary: dict, delta_records: list[dict], *, verdicts: Sequence[Mapping], crossovers: Sequence[Mapping]
) -> dict:
    """The report's one JSON document (see the module docs); ``verdicts`` and ``crossovers``:
    :func:`ptycho_core.evaluate.verdicts.evidence` of the summary."""
    return {
        "schema_version": SUMMARY_VERSION,
        "summary": summary,
        "deltas": sorted(delta_records, key=_delta_key),
        "verdicts": list(verdicts),
        "crossovers": list(crossovers),
        "conventions": {
            "difference": "reference - other, paired by seed",
            "interval": f"two-sided {CONFIDENCE:.0%} Student-t: mean +- t(0.975, n-1) * std / sqrt(n); none when n = 1",
            "std_ddof": 1,
            "higher_is_better": sorted(HIGHER_IS_BETTER),
            "lower_is_better": sorted(LOWER_IS_BETTER),
            "primary_quantities": list(QUANTITIES),
            "secondary_paper_quantities": list(PAPER_QUANTITIES),
            "paper_style": "secondary rows in the literature's conventions (phase: each image's own plane removed, "
            "mapped to (phi + pi) / (2 pi), data range 1; amplitude: rescaled by mean_ratio = mean|gt| / mean|recon|, "
            "that row only); not used by the deltas",
            "frc_resolution": "frequency in cycles/pixel where the FRC first drops below the threshold; "
            "higher = finer resolution; capped at Nyquist 0.5",
            "verdict": "per cell and headline metric: best - other paired by seed for the best-mean method against "
            "every other; winner only if every such interval lies on the best's side of 0; else tie, naming the "
            "methods not separable from the best; no verdict when a pair has fewer than 2 seeds (no interval)",
            "crossover": "per view and method: the last crossing of the record's threshold from below going up the "
            "dose ladder, interpolated linearly in log10 dose; interval: where the upper and lower edges of the 95 % "
            "band cross (open bound outside the ladder; not determined when n = 1)",
        },
    }


def write_report_data(
    table: pd.DataFrame,
    summary: dict,
    delta_records: list[dict],
    out_csv,
    out_json,
    *,
    verdicts: Sequence[Mapping],
    crossovers: Sequence[Mapping],
) -> None:
    """Write the tidy table (CSV) and the one JSON, atomically and deterministically.

    The CSV is the :data:`~ptycho_core.io.records.STUDY_METRIC_ROWS` record, rows
    sorted, floats written as Python ``repr`` (round-trip exact). The JSON is
    :func:`report_document` (``verdicts`` and ``crossovers`` passed on), validated by
    :data:`~ptycho_core.io.records.SUMMARY_DOCUMENT`, with sorted keys, two-space
    indent, ``allow_nan=False``.
    """
    t = check_table(table)
    rows = [
        (float(r.dose), r.view, int(r.seed), r.method, r.quantity, r.metric, float(r.value))
        for r in t.itertuples(index=False)
    ]
    csv_text = STUDY_METRIC_ROWS.format(rows, source=str(out_csv))
    doc = report_document(summary, delta_records, verdicts=verdicts, crossovers=crossovers)
    try:
        text = SUMMARY_DOCUMENT.dumps(doc, source=str(out_json))
    except DataContractError as exc:  # a NaN or inf among them, a key of the wrong type
        raise AggregationError(f"report data: {exc}") from None
    atomic_write_text(out_csv, csv_text)
    atomic_write_text(out_json, text)


def delta_lines(summary_json: dict) -> list[str]:
    """The deltas as text (``deltas.txt``), generated from the ``deltas`` of the one JSON (the only formatter of them).

    One line per delta record, in the JSON's order, e.g. (each line wrapped
    here before its statistics)::

        dose 1e4, view dense, phase MS-SSIM: PtychoPINN − PtyChi = +0.052
            (n = 3, 95 % CI [+0.010, +0.094]) — PtychoPINN better
        dose 1e4, view sparse, amplitude MAE: PtychoPINN − Baseline = +0.010
            (n = 1: no interval) — PtychoPINN not better
        dose 1e3, view dense, amplitude MS-SSIM: PtychoPINN − Baseline = +0.020
            (n = 3, 95 % CI [-0.005, +0.045]) — PtychoPINN better (interval includes 0)

    Every number carries an explicit sign (``f"{x:+.3f}"``). Accepts the
    whole document or a mapping with a ``deltas`` list.
    """
    if "deltas" not in summary_json:
        raise AggregationError("delta_lines: the JSON has no 'deltas' list")

    def signed(x: float) -> str:
        return f"{float(x):+.3f}"

    lines = []
    for r in summary_json["deltas"]:
        label = METRIC_LABELS.get(r["metric"], r["metric"])
        head = (
            f"dose {r.get('dose_label') or dose_label(r['dose'])}, view {r['view']}, {r['quantity']} {label}: "
            f"{r['reference']} − {r['other']} = {signed(r['mean'])}"
        )
        if r["interval"] is None:
            stats = f"(n = {int(r['n'])}: no interval)"
        else:
            lo, hi = r["interval"]
            pct = f"{float(r.get('confidence', CONFIDENCE)) * 100:g}"
            stats = f"(n = {int(r['n'])}, {pct} % CI [{signed(lo)}, {signed(hi)}])"
        verdict = f"{r['reference']} better" if r["better"] else f"{r['reference']} not better"
        if r.get("interval_excludes_zero") is False:
            verdict += " (interval includes 0)"
        lines.append(f"{head} {stats} — {verdict}")
    return lines


# --------------------------------------------------------------------------
# FRC curves
# --------------------------------------------------------------------------


def read_frc_table(path, where: str = "") -> pd.DataFrame:
    """A cell's ``frc.csv`` (:data:`~ptycho_core.io.records.FRC_ROWS`), validated: canonical methods,
    known quantities, finite numbers."""
    path = Path(path)
    prefix = f"{where}: " if where else ""
    df = _read_rows(FRC_ROWS, path, where)
    if df.empty:
        raise AggregationError(f"{path}: {prefix}FRC table has no rows")
    for m in sorted(set(df["method"])):
        try:
            Method.parse(m)
        except ValueError as exc:
            raise AggregationError(f"{path}: {prefix}{exc}") from None
    bad_q = sorted(set(df["quantity"]) - set(QUANTITIES))
    if bad_q:
        raise AggregationError(f"{path}: {prefix}unknown quantity(ies) {bad_q}")
    return df
