"""The report's aggregation, deltas, highlights and figures on hand-made score tables.

The grid is 2 doses x 2 views x 3 seeds x 3 methods. Every value is
``BASE[method][metric] + JITTER[method][seed]`` (the same for amplitude and
phase, and for every dose and view), so the expected statistics are written
here in closed form: PtychoPINN's jitter is (-0.01, 0, +0.01) and the other
methods' is 0, hence every PtychoPINN - other difference has the mean
BASE[PINN] - BASE[other] and the standard deviation 0.01 over 3 seeds.
The secondary paper-style rows (quantities ``amplitude_paper`` and
``phase_paper``) hold PAPER_BASE values, deliberately unlike BASE, so that a
delta computed from them by mistake would be visible.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ptycho_core.evaluate.rows import METRICS, PAPER_AMPLITUDE_METRICS, PAPER_METRICS, PAPER_QUANTITIES, QUANTITIES
from ptycho_core.evaluate.tables import (
    NO_INTERVAL_NOTE,
    PAPER_ROWS,
    AggregationError,
    collect_metrics,
    delta_lines,
    deltas,
    report_document,
    summarise,
    write_report_data,
)
from ptycho_core.evaluate.verdicts import evidence as verdict_evidence
from ptycho_core.figures.study import dose_response_figure, frc_figure
from ptycho_core.io.records import (
    INVENTORY,
    STUDY_METRIC_COLUMNS,
    STUDY_METRIC_ROWS,
    SUMMARY_DOCUMENT,
    SUMMARY_VERSION,
)

DOSES = (1e3, 1e4)
VIEWS = ("dense", "sparse")
SEEDS = (0, 1, 2)
METHODS = ("PtychoPINN", "PtychoPINN_TTR", "Baseline", "PtyChi")
BASE = {
    # PINN vs PtyChi: ssim 0.9 vs 0.8 (+0.1, better); PINN vs Baseline: mae 0.05 vs 0.04 (+0.01, not better)
    "PtychoPINN": {"mae": 0.05, "rmse": 0.07, "psnr": 20.0, "ssim": 0.9, "ms_ssim": 0.92, "frc50": 0.25, "frc1_7": 0.4},
    "PtychoPINN_TTR": {
        "mae": 0.03,
        "rmse": 0.05,
        "psnr": 24.0,
        "ssim": 0.97,
        "ms_ssim": 0.98,
        "frc50": 0.35,
        "frc1_7": 0.45,
    },
    "Baseline": {"mae": 0.04, "rmse": 0.06, "psnr": 22.5, "ssim": 0.95, "ms_ssim": 0.9, "frc50": 0.2, "frc1_7": 0.45},
    "PtyChi": {"mae": 0.08, "rmse": 0.1, "psnr": 18.0, "ssim": 0.8, "ms_ssim": 0.85, "frc50": 0.3, "frc1_7": 0.35},
}
#: Paper-style values: PtychoPINN worse than PtyChi here, unlike the strict BASE (ssim 0.9 vs 0.8).
PAPER_BASE = {
    "PtychoPINN": {"ssim": 0.6, "ms_ssim": 0.61, "psnr": 30.0, "mean_ratio": 0.8},
    "PtychoPINN_TTR": {"ssim": 0.65, "ms_ssim": 0.66, "psnr": 31.0, "mean_ratio": 0.9},
    "Baseline": {"ssim": 0.7, "ms_ssim": 0.71, "psnr": 32.0, "mean_ratio": 1.1},
    "PtyChi": {"ssim": 0.75, "ms_ssim": 0.76, "psnr": 33.0, "mean_ratio": 1.0},
}
#: Rows per method and cell: strict metrics + ms_ssim_scales per quantity, amplitude_scale, paper-style rows.
ROWS_PER_METHOD = (
    len(QUANTITIES) * (len(METRICS) + 1) + 1 + len(PAPER_QUANTITIES) * len(PAPER_METRICS) + len(PAPER_AMPLITUDE_METRICS)
)
JITTER = {
    "PtychoPINN": (-0.01, 0.0, 0.01),
    "PtychoPINN_TTR": (0.0, 0.0, 0.0),
    "Baseline": (0.0, 0.0, 0.0),
    "PtyChi": (0.0, 0.0, 0.0),
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def cell_rows(seed: int) -> list[tuple]:
    rows = []
    for m in METHODS:
        for q in QUANTITIES:
            for k in METRICS:
                rows.append((m, q, k, BASE[m][k] + JITTER[m][seed]))
        rows.append((m, "amplitude", "amplitude_scale", 1.0))
        for q in QUANTITIES:
            rows.append((m, q, "ms_ssim_scales", 4.0))
        for q, k in PAPER_ROWS:
            rows.append((m, q, k, PAPER_BASE[m][k]))
    return rows


def write_csv(path, rows, header="method,quantity,metric,value") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        header
        + "\n"
        + "".join(f"{m},{q},{k},{v!r}\n" if isinstance(v, float) else f"{m},{q},{k},{v}\n" for m, q, k, v in rows)
    )


def make_grid(root, doses=DOSES, views=VIEWS, seeds=SEEDS, edit=None) -> list[dict]:
    """Write one metrics.csv per cell; ``edit(dose, view, seed, rows) -> rows`` alters a cell."""
    cells = []
    for d in doses:
        for v in views:
            for s in seeds:
                rows = cell_rows(s)
                if edit is not None:
                    rows = edit(d, v, s, rows)
                path = root / f"dose_{d:g}" / f"view_{v}" / f"seed_{s}" / "metrics.csv"
                write_csv(path, rows)
                cells.append({"dose": d, "view": v, "seed": s, "path": str(path)})
    return cells


@pytest.fixture
def grid(tmp_path):
    return make_grid(tmp_path)


@pytest.fixture
def table(grid):
    return collect_metrics(grid)


def find(records, **kw):
    out = [r for r in records if all(r[k] == v for k, v in kw.items())]
    assert len(out) == 1, (kw, len(out))
    return out[0]


# --------------------------------------------------------------------------
# the tidy table
# --------------------------------------------------------------------------


def test_collect_metrics_tidy_table(table):
    assert tuple(table.columns) == STUDY_METRIC_COLUMNS
    per_cell = len(METHODS) * ROWS_PER_METHOD
    assert len(table) == len(DOSES) * len(VIEWS) * len(SEEDS) * per_cell
    assert table["dose"].dtype == float and table["seed"].dtype == np.int64 and table["value"].dtype == float
    assert set(table["method"]) == set(METHODS)
    assert not table.duplicated(list(STUDY_METRIC_COLUMNS[:-1])).any()
    sel = table[(table.dose == 1e4) & (table.view == "sparse") & (table.seed == 2) & (table.method == "PtychoPINN")]
    v = sel[(sel.quantity == "phase") & (sel.metric == "ssim")]["value"]
    assert v.tolist() == [0.9 + 0.01]
    assert table.equals(table.sort_values(list(STUDY_METRIC_COLUMNS[:-1])).reset_index(drop=True))


def test_collect_metrics_subset_of_methods_and_metrics(tmp_path):
    cells = make_grid(
        tmp_path, edit=lambda d, v, s, rows: [r for r in rows if r[0] not in ("Baseline", "PtychoPINN_TTR")]
    )
    t = collect_metrics(cells, methods=["PtychoPINN", "PtyChi"], metrics=("ssim", "mae"))
    assert set(t["method"]) == {"PtychoPINN", "PtyChi"}
    with pytest.raises(AggregationError, match=r"method (Baseline|PtychoPINN_TTR) missing"):
        collect_metrics(cells)


def test_paper_rows_are_required_and_carried_but_not_compared(table, tmp_path):
    assert set(PAPER_ROWS) == {(q, k) for q in PAPER_QUANTITIES for k in PAPER_METRICS} | {
        ("amplitude_paper", "mean_ratio")
    }
    assert PAPER_QUANTITIES == ("amplitude_paper", "phase_paper")
    # carried: in the tidy table and the summary, with their own values
    sel = table[(table.quantity == "phase_paper") & (table.metric == "ssim") & (table.method == "PtyChi")]
    assert len(sel) == len(DOSES) * len(VIEWS) * len(SEEDS) and set(sel["value"]) == {0.75}
    r = find(
        summarise(table)["records"],
        dose=1e3,
        view="dense",
        method="PtychoPINN",
        quantity="amplitude_paper",
        metric="mean_ratio",
    )
    assert r["mean"] == pytest.approx(0.8, abs=1e-12) and r["std"] == pytest.approx(0.0, abs=1e-12) and r["n"] == 3
    # not compared: the deltas (hence the highlights) use the strict quantities only
    recs = deltas(table)
    assert {r["quantity"] for r in recs} == set(QUANTITIES)
    # but they can be compared on request (higher is better); the ratio has no direction
    paper = deltas(table, quantities=("phase_paper",), metrics=("ssim",))
    r = find(paper, other="PtyChi", dose=1e3, view="dense")
    assert r["direction"] == "higher" and r["mean"] == pytest.approx(0.6 - 0.75, abs=1e-12) and r["better"] is False
    with pytest.raises(AggregationError, match="mean_ratio"):
        deltas(table, quantities=("amplitude_paper",), metrics=("mean_ratio",))
    # required: a missing paper row is named; tables without any pass with paper=()
    cells = make_grid(
        tmp_path / "a",
        edit=lambda d, v, s, rows: [
            r for r in rows if not (r[:3] == ("Baseline", "amplitude_paper", "mean_ratio") and s == 1 and d == 1e4)
        ],
    )
    with pytest.raises(
        AggregationError,
        match=r"dose 1e4, view dense, seed 1: method Baseline lacks metric\(s\) \['amplitude_paper mean_ratio'\]",
    ):
        collect_metrics(cells)
    strict_only = make_grid(
        tmp_path / "b", edit=lambda d, v, s, rows: [r for r in rows if r[1] not in PAPER_QUANTITIES]
    )
    assert set(collect_metrics(strict_only, paper=())["quantity"]) == set(QUANTITIES)
    # an unknown quantity is refused
    typo = make_grid(tmp_path / "c", edit=lambda d, v, s, rows: rows + [("PtyChi", "phase_papers", "ssim", 0.7)])
    with pytest.raises(AggregationError, match=r"unknown quantity\(ies\) \['phase_papers'\]"):
        collect_metrics(typo)


# --------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------


def test_summary_means_and_stds(table):
    summary = summarise(table)
    json.dumps(summary, allow_nan=False)
    recs = summary["records"]
    assert len(recs) == len(DOSES) * len(VIEWS) * len(METHODS) * ROWS_PER_METHOD
    r = find(recs, dose=1e3, view="dense", method="PtychoPINN", quantity="amplitude", metric="ssim")
    assert r["n"] == 3 and r["seeds"] == [0, 1, 2]
    assert r["values"] == pytest.approx(
        [0.89, 0.90, 0.91]
    )  # per seed, in the order of the seeds (the verdicts pair them)
    assert r["mean"] == pytest.approx(0.9, abs=1e-12)
    assert r["std"] == pytest.approx(0.01, abs=1e-12)
    assert (r["min"], r["max"]) == (pytest.approx(0.89), pytest.approx(0.91))
    r = find(recs, dose=1e4, view="sparse", method="PtyChi", quantity="phase", metric="psnr")
    assert r["mean"] == pytest.approx(18.0) and r["std"] == 0.0 and r["dose_label"] == "1e4"


def test_summary_gives_the_dose_per_illuminated_pixel_when_the_probe_is_known(table):
    assert summarise(table)["records"][0]["photons_per_illuminated_pixel"] is None
    D = 5.3
    for r in summarise(table, fwhm_diameter_px=D)["records"]:
        assert r["photons_per_illuminated_pixel"] == pytest.approx(r["dose"] / (math.pi * D**2 / 4), rel=1e-12)


def test_report_reads_one_probe_diameter_from_the_overlap_records(tmp_path):
    from test_records import overlap_record

    from ptycho_core.io.npz import DataContractError
    from ptycho_core.steps.report import probe_diameter

    paths = {}
    for i, (view, d) in enumerate([("dense", 5.3), ("sparse", 5.3)]):
        paths[(view, 1e3, 0)] = tmp_path / f"{i}.json"
        paths[(view, 1e3, 0)].write_text(json.dumps(overlap_record(view=view, probe_diameter_px=d)))
    assert probe_diameter(paths) == 5.3
    paths[("sparse", 1e3, 0)].write_text(json.dumps(overlap_record(view="sparse", probe_diameter_px=6.0)))
    with pytest.raises(ValueError, match="disagree on the probe FWHM diameter"):
        probe_diameter(paths)
    paths[("sparse", 1e3, 0)].write_text(json.dumps({"probe_diameter_px": 5.3}))  # not an overlap record
    with pytest.raises(DataContractError, match=r"1.json: missing key 'metrics_version'"):
        probe_diameter(paths)


def test_overlap_table_has_every_cell_and_split_with_the_overlaps_named_by_meaning(tmp_path):
    from test_records import overlap_record

    from ptycho_core.evaluate.overlap_table import overlap_summary
    from ptycho_core.io.records import OVERLAP_TABLE

    paths = {}
    for i, (view, seed, group) in enumerate([("sparse", 0, 0.3), ("dense", 1, None)]):
        paths[(view, 1e3, seed)] = tmp_path / f"{i}.json"
        paths[(view, 1e3, seed)].write_text(
            json.dumps(
                overlap_record(view=view, seed=seed, test={"group_overlap": group, "neighbour_overlap": 0.1 * (i + 1)})
            )
        )
    text = overlap_summary(paths)
    assert text.splitlines()[0] == (
        "view,dose,seed,split,n_before_view,n_view,n_groups,linear_overlap,group_overlap,neighbour_overlap,group_centre_overlap,group_centre_pairs"
    )
    rows = OVERLAP_TABLE.parse(text, "overlap.csv")
    assert [(r["view"], r["seed"], r["split"]) for r in rows] == [
        ("dense", 1, "train"),
        ("dense", 1, "test"),
        ("sparse", 0, "train"),
        ("sparse", 0, "test"),
    ]
    assert rows[1]["group_overlap"] is None and rows[1]["neighbour_overlap"] == 0.2
    assert rows[3]["group_overlap"] == 0.3 and rows[3]["neighbour_overlap"] == 0.1


def test_summary_n1_has_no_std(tmp_path):
    t = collect_metrics(make_grid(tmp_path, seeds=(2,)))
    r = find(summarise(t)["records"], dose=1e3, view="dense", method="PtychoPINN", quantity="phase", metric="mae")
    assert r["n"] == 1 and r["std"] is None and r["mean"] == r["min"] == r["max"]


# --------------------------------------------------------------------------
# deltas
# --------------------------------------------------------------------------


def test_delta_signs_and_values(table):
    recs = deltas(table)
    assert len(recs) == (len(METHODS) - 1) * len(DOSES) * len(VIEWS) * len(QUANTITIES) * 6
    assert {r["reference"] for r in recs} == {"PtychoPINN"}
    r = find(recs, other="PtyChi", dose=1e4, view="dense", quantity="phase", metric="ssim")
    assert r["mean"] == pytest.approx(0.1, abs=1e-12) and r["better"] is True and r["direction"] == "higher"
    assert r["differences"] == pytest.approx([0.09, 0.1, 0.11], abs=1e-12) and r["seeds"] == [0, 1, 2]
    r = find(recs, other="Baseline", dose=1e3, view="sparse", quantity="amplitude", metric="mae")
    assert r["mean"] == pytest.approx(0.01, abs=1e-12) and r["better"] is False and r["direction"] == "lower"
    r = find(recs, other="PtyChi", dose=1e3, view="sparse", quantity="amplitude", metric="mae")
    assert r["mean"] == pytest.approx(-0.03, abs=1e-12) and r["better"] is True
    r = find(recs, other="Baseline", dose=1e3, view="dense", quantity="phase", metric="psnr")
    assert r["mean"] == pytest.approx(-2.5, abs=1e-12) and r["better"] is False
    # FRC resolution is a frequency in cycles/pixel: higher = finer = better.
    r = find(recs, other="Baseline", dose=1e3, view="dense", quantity="phase", metric="frc50")
    assert r["mean"] == pytest.approx(0.05, abs=1e-12) and r["better"] is True
    r = find(recs, other="PtyChi", dose=1e3, view="dense", quantity="phase", metric="frc50")
    assert r["mean"] == pytest.approx(-0.05, abs=1e-12) and r["better"] is False
    for r in recs:
        expected = BASE["PtychoPINN"][r["metric"]] - BASE[r["other"]][r["metric"]]
        assert r["mean"] == pytest.approx(expected, abs=1e-12)
        assert r["better"] == ((expected > 0) if r["direction"] == "higher" else (expected < 0))


def test_delta_interval_matches_scipy(table):
    recs = deltas(table)
    for r in recs:
        d = np.array(r["differences"])
        assert r["n"] == 3 and r["note"] is None
        assert r["std"] == pytest.approx(d.std(ddof=1), abs=1e-12)
        lo, hi = stats.t.interval(0.95, df=len(d) - 1, loc=d.mean(), scale=stats.sem(d))
        assert r["interval"] == pytest.approx([lo, hi], abs=1e-12)
    r = find(recs, other="PtyChi", dose=1e4, view="dense", quantity="phase", metric="ssim")
    half = stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)
    assert r["interval"] == pytest.approx([0.1 - half, 0.1 + half], abs=1e-12)


def test_delta_n1_has_no_interval(tmp_path):
    t = collect_metrics(make_grid(tmp_path, seeds=(1,)))
    recs = deltas(t)
    assert recs and all(
        r["n"] == 1 and r["interval"] is None and r["std"] is None and r["interval_excludes_zero"] is None for r in recs
    )
    assert all(r["note"] == NO_INTERVAL_NOTE == "n = 1: no interval" for r in recs)
    lines = delta_lines(report_document(summarise(t), recs, **verdict_evidence(summarise(t))))
    assert all("(n = 1: no interval)" in line and "CI" not in line for line in lines)


def test_delta_unpaired_seed_is_refused(table):
    drop = (table.method == "Baseline") & (table.seed == 2) & (table.dose == 1e4) & (table.view == "dense")
    with pytest.raises(AggregationError, match=r"dose 1e4, view dense.*seed\(s\) \[2\] present for PtychoPINN only"):
        deltas(table[~drop])
    drop = (table.method == "PtychoPINN") & (table.seed == 0)
    with pytest.raises(AggregationError, match=r"seed\(s\) \[0\] present for (Baseline|PtyChi) only"):
        deltas(table[~drop])


def test_delta_missing_reference_or_metric_is_refused(table):
    with pytest.raises(AggregationError, match="reference method PtychoPINN missing"):
        deltas(table[table.method != "PtychoPINN"])
    drop = (table.method == "PtyChi") & (table.metric == "frc1_7") & (table.quantity == "phase") & (table.dose == 1e3)
    with pytest.raises(AggregationError, match=r"dose 1e3, view dense: method PtyChi lacks phase frc1_7"):
        deltas(table[~drop])
    with pytest.raises(AggregationError, match="amplitude_scale"):
        deltas(table, metrics=("amplitude_scale",))


# --------------------------------------------------------------------------
# validation of the score tables
# --------------------------------------------------------------------------


def test_missing_method_is_named(tmp_path):
    cells = make_grid(
        tmp_path,
        edit=lambda d, v, s, rows: [
            r for r in rows if not (r[0] == "Baseline" and d == 1e4 and v == "sparse" and s == 1)
        ],
    )
    with pytest.raises(AggregationError) as exc:
        collect_metrics(cells)
    msg = str(exc.value)
    assert "method Baseline missing" in msg and "dose 1e4, view sparse, seed 1" in msg
    assert str(tmp_path / "dose_10000" / "view_sparse" / "seed_1" / "metrics.csv") in msg


def test_missing_metric_is_named(tmp_path):
    cells = make_grid(
        tmp_path,
        edit=lambda d, v, s, rows: [
            r for r in rows if not (r[:3] == ("PtyChi", "phase", "ms_ssim") and s == 2 and d == 1e3)
        ],
    )
    with pytest.raises(
        AggregationError, match=r"dose 1e3, view dense, seed 2: method PtyChi lacks metric\(s\) \['phase ms_ssim'\]"
    ):
        collect_metrics(cells)


def test_missing_cell_is_named(tmp_path):
    cells = [c for c in make_grid(tmp_path) if not (c["dose"] == 1e4 and c["view"] == "dense" and c["seed"] == 1)]
    with pytest.raises(AggregationError, match=r"cell dose 1e4, view dense, seed 1 missing"):
        collect_metrics(cells)


def test_missing_file_is_named(tmp_path):
    cells = make_grid(tmp_path)
    cells[3]["path"] = str(tmp_path / "nowhere" / "metrics.csv")
    with pytest.raises(
        AggregationError, match=r"nowhere/metrics.csv: cell dose 1e3, view sparse, seed 0: metrics table file not found"
    ):
        collect_metrics(cells)


@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "", "abc"])
def test_nan_value_is_named(tmp_path, bad):
    def edit(d, v, s, rows):
        if (d, v, s) == (1e3, "sparse", 0):
            rows = [(m, q, k, bad if (m, q, k) == ("PtychoPINN", "amplitude", "psnr") else x) for m, q, k, x in rows]
        return rows

    with pytest.raises(AggregationError) as exc:
        collect_metrics(make_grid(tmp_path, edit=edit))
    msg = str(exc.value)
    assert "key 'value': expected a finite number" in msg and "dose 1e3, view sparse, seed 0" in msg
    assert "method=PtychoPINN, quantity=amplitude, metric=psnr" in msg


def test_duplicate_row_is_named(tmp_path):
    def edit(d, v, s, rows):
        return rows + [("PtyChi", "amplitude", "ssim", 0.7)] if (d, v, s) == (1e4, "dense", 0) else rows

    with pytest.raises(
        AggregationError, match=r"dose 1e4, view dense, seed 0: duplicate row\(s\) for method PtyChi, amplitude ssim"
    ):
        collect_metrics(make_grid(tmp_path, edit=edit))


def test_unknown_method_and_bad_columns_are_refused(tmp_path):
    def edit(d, v, s, rows):
        return [("Pty-chi (pty-chi)" if m == "PtyChi" else m, q, k, x) for m, q, k, x in rows]

    with pytest.raises(AggregationError, match=r"unexpected method\(s\) \['Pty-chi \(pty-chi\)'\]"):
        collect_metrics(make_grid(tmp_path / "a", edit=edit))
    cells = make_grid(tmp_path / "b")
    write_csv(tmp_path / "b" / "x.csv", cell_rows(0), header="method,quantity,name,value")
    cells[0]["path"] = str(tmp_path / "b" / "x.csv")
    with pytest.raises(AggregationError, match=r"x.csv: cell dose .*: missing key 'metric'"):
        collect_metrics(cells)
    with pytest.raises(AggregationError, match="listed twice"):
        collect_metrics(cells + [dict(cells[1])])


# --------------------------------------------------------------------------
# the one JSON, its CSV and the highlights
# --------------------------------------------------------------------------

SIGNED = r"[+-]\d+\.\d{3}"
LINE = re.compile(
    rf"^dose (\S+), view (\S+), (amplitude|phase) (.+): PtychoPINN − (\S+) = ({SIGNED}) "
    rf"\(n = (\d+), 95 % CI \[({SIGNED}), ({SIGNED})\]\) — PtychoPINN (better|not better)( \(interval includes 0\))?$"
)


def test_report_data_and_delta_lines_match_json(tmp_path, table):
    out_csv, out_json = tmp_path / "g" / "metrics.csv", tmp_path / "g" / "summary.json"
    evidence = verdict_evidence(summarise(table))
    write_report_data(table, summarise(table), deltas(table), out_csv, out_json, **evidence)
    first = (out_csv.read_bytes(), out_json.read_bytes())
    write_report_data(table, summarise(table), list(reversed(deltas(table))), out_csv, out_json, **evidence)
    assert (out_csv.read_bytes(), out_json.read_bytes()) == first

    back = pd.read_csv(out_csv)
    assert tuple(back.columns) == STUDY_METRIC_COLUMNS
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert pd.DataFrame(STUDY_METRIC_ROWS.read(out_csv)).equals(table)  # the record's reader: the same table, typed

    doc = json.loads(out_json.read_text())
    assert SUMMARY_DOCUMENT.read(out_json) == doc  # the document's contract reads it back
    assert doc["schema_version"] == SUMMARY_VERSION == 3
    # the verdicts: PtychoPINN_TTR has the best MS-SSIM (0.98) in every cell; the others' values do not vary
    # across seeds and PtychoPINN's jitter (sd 0.01) keeps its gap (0.06) clear of zero: a winner everywhere
    verdicts = [v for v in doc["verdicts"] if (v["quantity"], v["metric"]) == ("phase", "ms_ssim")]
    assert len(verdicts) == len(DOSES) * len(VIEWS)
    assert {v["text"] for v in verdicts} == {"winner: PtychoPINN_TTR"}
    assert len(doc["crossovers"]) == len(VIEWS) * len(METHODS)
    assert {c["text"] for c in doc["crossovers"]} == {"< 1000"}  # every mean passes 0.8 at every dose
    lines = delta_lines(doc)
    assert len(lines) == len(doc["deltas"])
    for line, r in zip(lines, doc["deltas"]):
        m = LINE.match(line)
        assert m, line
        assert m.group(1) == r["dose_label"] and m.group(2) == r["view"] and m.group(3) == r["quantity"]
        assert m.group(5) == r["other"] and m.group(7) == str(r["n"])
        assert m.group(6) == f"{r['mean']:+.3f}"
        assert (m.group(8), m.group(9)) == (f"{r['interval'][0]:+.3f}", f"{r['interval'][1]:+.3f}")
        assert (m.group(10) == "better") == r["better"]
        lo, hi = r["interval"]
        assert r["interval_excludes_zero"] == (lo > 0 or hi < 0) == (m.group(11) is None)
    line = lines[
        [
            i
            for i, r in enumerate(doc["deltas"])
            if (r["dose"], r["view"], r["quantity"], r["metric"], r["other"])
            == (1e4, "dense", "phase", "ms_ssim", "PtyChi")
        ][0]
    ]
    half = stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)
    assert line == (
        f"dose 1e4, view dense, phase MS-SSIM: PtychoPINN − PtyChi = +0.070 "
        f"(n = 3, 95 % CI [{0.07 - half:+.3f}, {0.07 + half:+.3f}]) — PtychoPINN better"
    )
    assert any(" = -2.500 " in x and x.endswith("not better") for x in lines)  # PSNR vs Baseline
    assert (
        "dose 1e3, view dense, amplitude MS-SSIM: PtychoPINN − Baseline = +0.020 (n = 3, 95 % CI [-0.005, +0.045]) "
        "— PtychoPINN better (interval includes 0)"
    ) in lines


def test_highlights_need_deltas():
    with pytest.raises(AggregationError, match="deltas"):
        delta_lines({"summary": {}})


def test_report_data_refuse_a_document_out_of_contract(tmp_path, table):
    summary = summarise(table)
    summary["records"][0]["std"] = float("nan")
    with pytest.raises(AggregationError, match=r"summary.json: key 'summary.records\[0\].std': expected a finite"):
        write_report_data(
            table,
            summary,
            deltas(table),
            tmp_path / "metrics.csv",
            tmp_path / "summary.json",
            verdicts=[],
            crossovers=[],
        )
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "metrics.csv").exists()


# --------------------------------------------------------------------------
# figures and run time
# --------------------------------------------------------------------------


def test_dose_response_figure(tmp_path, table):
    from ptycho_core.evaluate.verdicts import crossover_records

    out = tmp_path / "fig" / "ssim.png"
    dose_response_figure(out, table, "ms_ssim", "phase", fwhm_diameter_px=5.3)
    assert out.read_bytes()[:8] == PNG_MAGIC
    # the landing page's figure: the threshold and the crossover doses with their intervals
    crossovers = crossover_records(summarise(table), ("phase", "ms_ssim", 0.9))
    dose_response_figure(out, table, "ms_ssim", "phase", fwhm_diameter_px=5.3, threshold=0.9, crossovers=crossovers)
    assert out.read_bytes()[:8] == PNG_MAGIC
    one = collect_metrics(make_grid(tmp_path / "n1", seeds=(0,)))
    dose_response_figure(tmp_path / "n1.png", one, "mae", "amplitude")
    assert (tmp_path / "n1.png").read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(AggregationError, match="no rows for phase nonsense"):
        dose_response_figure(tmp_path / "x.png", table, "nonsense", "phase")


def test_frc_figure(tmp_path):
    freq = np.arange(1, 17) / 32
    entries = []
    for d in DOSES:
        for v in VIEWS:
            for s in SEEDS:
                p = tmp_path / f"d{d:g}_{v}_{s}.csv"
                lines = ["method,quantity,frequency_cycles_per_pixel,frc"]
                for i, m in enumerate(METHODS):
                    for q in QUANTITIES:
                        lines += [f"{m},{q},{float(f)!r},{float(np.exp(-f * (4 + i + s)))!r}" for f in freq]
                p.write_text("\n".join(lines) + "\n")
                entries.append((d, v, s, str(p)))
    out = tmp_path / "frc.png"
    frc_figure(out, entries)
    assert out.read_bytes()[:8] == PNG_MAGIC
    bad = tmp_path / "bad.csv"
    bad.write_text("method,quantity,frequency_cycles_per_pixel,frc\nPtyChi,phase,0.1,nan\n")
    with pytest.raises(
        AggregationError,
        match=r"bad.csv: cell dose 1e4, view dense, seed 0: key 'frc': expected a finite number, found 'nan'",
    ):
        frc_figure(out, [e if e[:3] != (1e4, "dense", 0) else (1e4, "dense", 0, str(bad)) for e in entries])
    with pytest.raises(AggregationError, match="dose 1e5 not among"):
        frc_figure(out, entries, dose=1e5)


def test_inventory_marks_files_of_cells_no_longer_in_the_study(tmp_path):
    from ptycho_core.config import load_study
    from ptycho_core.steps.report import inventory

    study = load_study(
        Path(__file__).resolve().parents[1] / "config" / "test.yaml"
    )  # doses 1e2, 1e4; dense, sparse; seed 0
    files = {
        "results/simulate/seed_0/ground_truth.npz": "yes",
        "results/simulate/dose_1e2/seed_0/train.npz": "yes",
        "results/views/dose_1e4/view_sparse/seed_0/view.npz": "yes",
        "logs/reconstruct_ptychi/dose_1e2/view_dense/seed_0/PtyChi.log": "yes",
        "results/report/figures/dose_response/phase_ms_ssim.png": "yes",  # not a cell
        "results/simulate/dose_3e3/seed_0/train.npz": "no",  # a dose since removed
        "results/views/dose_1e2/view_wide/seed_0/view.npz": "no",  # a view since removed
        "benchmarks/simulate/dose_1e2/seed_1.tsv": "no",  # a seed since removed
        "results/stray.txt": "no",  # no step writes it
    }
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    text = inventory(tmp_path, study)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["path", "bytes", "sha256", "in_study"]
    assert {r[0]: r[3] for r in rows[1:]} == files
    back = INVENTORY.parse(text, "inventory.csv")
    assert {r["path"]: (r["bytes"], r["sha256"]) for r in back} == {
        rel: (len(rel), hashlib.sha256(rel.encode()).hexdigest()) for rel in files
    }


def test_reconstruction_figures_share_one_visual_convention():
    """Phase that does not wrap gets a sequential map (0 and 1.5 rad must not look alike); every image block has a
    labelled colour bar."""
    from matplotlib.figure import Figure

    from ptycho_core.figures.common import image_grid, phase_cmap

    assert phase_cmap(np.linspace(0.0, 1.5, 10)) == "viridis"
    assert phase_cmap(np.linspace(-np.pi, np.pi, 10)) == "twilight"
    fig = Figure(layout="constrained")
    axes = fig.subplots(2, 3, squeeze=False).tolist()
    imgs = [[np.zeros((4, 2)), None, np.ones((4, 2))], [np.zeros((4, 2))] * 3]
    image_grid(
        fig,
        axes,
        imgs,
        cmap="gray",
        vmin=0,
        vmax=1,
        label="amplitude",
        col_titles=["a", "b", "c"],
        row_labels=["r0", "r1"],
        marks=[[None, None, ""], [None, None, "failed run"]],
    )
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylabel() == "amplitude"
    assert not axes[0][1].axison and axes[0][0].get_title() == "a" and axes[1][0].get_ylabel() == "r1"
    # a mark (a failed run in the montages) is written on its own image only
    texts = {(r, c): [t.get_text() for t in ax.texts] for r, row in enumerate(axes) for c, ax in enumerate(row)}
    assert texts.pop((1, 2)) == ["failed run"] and not any(texts.values())
