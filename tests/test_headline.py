"""The report's verdicts with their evidence: paired intervals per cell, crossover doses with intervals, the
summary lines, the wide CSV and the landing page, on synthetic summaries whose answers are worked out by hand."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ptycho_core.evaluate.headline import (
    CROSSOVER,
    NBSP,
    crossover_doses,
    headline_cells,
    landing_rst,
    summary_lines,
    view_overlap,
    wide_csv,
)
from ptycho_core.evaluate.tables import AggregationError, report_document, summarise
from ptycho_core.evaluate.verdicts import cell_verdicts, crossing_dose, crossover_records, dose_text, evidence
from ptycho_core.io.npz import DataContractError
from ptycho_core.io.records import HEADLINE_TABLE, SUMMARY_DOCUMENT, SUMMARY_VERSION

DOSES = (10.0, 100.0, 1000.0, 10000.0)
#: phase MS-SSIM per (view, method) over the ladder: PtyChi crosses 0.8 between 1e1 and 1e2, PtychoPINN dips
#: back below at 1e3 so its last crossing from below lies between 1e3 and 1e4, the Baseline never passes,
#: PtychoPINN_TTR passes everywhere.
PHASE = {
    ("dense", "PtyChi"): (0.60, 0.85, 0.95, 0.99),
    ("dense", "PtychoPINN"): (0.50, 0.82, 0.79, 0.90),
    ("dense", "PtychoPINN_TTR"): (0.81, 0.90, 0.95, 0.97),
    ("dense", "Baseline"): (0.30, 0.40, 0.50, 0.60),
}
OVERLAP = {
    "dense": {"linear_overlap": 0.8, "group_overlap": 0.5, "neighbour_overlap": 0.6, "group_centre_overlap": 0.4}
}
#: Half-width of the 95 % Student-t interval of a mean of 3 values with std 0.01 (the jitter below).
H3 = stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)


def _table(seeds=(0,), jitter=0.0, phase=PHASE, drop=()) -> pd.DataFrame:
    """Tidy rows of every (view, method) of ``phase``; seed s adds ``jitter * (s - 1)`` to the phase MS-SSIM of
    every method (so paired differences have no spread); ``drop``: (dose, method, seed) runs that failed."""
    rows = []
    for (view, method), values in phase.items():
        for dose, v in zip(DOSES, values):
            for s in seeds:
                if (dose, method, s) in drop:
                    continue
                rows.append((dose, view, s, method, "phase", "ms_ssim", v + jitter * (s - 1)))
                rows.append((dose, view, s, method, "amplitude", "ms_ssim", v / 2))
                for q, m in (
                    ("phase", "psnr"),
                    ("phase", "mae"),
                    ("phase", "frc50"),
                    ("amplitude", "psnr"),
                    ("amplitude", "mae"),
                ):
                    rows.append((dose, view, s, method, q, m, 1.0))
    return pd.DataFrame(rows, columns=["dose", "view", "seed", "method", "quantity", "metric", "value"])


def _cell_table(values: dict, metric: str = "ms_ssim") -> pd.DataFrame:
    """One dose x view cell: ``values[method]`` = per-seed phase values (seeds 0, 1, ...; None: a failed run)."""
    rows = []
    for method, vs in values.items():
        for s, v in enumerate(vs):
            if v is not None:
                rows.append((100.0, "dense", s, method, "phase", metric, v))
    return pd.DataFrame(rows, columns=["dose", "view", "seed", "method", "quantity", "metric", "value"])


def _verdict(values: dict, metric: str = "ms_ssim") -> dict:
    (v,) = cell_verdicts(summarise(_cell_table(values, metric)), (("phase", metric),))
    return v


# --------------------------------------------------------------------------
# crossover doses
# --------------------------------------------------------------------------


def test_crossing_dose_interpolates_the_last_crossing_from_below_in_log_dose():
    ladder = (1.0, 10.0, 100.0, 1000.0)
    # 0.7 -> 0.9 between 10 and 100: half way in log10 dose
    assert crossing_dose(ladder, (0.5, 0.7, 0.9, 0.95), 0.8) == {"dose": pytest.approx(10**1.5), "relation": "="}
    # above at the lowest dose, dips below at 10, back above: the last crossing from below counts
    assert crossing_dose(ladder, (0.85, 0.7, 0.9, 0.95), 0.8)["dose"] == pytest.approx(10**1.5)
    # a quarter of the way from 0.6 to 1.0 between 100 and 1000
    assert crossing_dose(ladder, (0.1, 0.2, 0.6, 1.0), 0.7)["dose"] == pytest.approx(10**2.25)
    # exactly at the threshold at a ladder dose: that dose
    assert crossing_dose(ladder, (0.5, 0.8, 0.9, 0.9), 0.8)["dose"] == pytest.approx(10.0)
    assert crossing_dose(ladder, (0.8, 0.9, 0.9, 0.9), 0.8) == {"dose": 1.0, "relation": "<"}  # below the ladder
    assert crossing_dose(ladder, (0.9, 0.9, 0.9, 0.7), 0.8) == {"dose": 1000.0, "relation": ">"}  # above it
    with pytest.raises(ValueError, match="ascending ladder"):
        crossing_dose((10.0, 1.0), (0.5, 0.9), 0.8)


def test_crossover_with_intervals_from_the_band_edges():
    assert CROSSOVER == ("phase", "ms_ssim", 0.8)
    summary = summarise(_table(seeds=(0, 1, 2), jitter=0.01))
    cross = crossover_doses(summary)["dense"]
    # PtyChi: 0.60 -> 0.85 between 1e1 and 1e2; the upper edge (mean + H3) crosses first, the lower edge last
    c = cross["PtyChi"]
    assert c["n"] == 3 and c["determined"] and c["note"] is None
    assert c["estimate"] == {"dose": pytest.approx(10 ** (1 + 0.2 / 0.25)), "relation": "="}
    assert c["lower"]["dose"] == pytest.approx(10 ** (1 + (0.2 - H3) / 0.25))
    assert c["upper"]["dose"] == pytest.approx(10 ** (1 + (0.2 + H3) / 0.25))
    assert c["text"] == f"63 [{dose_text(10 ** (1 + (0.2 - H3) / 0.25))}, {dose_text(10 ** (1 + (0.2 + H3) / 0.25))}]"
    # PtychoPINN: last crossing from below is 0.79 -> 0.90 between 1e3 and 1e4
    assert cross["PtychoPINN"]["estimate"]["dose"] == pytest.approx(10 ** (3 + 0.01 / 0.11))
    # PtychoPINN_TTR passes at every dose: below the ladder; its lower edge (0.81 - H3 < 0.8) crosses inside
    c = cross["PtychoPINN_TTR"]
    assert c["estimate"] == {"dose": 10.0, "relation": "<"} and c["lower"] == {"dose": 10.0, "relation": "<"}
    assert c["upper"]["relation"] == "=" and c["upper"]["dose"] == pytest.approx(10 ** (1 + (H3 - 0.01) / 0.09))
    assert not c["determined"] and "open bound" in c["note"] and c["text"].startswith("< 10 [< 10, ")
    # the Baseline never passes: above the ladder, and so is its whole band
    c = cross["Baseline"]
    assert c["estimate"] == c["lower"] == c["upper"] == {"dose": 10000.0, "relation": ">"}
    assert c["text"] == "> 10000"


def test_crossover_with_one_seed_gives_the_estimate_and_no_interval():
    cross = crossover_doses(summarise(_table()))["dense"]
    c = cross["PtyChi"]
    assert c["n"] == 1 and c["lower"] is None and c["upper"] is None and not c["determined"]
    assert c["note"] == "n = 1: no interval, not determined"
    assert c["text"] == "63 (interval not determined)"
    assert cross["Baseline"]["text"] == "> 10000 (interval not determined)"
    # the threshold is an argument
    assert crossover_doses(summarise(_table()), threshold=0.95)["dense"]["PtyChi"]["estimate"]["dose"] == 1000.0


# --------------------------------------------------------------------------
# verdicts
# --------------------------------------------------------------------------


def test_one_seed_never_names_a_winner():
    v = _verdict({"PtychoPINN": [0.9], "PtyChi": [0.5], "Baseline": [0.1]})
    assert v["verdict"] == "no verdict" and v["winner"] is None and v["text"] == "no verdict (n = 1)"
    assert v["best"] == "PtychoPINN" and all(p["interval"] is None for p in v["pairs"])
    cells = headline_cells(summarise(_table()))
    assert {c["metrics"][("phase", "ms_ssim")]["text"] for c in cells} == {"no verdict (n = 1)"}
    assert all(c["metrics"][("phase", "ms_ssim")]["winner"] is None for c in cells)


def test_pairing_by_seed_separates_what_the_means_alone_cannot():
    # the seeds vary together: the means' intervals overlap widely, the paired differences are all +0.01
    v = _verdict({"PtychoPINN": [0.90, 0.80, 0.70], "PtyChi": [0.89, 0.79, 0.69], "Baseline": [0.1, 0.2, 0.3]})
    assert v["methods"]["PtychoPINN"]["half_width"] == pytest.approx(stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3))
    assert v["verdict"] == "winner" and v["winner"] == "PtychoPINN" and v["text"] == "winner: PtychoPINN"
    pair = next(p for p in v["pairs"] if p["other"] == "PtyChi")
    assert pair["n"] == 3 and pair["mean"] == pytest.approx(0.01) and pair["std"] == pytest.approx(0.0, abs=1e-12)
    assert pair["separated"] is True and pair["seeds"] == [0, 1, 2]


def test_a_tie_names_the_methods_not_separable_from_the_best():
    # PtychoPINN - PtyChi per seed: -0.01, +0.02, +0.01: mean 0.00667, std 0.01528, interval includes 0
    v = _verdict({"PtychoPINN": [0.90, 0.92, 0.94], "PtyChi": [0.91, 0.90, 0.93], "Baseline": [0.5, 0.5, 0.5]})
    pair = next(p for p in v["pairs"] if p["other"] == "PtyChi")
    diff = np.array([-0.01, 0.02, 0.01])
    half = stats.t.ppf(0.975, 2) * diff.std(ddof=1) / math.sqrt(3)
    assert pair["interval"] == pytest.approx([diff.mean() - half, diff.mean() + half])
    assert pair["separated"] is False
    assert v["verdict"] == "tie" and v["winner"] is None and v["not_separable"] == ["PtyChi"]
    assert v["text"] == "tie: PtychoPINN, PtyChi"


def test_an_error_metric_picks_the_lowest_mean():
    v = _verdict({"PtychoPINN": [0.10, 0.11, 0.12], "PtyChi": [0.20, 0.21, 0.22]}, metric="mae")
    assert v["direction"] == "lower" and v["best"] == "PtychoPINN" and v["verdict"] == "winner"
    assert v["pairs"][0]["mean"] == pytest.approx(-0.10) and v["pairs"][0]["interval"][1] < 0


def test_lost_runs_are_counted_and_the_pairs_use_the_shared_seeds():
    # PtyChi lost seed 1: n = 3 and 2, the pair has n = 2 (seeds 0 and 2)
    v = _verdict({"PtychoPINN": [0.90, 0.91, 0.92], "PtyChi": [0.50, None, 0.52]})
    assert v["methods"]["PtychoPINN"]["n"] == 3 and v["methods"]["PtyChi"]["n"] == 2
    assert v["pairs"][0]["n"] == 2 and v["pairs"][0]["seeds"] == [0, 2] and v["verdict"] == "winner"
    # with one shared seed left there is no interval: no verdict, however large the gap
    v = _verdict({"PtychoPINN": [0.90, 0.91, 0.92], "PtyChi": [0.50, None, None]})
    assert v["methods"]["PtyChi"]["n"] == 1 and v["text"] == "no verdict (n = 1)"
    # the landing table and the caveat show the counts
    summary = summarise(_table(seeds=(0, 1, 2), jitter=0.01, drop={(100.0, "PtyChi", 1)}))
    rst = landing_rst(study_name="unit", config_lines=[], summary=summary, overlap=OVERLAP)
    row = _table_rows(rst, "phase MS-SSIM")[2]  # header, 1e1, 1e2
    assert row[:2] == ["100", "2–3"] and row[5].endswith("(n = 2)") and not row[2].endswith(")")
    assert "some method lost runs" in summary_lines(summary, OVERLAP)[-1]


def test_cells_carry_means_intervals_and_verdicts():
    three = headline_cells(summarise(_table(seeds=(0, 1, 2), jitter=0.01)))
    assert len(three) == len(DOSES)
    entry = three[0]["metrics"][("phase", "ms_ssim")]
    v = entry["values"]["PtyChi"]
    # values 0.59, 0.60, 0.61: std 0.01, half-width t(0.975, 2) * 0.01 / sqrt(3)
    assert v["n"] == 3 and v["mean"] == pytest.approx(0.60) and v["half_width"] == pytest.approx(H3, rel=1e-9)
    # the jitter is common to every method, so the paired differences have no spread: 0.81 beats 0.60 clearly
    assert entry["winner"] == "PtychoPINN_TTR" and entry["text"] == "winner: PtychoPINN_TTR"
    # at 1e3 PtychoPINN_TTR and PtyChi are equal (0.95): a tie; the others are separated
    entry = three[2]["metrics"][("phase", "ms_ssim")]
    assert entry["verdict"] == "tie" and entry["text"] == "tie: PtychoPINN_TTR, PtyChi"
    assert three[-1]["metrics"][("phase", "ms_ssim")]["winner"] == "PtyChi"


def test_the_json_document_holds_the_verdicts_and_crossovers():
    summary = summarise(_table(seeds=(0, 1, 2), jitter=0.01), fwhm_diameter_px=5.0)
    doc = report_document(summary, [], **evidence(summary))
    assert doc["schema_version"] == SUMMARY_VERSION == 3
    assert doc["verdicts"] == cell_verdicts(summary) and doc["crossovers"] == crossover_records(summary)
    assert len(doc["verdicts"]) == 2 * len(DOSES)  # phase and amplitude MS-SSIM
    back = SUMMARY_DOCUMENT.loads(SUMMARY_DOCUMENT.dumps(doc), "summary.json")
    assert back == json.loads(json.dumps(doc))
    assert [c["text"] for c in back["crossovers"]] == [c["text"] for c in doc["crossovers"]]


# --------------------------------------------------------------------------
# text views
# --------------------------------------------------------------------------


def test_summary_lines_give_crossovers_verdicts_and_the_replicate_caveat():
    lines = summary_lines(summarise(_table(), fwhm_diameter_px=5.0), OVERLAP)
    assert len(lines) == 5  # ladder, crossovers per view, verdicts per view, verdict count, caveat
    assert "10 to 10000 photons per pattern, i.e. 0.509 to 509 photons per illuminated pixel" in lines[0]
    assert lines[1].startswith("view dense (linear overlap 80%): mean phase MS-SSIM crosses 0.8 at PtychoPINN 1200;")
    assert "PtychoPINN_TTR below the ladder (< 10)" in lines[1] and "Baseline above the ladder (> 10000)" in lines[1]
    assert lines[1].endswith("intervals not determined (n = 1).")
    assert lines[2] == (
        "view dense (linear overlap 80%), phase MS-SSIM verdict per dose: 10 no verdict (n = 1); "
        "100 no verdict (n = 1); 1000 no verdict (n = 1); 10000 no verdict (n = 1)."
    )
    assert lines[3] == "Verdicts on phase MS-SSIM in 4 dose x view cells: no verdict in 4."
    assert lines[-1].startswith("One seed per cell (n = 1)")
    three = summary_lines(summarise(_table(seeds=(0, 1, 2), jitter=0.01)), OVERLAP)
    assert "PtyChi 63 [" in three[1] and "not determined" not in three[1]
    assert "1000 tie: PtychoPINN_TTR, PtyChi; 10000 winner: PtyChi." in three[2]
    assert (
        three[3]
        == "Verdicts on phase MS-SSIM in 4 dose x view cells: winner PtychoPINN_TTR in 2, PtyChi in 1, tie in 1."
    )
    assert "Student-t" in three[-1]


def test_failed_runs_are_kept_in_the_statistics_and_counted_in_every_view():
    """A failed run (a network whose training an outcome check refused) is scored as produced: its value stays in
    the mean, the interval and the pairs, and the tables, the wide CSV and the caveat count it."""
    table = _table(seeds=(0, 1, 2), jitter=0.01)
    failed = {(100.0, "dense", "PtychoPINN"): [1]}
    summary = summarise(table, fwhm_diameter_px=5.0, failed=failed)
    plain = summarise(table, fwhm_diameter_px=5.0)
    for rec, ref in zip(summary["records"], plain["records"], strict=True):
        hit = (rec["dose"], rec["view"], rec["method"]) == (100.0, "dense", "PtychoPINN")
        assert rec["failed_seeds"] == ([1] if hit else []) and ref["failed_seeds"] == []
        assert {k: v for k, v in rec.items() if k != "failed_seeds"} == {
            k: v for k, v in ref.items() if k != "failed_seeds"
        }  # the statistics are the same: the failed run's score is in them
    v = next(c for c in evidence(summary)["verdicts"] if c["dose"] == 100.0 and c["quantity"] == "phase")
    assert v["methods"]["PtychoPINN"]["failed"] == 1 and v["methods"]["PtyChi"]["failed"] == 0
    assert v["methods"]["PtychoPINN"]["n"] == 3
    rst = landing_rst(study_name="unit", config_lines=[], summary=summary, overlap=OVERLAP)
    row = _table_rows(rst, "phase MS-SSIM")[2]  # header, 1e1, 1e2
    assert row[:2] == ["100", "3"] and row[2].endswith("(1 failed)") and not row[3].endswith(")")
    assert "1 run(s) failed" in summary_lines(summary, OVERLAP)[-1]
    assert "failed" not in summary_lines(plain, OVERLAP)[-1]
    back = HEADLINE_TABLE.parse(wide_csv(summary, {}), "headline.csv")
    counts = {(r["dose (photons per pattern)"], r["method"]): r["failed runs"] for r in back}
    assert counts[(100.0, "PtychoPINN")] == 1 and sum(counts.values()) == 1
    # a failed run is scored as produced: one that was never scored is an error, not a failure to count
    with pytest.raises(AggregationError, match="failed runs of PtychoPINN in cell .*seeds \\[7\\]"):
        summarise(table, failed={(100.0, "dense", "PtychoPINN"): [7]})


def test_wide_csv_has_one_row_per_cell_and_method_and_units_in_the_header():
    overlap = {"dense": {"linear_overlap": 0.8}}
    rows = list(csv.reader(io.StringIO(wide_csv(summarise(_table(), fwhm_diameter_px=5.0), overlap))))
    header = rows[0]
    assert header[:6] == [
        "dose (photons per pattern)",
        "dose (photons per illuminated pixel)",
        "view",
        "linear overlap (1)",
        "method",
        "n seeds",
    ]
    assert header[6] == "failed runs" and {r[6] for r in rows[1:]} == {"0"}
    assert "phase MAE (rad)" in header and "amplitude MAE (1)" in header and "phase PSNR (dB)" in header
    assert "phase FRC 0.5 resolution (cycles/pixel)" in header
    assert len(rows) == 1 + len(DOSES) * 4
    first = dict(zip(header, rows[1]))
    assert float(first["phase MS-SSIM (1)"]) == PHASE[("dense", first["method"])][0]
    # the file is the headline record: its reader takes it back, typed (no std with one seed)
    back = HEADLINE_TABLE.parse(wide_csv(summarise(_table(), fwhm_diameter_px=5.0), overlap), "headline.csv")
    assert (
        back[0]["linear overlap (1)"] == 0.8
        and back[0]["n seeds"] == 1
        and back[0]["phase MS-SSIM std over seeds (1)"] is None
    )


def _table_rows(rst: str, title: str) -> list[list[str]]:
    """The cells of the first list-table whose title contains ``title``, row by row."""
    block = rst[rst.index(title) :].split("\n\n", 2)[1]
    rows: list[list[str]] = []
    for line in block.splitlines():
        if line.startswith("   * - "):
            rows.append([line[7:]])
        elif line.startswith("     - "):
            rows[-1].append(line[7:])
    return [[c.replace(NBSP, " ") for c in r] for r in rows]


def _html(rst: str) -> str:
    from docutils.core import publish_parts

    return publish_parts(rst, writer="html", settings_overrides={"halt_level": 2, "report_level": 2})["html_body"]


@pytest.mark.parametrize("seeds", [(0,), (0, 1, 2)])
def test_landing_page_reads_in_a_narrow_window(seeds):
    from docutils.core import publish_doctree
    from docutils.nodes import paragraph, table

    summary = summarise(_table(seeds=seeds, jitter=0.01 if len(seeds) > 1 else 0.0), fwhm_diameter_px=5.0)
    rst = landing_rst(study_name="unit", config_lines=["N = 32"], summary=summary, overlap=OVERLAP)
    html = _html(rst)
    assert "System Message" not in html
    assert html.count("<table") == 3  # phase per view, crossover, amplitude per view
    # no paragraph outside the tables is longer than 60 words; no table cell can wrap (non-breaking spaces only)
    doctree = publish_doctree(rst, settings_overrides={"report_level": 5})
    for p in doctree.findall(paragraph):
        if not any(isinstance(a, table) for a in _ancestors(p)):
            assert len(p.astext().split()) <= 60, p.astext()
    for line in rst.splitlines():
        if line.startswith(("   * - ", "     - ")):
            cell = line[7:]
            assert " " not in cell and len(cell) <= 32, cell
    rows = _table_rows(rst, "phase MS-SSIM")
    assert rows[0] == ["dose", "n", "PtychoPINN", "PtychoPINN_TTR", "Baseline", "PtyChi", "verdict"]
    if seeds == (0,):
        assert rows[1] == ["10", "1", "0.500", "0.810", "0.300", "0.600", "no verdict (n = 1)"]
        assert _table_rows(rst, "Crossover dose")[-1] == ["PtyChi", "63 (n.d.)"]
    else:
        half = f"{H3:.3f}"
        assert rows[1] == [
            "10",
            "3",
            f"0.500 ± {half}",
            f"**0.810 ± {half}**",  # the winner, bold
            f"0.300 ± {half}",
            f"0.600 ± {half}",
            "winner: PtychoPINN_TTR",
        ]
        assert rows[3][-1] == "tie: PtychoPINN_TTR, PtyChi" and "**" not in "".join(rows[3])
        assert _table_rows(rst, "Crossover dose")[-1][1].startswith("63 [")
    # the crossover table shows the neighbour overlap (0.6), not the group overlap (0.5)
    cross = _table_rows(rst, "Crossover dose")
    assert cross[0] == ["view", "dense"] and cross[1] == ["linear overlap", "80%"]
    assert cross[2] == ["neighbour overlap", "0.600"] and "0.500" not in "".join(sum(cross, []))
    assert "metric 2" not in rst


def _ancestors(node):
    while node.parent is not None:
        node = node.parent
        yield node


def test_landing_page_leads_with_the_dose_response_figure_embedded(tmp_path):
    from ptycho_core.figures.study import dose_response_figure

    table = _table(seeds=(0, 1, 2), jitter=0.01)
    summary = summarise(table, fwhm_diameter_px=5.0)
    path = tmp_path / "figures" / "phase_ms_ssim.png"
    dose_response_figure(
        path, table, "ms_ssim", "phase", fwhm_diameter_px=5.0, threshold=0.8, crossovers=crossover_records(summary)
    )
    rst = landing_rst(
        study_name="unit", config_lines=[], summary=summary, overlap=OVERLAP, figures=[(path, "dose response")]
    )
    assert rst.index(".. figure:: data:image/png;base64,") < rst.index(".. list-table::")
    html = _html(rst)
    assert "System Message" not in html
    # the image travels in the page (the report's HTML is one file): its bytes, not its path
    src = re.search(r'<img alt="phase_ms_ssim.png" src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(src) == path.read_bytes()
    assert '<p class="caption">dose response</p>' in html


def test_view_overlap_averages_the_test_split_over_cells(tmp_path):
    from test_records import overlap_record

    paths = {}
    for i, neighbour in enumerate((0.5, 0.7)):
        rec = overlap_record(
            seed=i,
            test={
                "linear_overlap": 0.8,
                "group_overlap": 0.1,
                "neighbour_overlap": neighbour,
                "group_centre_overlap": 0.2,
            },
        )
        paths[("dense", 10.0, i)] = tmp_path / f"{i}.json"
        paths[("dense", 10.0, i)].write_text(json.dumps(rec))
    assert view_overlap(paths)["dense"] == pytest.approx(
        {"linear_overlap": 0.8, "group_overlap": 0.1, "neighbour_overlap": 0.6, "group_centre_overlap": 0.2}
    )
    # single-position groups have no group overlap: its mean is None, the others are kept
    paths[("dense", 10.0, 1)].write_text(json.dumps(overlap_record(test={"group_overlap": None})))
    assert view_overlap(paths)["dense"]["group_overlap"] is None
    # a record of the earlier layout (metric_1_group, ...) is refused, naming the file and the key
    old = overlap_record()
    old["splits"]["test"]["metric_2_neighbours"] = old["splits"]["test"].pop("neighbour_overlap")
    paths[("dense", 10.0, 1)].write_text(json.dumps(old))
    with pytest.raises(DataContractError, match=r"1.json: missing key 'splits.test.neighbour_overlap'"):
        view_overlap(paths)
