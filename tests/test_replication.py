"""Two replicate sets compared (ptycho_core.evaluate.replication, scripts/compare_replicates.py).

The verdict records are built by :func:`ptycho_core.evaluate.verdicts.evidence` from summaries whose per-seed
values are chosen so that the paired intervals are known: a difference of 0.2 with a spread of 0.01 over three
seeds is separated, one of 0.001 with a spread of 0.05 is not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ptycho_core.evaluate.replication import (
    AGREES,
    CONTRADICTS,
    DIFFERS,
    NOT_COMPARED,
    compare_crossovers,
    crossover_range,
    replication,
)
from ptycho_core.evaluate.verdicts import evidence

REPO = Path(__file__).resolve().parents[1]
SEEDS = [0, 1, 2]


def summary(cells: dict[tuple[float, str, str], list[float]]) -> dict:
    """A report summary of phase MS-SSIM records, {(dose, view, method): per-seed values}."""
    records = []
    for (dose, view, method), values in cells.items():
        v = np.asarray(values, dtype=float)
        records.append(
            {
                "dose": dose,
                "view": view,
                "method": method,
                "quantity": "phase",
                "metric": "ms_ssim",
                "n": len(v),
                "mean": float(v.mean()),
                "std": float(v.std(ddof=1)) if len(v) > 1 else float("nan"),
                "seeds": SEEDS[: len(v)],
                "values": [float(x) for x in v],
                "failed_seeds": [],
            }
        )
    return {"records": records}


def cell_evidence(values: dict[str, list[float]], dose: float = 30.0, view: str = "dense") -> dict:
    return evidence(summary({(dose, view, m): v for m, v in values.items()}), metrics=[("phase", "ms_ssim")])


HIGH = [0.90, 0.91, 0.92]
LOW = [0.70, 0.71, 0.72]
NOISY = [0.85, 0.80, 0.75]


def status(a: dict, b: dict) -> str:
    (row,) = replication(a, b)["verdicts"]
    return row["status"]


def test_the_same_winner_agrees():
    a = cell_evidence({"PtyChi": HIGH, "PtychoPINN": LOW})
    b = cell_evidence({"PtyChi": [0.88, 0.90, 0.91], "PtychoPINN": [0.69, 0.73, 0.70]})
    assert a["verdicts"][0]["verdict"] == "winner"
    assert status(a, b) == AGREES


def test_opposite_winners_contradict():
    a = cell_evidence({"PtyChi": HIGH, "PtychoPINN": LOW})
    b = cell_evidence({"PtyChi": LOW, "PtychoPINN": HIGH})
    assert status(a, b) == CONTRADICTS
    assert status(b, a) == CONTRADICTS


def test_a_winner_against_a_tie_differs_without_contradicting():
    a = cell_evidence({"PtyChi": HIGH, "PtychoPINN": LOW})
    b = cell_evidence({"PtyChi": [0.80, 0.86, 0.74], "PtychoPINN": NOISY})
    assert b["verdicts"][0]["verdict"] == "tie"
    assert status(a, b) == DIFFERS


def test_a_tie_whose_best_is_reversed_but_not_separated_differs():
    a = cell_evidence({"PtyChi": HIGH, "PtychoPINN": LOW, "Baseline": [0.5, 0.5, 0.52]})
    # b: PtychoPINN best, PtyChi not separable from it, Baseline separated from it
    b = cell_evidence({"PtyChi": [0.80, 0.86, 0.74], "PtychoPINN": [0.86, 0.80, 0.77], "Baseline": [0.5, 0.5, 0.52]})
    assert b["verdicts"][0]["best"] == "PtychoPINN" and b["verdicts"][0]["verdict"] == "tie"
    assert status(a, b) == DIFFERS


def test_one_seed_is_not_compared():
    a = cell_evidence({"PtyChi": HIGH, "PtychoPINN": LOW})
    b = cell_evidence({"PtyChi": HIGH[:1], "PtychoPINN": LOW[:1]})
    assert b["verdicts"][0]["verdict"] == "no verdict"
    assert status(a, b) == NOT_COMPARED


def test_a_cell_of_one_report_only_is_listed_and_not_compared():
    a = cell_evidence({"PtyChi": HIGH, "PtychoPINN": LOW})
    b = cell_evidence({"PtyChi": HIGH, "PtychoPINN": LOW}, dose=3000.0)
    rows = replication(a, b)["verdicts"]
    assert [(r["dose"], r["a"] is None, r["b"] is None, r["status"]) for r in rows] == [
        (30.0, False, True, NOT_COMPARED),
        (3000.0, True, False, NOT_COMPARED),
    ]


def point(p: tuple[float, str] | None) -> dict | None:
    return None if p is None else {"dose": p[0], "relation": p[1]}


def crossover(lower: tuple[float, str] | None, upper: tuple[float, str] | None, method: str = "PtyChi") -> dict:
    return {"view": "dense", "method": method, "lower": point(lower), "upper": point(upper), "text": "x"}


@pytest.mark.parametrize(
    "lower, upper, expected",
    [
        ((40.0, "="), (300.0, "="), (40.0, 300.0)),
        ((30.0, "<"), (300.0, "="), (0.0, 300.0)),
        ((40.0, "="), (3000.0, ">"), (40.0, float("inf"))),
        ((30.0, "<"), (30.0, "<"), (0.0, 30.0)),
        ((3000.0, ">"), (3000.0, ">"), (3000.0, float("inf"))),
    ],
)
def test_crossover_range_opens_the_bounds_beyond_the_ladder(lower, upper, expected):
    assert crossover_range(crossover(lower, upper)) == expected


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (((40.0, "="), (300.0, "=")), ((200.0, "="), (900.0, "=")), AGREES),
        (((40.0, "="), (300.0, "=")), ((400.0, "="), (900.0, "=")), CONTRADICTS),
        (((30.0, "<"), (30.0, "<")), ((30.0, "<"), (50.0, "=")), AGREES),
        (((30.0, "<"), (30.0, "<")), ((40.0, "="), (50.0, "=")), CONTRADICTS),
        (((3000.0, ">"), (3000.0, ">")), ((40.0, "="), (3000.0, ">")), AGREES),
        ((None, None), ((40.0, "="), (50.0, "=")), NOT_COMPARED),
    ],
)
def test_crossovers_contradict_only_when_their_intervals_are_disjoint(a, b, expected):
    (row,) = compare_crossovers([crossover(*a)], [crossover(*b)])
    assert row["status"] == expected


def write_report(directory: Path, cells: dict[str, list[float]]) -> Path:
    """A report summary written by the report step's own writer: phase MS-SSIM of one cell (30 photons, dense)."""
    import pandas as pd

    from ptycho_core import layout
    from ptycho_core.evaluate import tables
    from ptycho_core.evaluate.verdicts import CROSSOVER

    rows = [
        (30.0, "dense", seed, method, "phase", "ms_ssim", value)
        for method, values in cells.items()
        for seed, value in zip(SEEDS, values)
    ]
    table = pd.DataFrame(rows, columns=["dose", "view", "seed", "method", "quantity", "metric", "value"])
    files = layout.report([]).under(directory)
    Path(files.summary).parent.mkdir(parents=True)
    summary_ = tables.summarise(table)
    tables.write_report_data(table, summary_, [], files.metrics, files.summary, **evidence(summary_, CROSSOVER))
    return directory


def compare_script(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "compare_replicates.py"), *map(str, args)],
        capture_output=True,
        text=True,
    )


def test_the_script_prints_both_sets_and_fails_on_a_contradiction(tmp_path):
    a = write_report(tmp_path / "a", {"PtyChi": HIGH, "PtychoPINN": LOW})
    b = write_report(tmp_path / "b", {"PtyChi": LOW, "PtychoPINN": HIGH})
    same = write_report(tmp_path / "same", {"PtyChi": [0.88, 0.90, 0.91], "PtychoPINN": [0.69, 0.73, 0.70]})
    run = compare_script(a, b)
    assert run.returncode == 1, run.stderr
    assert "winner: PtyChi" in run.stdout and "winner: PtychoPINN" in run.stdout
    assert "1 contradicts" in run.stdout
    run = compare_script(a, same)
    assert run.returncode == 0, run.stderr
    assert "0 contradicts" in run.stdout


def test_the_script_names_a_missing_or_broken_summary(tmp_path):
    a = write_report(tmp_path / "a", {"PtyChi": HIGH, "PtychoPINN": LOW})
    run = compare_script(a, tmp_path / "nothing")
    assert run.returncode == 2 and "summary.json" in run.stderr and "Traceback" not in run.stderr
    broken = write_report(tmp_path / "broken", {"PtyChi": HIGH, "PtychoPINN": LOW})
    path = broken / "results" / "report" / "summary.json"
    doc = json.loads(path.read_text())
    del doc["crossovers"]
    path.write_text(json.dumps(doc))
    run = compare_script(a, broken)
    assert run.returncode == 2 and str(path) in run.stderr and "crossovers" in run.stderr
    assert "Traceback" not in run.stderr
