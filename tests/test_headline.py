"""The report's headline: winners, intervals, crossover doses, the wide CSV and the landing page."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest
from scipy import stats

from ptycho_core.evaluate.headline import (
    CROSSOVER,
    crossover_doses,
    headline_cells,
    landing_rst,
    summary_lines,
    view_overlap,
    wide_csv,
)
from ptycho_core.evaluate.tables import summarise
from ptycho_core.io.npz import DataContractError
from ptycho_core.io.records import HEADLINE_TABLE

DOSES = (10.0, 100.0, 1000.0, 10000.0)
#: phase MS-SSIM per (view, method) over the ladder: PtyChi crosses 0.8 at 1e2 (dense), PtychoPINN dips
#: back below at 1e3 so only 1e4 counts, the Baseline never passes, PtychoPINN_TTR passes everywhere.
PHASE = {
    ("dense", "PtyChi"): (0.60, 0.85, 0.95, 0.99),
    ("dense", "PtychoPINN"): (0.50, 0.82, 0.79, 0.90),
    ("dense", "PtychoPINN_TTR"): (0.81, 0.90, 0.95, 0.97),
    ("dense", "Baseline"): (0.30, 0.40, 0.50, 0.60),
}


def _table(seeds=(0,), jitter=0.0) -> pd.DataFrame:
    rows = []
    for (view, method), values in PHASE.items():
        for dose, v in zip(DOSES, values):
            for s in seeds:
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


def test_crossover_dose_is_where_the_metric_stays_above_the_threshold():
    assert CROSSOVER == ("phase", "ms_ssim", 0.8)
    cross = crossover_doses(summarise(_table()))
    assert cross == {
        "dense": {"PtychoPINN": 10000.0, "PtychoPINN_TTR": "below the ladder", "Baseline": None, "PtyChi": 100.0}
    }
    assert crossover_doses(summarise(_table()), threshold=0.95)["dense"]["PtyChi"] == 1000.0


def test_winner_and_interval_per_cell():
    one = headline_cells(summarise(_table()))
    assert len(one) == len(DOSES)
    assert one[0]["metrics"][("phase", "ms_ssim")]["winner"] == "PtychoPINN_TTR"
    assert one[-1]["metrics"][("phase", "ms_ssim")]["winner"] == "PtyChi"
    assert one[0]["metrics"][("phase", "ms_ssim")]["values"]["PtyChi"]["half_width"] is None  # n = 1
    three = headline_cells(summarise(_table(seeds=(0, 1, 2), jitter=0.01)))
    v = three[0]["metrics"][("phase", "ms_ssim")]["values"]["PtyChi"]
    # values 0.59, 0.60, 0.61: std 0.01, half-width t(0.975, 2) * 0.01 / sqrt(3)
    assert v["n"] == 3 and v["mean"] == pytest.approx(0.60)
    assert v["half_width"] == pytest.approx(stats.t.ppf(0.975, 2) * 0.01 / 3**0.5, rel=1e-9)


def test_summary_is_a_few_sentences_with_the_replicate_caveat():
    overlap = {
        "dense": {"linear_overlap": 0.8, "group_overlap": 0.5, "neighbour_overlap": 0.6, "group_centre_overlap": 0.4}
    }
    lines = summary_lines(summarise(_table(), fwhm_diameter_px=5.0), overlap)
    assert len(lines) == 4
    assert "i.e. 0.509 to 509 photons per illuminated pixel" in lines[0]
    assert "view dense (linear overlap 80%)" in lines[1] and "PtyChi 1e2 photons per pattern" in lines[1]
    assert "Baseline none in the ladder" in lines[1] and "PtychoPINN_TTR below the ladder" in lines[1]
    assert "n = 1" in lines[-1]
    assert "Student-t" in summary_lines(summarise(_table(seeds=(0, 1))), overlap)[-1]


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


def test_landing_page_is_valid_restructuredtext_with_the_tables():
    from docutils.core import publish_parts

    overlap = {
        "dense": {"linear_overlap": 0.8, "group_overlap": 0.5, "neighbour_overlap": 0.6, "group_centre_overlap": 0.4}
    }
    rst = landing_rst(
        study_name="unit", config_lines=["N = 32"], summary=summarise(_table(), fwhm_diameter_px=5.0), overlap=overlap
    )
    html = publish_parts(rst, writer="html", settings_overrides={"halt_level": 2, "report_level": 2})["html_body"]
    assert html.count("<table") == 3  # phase, amplitude, crossover
    assert "<strong>0.810</strong> ★" in html  # the winner of the lowest dose is marked
    assert "System Message" not in html
    # the crossover table's overlap column says what it shows: the neighbour overlap (0.6), not the group overlap (0.5)
    crossover = rst[rst.index("Crossover dose") :]
    assert "- neighbour overlap" in crossover and "- 0.600" in crossover and "0.500" not in crossover
    assert "metric 2" not in rst


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
