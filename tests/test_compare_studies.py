"""scripts/compare_studies.py: a cut's paired effect per cell and method, in units of the replicate spread."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ptycho_core.io.records import METRIC_ROWS

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("compare_studies", ROOT / "scripts" / "compare_studies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _study(root: Path, values: dict[int, float], seconds: float) -> None:
    for seed, value in values.items():
        cell = root / "results" / "score" / "dose_3e1" / "view_dense" / f"seed_{seed}"
        cell.mkdir(parents=True)
        METRIC_ROWS.write(
            cell / "metrics.csv",
            [
                {"method": "PtyChi", "quantity": "phase", "metric": "ms_ssim", "value": value},
                {"method": "PtyChi", "quantity": "phase", "metric": "ssim", "value": 0.0},
            ],
        )
        bench = root / "benchmarks" / "refine" / "dose_3e1" / "view_dense" / f"seed_{seed}"
        bench.mkdir(parents=True)
        (bench / "PtychoPINN_TTR.tsv").write_text(f"s\th:m:s\n{seconds}\t0:00:01\n")


def test_the_paired_difference_is_reported_in_units_of_the_reference_spread(tmp_path, capsys, monkeypatch):
    reference = {0: 0.80, 1: 0.90, 2: 0.70}  # sd 0.1
    cut = {s: v - 0.05 for s, v in reference.items()}  # every seed 0.05 lower: half a replicate sd
    _study(tmp_path / "ref", reference, seconds=30.0)
    _study(tmp_path / "cut", cut, seconds=12.0)
    module = _script()
    cells = module.read_cells(tmp_path / "cut", "phase", "ms_ssim")
    assert cells[("3e1", "dense", "PtyChi")] == pytest.approx(cut)
    monkeypatch.setattr("sys.argv", ["compare_studies.py", str(tmp_path / "ref"), str(tmp_path / "cut")])
    assert module.main() == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("3e1 | dense | PtyChi"))
    n, ref_mean, cut_mean, sd, diff, units = (float(x) for x in row.split(" | ")[3:])
    assert n == 3 and ref_mean == pytest.approx(0.8) and cut_mean == pytest.approx(0.75)
    assert sd == pytest.approx(np.std(list(reference.values()), ddof=1), abs=1e-3)
    assert diff == pytest.approx(-0.05) and units == pytest.approx(0.5)
    assert "refine/PtychoPINN_TTR" in out and "30.0" in out and "12.0" in out  # job seconds per cell-replicate


def test_a_directory_without_scores_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="no results/score"):
        _script().read_cells(tmp_path, "phase", "ms_ssim")
