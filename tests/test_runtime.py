"""The cost table (runtime.csv) and the cost estimate (scripts/estimate_cost.py), on synthetic benchmark files
written at the layout's paths of config/test.yaml."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from ptycho_core import layout
from ptycho_core.config import load_study
from ptycho_core.evaluate.runtime import REPORT_RULES, read_benchmark, runtime_csv, runtime_table
from ptycho_core.evaluate.tables import AggregationError
from ptycho_core.io.records import RUNTIME_COLUMNS, RUNTIME_TABLE, RUNTIME_VERSION

REPO = Path(__file__).resolve().parents[1]
TEST_STUDY = REPO / "config" / "test.yaml"
BASE = REPO / "config" / "config.yaml"
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"

#: Seconds of a rule's first job; its k-th job (0-based, in the layout's order) takes k seconds more.
BASE_SECONDS = {
    "ground_truth": 2.0,
    "training_object": 3.0,
    "simulate": 5.0,
    "train_per_dose": 40.0,
    "study_config": 0.5,
    "views": 1.5,
    "train": 100.0,
    "refine": 20.0,
    "reconstruct_ptychi": 30.0,
    "reconstruct_network": 6.0,
    "score": 4.0,
    "report": 9.0,
    "inventory": 1.0,
}


def _spec():
    spec = importlib.util.spec_from_file_location("estimate_cost", REPO / "scripts" / "estimate_cost.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


estimate_cost = _spec()


def _study(*extra):
    return estimate_cost.load_study_files([TEST_STUDY, *extra], base=BASE)


def _tsv(path: Path, seconds: float, rss: str = "100.0", repeats: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    row = f"{seconds}\t0:00:{int(seconds) % 60:02d}\t{rss}\t1\t1\t1\t0\t0\t50\t{seconds}\n"
    path.write_text(HEADER + row * repeats)


def write_benchmarks(root: Path, study) -> None:
    """A benchmark file for every job of ``study`` (BASE_SECONDS), the report's own included."""
    index: dict[str, int] = {}
    for rule, _, path in layout.benchmark_jobs(study):
        k = index[rule] = index.get(rule, -1) + 1
        _tsv(root / path, BASE_SECONDS[rule] + k, rss=f"{100 + k}.0")


def _jobs(root: Path, study):
    return [(r, c, str(root / p)) for r, c, p in layout.benchmark_jobs(study) if r not in REPORT_RULES]


def test_benchmark_file_is_read_as_one_job(tmp_path):
    _tsv(tmp_path / "a.tsv", 2.0, rss="512.5")
    assert read_benchmark(tmp_path / "a.tsv", "train") == (2.0, 512.5)
    p = tmp_path / "b.tsv"  # repeat(...): the mean of its rows; "NA" and "-": memory not measured
    p.write_text(HEADER + "1.0\t0:00:01\tNA\t1\t1\t1\t0\t0\t50\t1\n" + "3.0\t0:00:03\t-\t1\t1\t1\t0\t0\t50\t3\n")
    seconds, rss = read_benchmark(p, "score")
    assert seconds == 2.0 and rss != rss
    with pytest.raises(AggregationError, match=r"missing.tsv: benchmark file of rule score not found"):
        read_benchmark(tmp_path / "missing.tsv", "score")
    (tmp_path / "bad.tsv").write_text("h:m:s\n0:00:01\n")
    with pytest.raises(AggregationError, match=r"bad.tsv: benchmark of rule score lacks column 's'"):
        read_benchmark(tmp_path / "bad.tsv", "score")
    (tmp_path / "neg.tsv").write_text("s\n-1\n")
    with pytest.raises(AggregationError, match=r"neg.tsv: benchmark of rule score: seconds missing or invalid"):
        read_benchmark(tmp_path / "neg.tsv", "score")


def test_runtime_table_per_rule_and_method_by_hand(tmp_path):
    """Two methods of one rule, a rule without a method; 3 cells: every figure computed by hand."""
    paths = {}
    for name, seconds, rss in [
        ("a", 10.0, "512.5"),
        ("b", 20.0, "1024.0"),
        ("c", 6.0, "NA"),
        ("d", 1.5, "-"),
        ("e", 2.5, "100.0"),
    ]:
        _tsv(tmp_path / f"{name}.tsv", seconds, rss)
        paths[name] = str(tmp_path / f"{name}.tsv")
    cell = layout.Cell("1e2", 0, "dense")
    jobs = [
        ("train", cell.with_method("PtychoPINN"), paths["a"]),
        ("train", cell.with_method("Baseline"), paths["b"]),
        ("train", cell.with_method("PtychoPINN"), paths["c"]),
        ("score", cell, paths["d"]),
        ("score", cell, paths["e"]),
    ]
    table = runtime_table(jobs, cell_replicates=3)
    text = runtime_csv(table)
    assert text.splitlines() == [
        ",".join(RUNTIME_COLUMNS),
        "study,,,5,3,40.0,8.0,13.333333333333334,100.0,1024.0",
        "rule,train,,3,3,36.0,12.0,12.0,90.0,1024.0",
        "rule_method,train,PtychoPINN,2,3,16.0,8.0,5.333333333333333,40.0,512.5",
        "rule_method,train,Baseline,1,3,20.0,20.0,6.666666666666667,50.0,1024.0",
        "rule,score,,2,3,4.0,2.0,1.3333333333333333,10.0,100.0",
    ]
    rows = RUNTIME_TABLE.parse(text)
    assert rows[0]["rule"] is None and rows[0]["method"] is None
    assert RUNTIME_VERSION == 2
    only = runtime_csv(runtime_table(jobs[3:4], cell_replicates=1))
    assert only.splitlines()[1:] == ["study,,,1,1,1.5,1.5,1.5,100.0,", "rule,score,,1,1,1.5,1.5,1.5,100.0,"]
    with pytest.raises(AggregationError, match="no jobs"):
        runtime_table([], cell_replicates=1)
    with pytest.raises(AggregationError, match=r"missing.tsv: benchmark file of rule score not found"):
        runtime_table([("score", cell, str(tmp_path / "missing.tsv"))], cell_replicates=1)


def test_runtime_table_of_the_test_study(tmp_path):
    """Every job of config/test.yaml but the report's own (2 doses x 2 views x 1 seed: 4 cells)."""
    study = _study()
    write_benchmarks(tmp_path, study)
    table = runtime_table(_jobs(tmp_path, study), cell_replicates=len(layout.cells(study)))
    rows = {(r["scope"], r["rule"], r["method"]): r for r in RUNTIME_TABLE.parse(runtime_csv(table))}
    by_rule = {rule: (r["jobs"], r["total_wall_s"]) for (scope, rule, _), r in rows.items() if scope == "rule"}
    assert by_rule == {  # jobs, and seconds: BASE_SECONDS times the jobs plus 0 + 1 + ... for the k-th job
        "ground_truth": (1, 2.0),
        "training_object": (1, 3.0),
        "simulate": (2, 5.0 + 6.0),
        "train_per_dose": (2, 40.0 + 41.0),
        "study_config": (1, 0.5),
        "views": (4, 1.5 + 2.5 + 3.5 + 4.5),
        "train": (4, 100.0 + 101.0 + 102.0 + 103.0),
        "refine": (4, 20.0 + 21.0 + 22.0 + 23.0),
        "reconstruct_ptychi": (4, 30.0 + 31.0 + 32.0 + 33.0),
        "reconstruct_network": (4, 6.0 + 7.0 + 8.0 + 9.0),
        "score": (4, 4.0 + 5.0 + 6.0 + 7.0),
    }
    assert [k for k in rows if k[0] == "rule_method"] == [
        ("rule_method", "train_per_dose", "Baseline"),
        ("rule_method", "train", "PtychoPINN"),
        ("rule_method", "refine", "PtychoPINN_TTR"),
        ("rule_method", "reconstruct_ptychi", "PtyChi"),
    ]
    assert rows[("rule_method", "train", "PtychoPINN")]["total_wall_s"] == 406.0
    assert rows[("rule_method", "train_per_dose", "Baseline")]["mean_wall_s_per_job"] == 40.5
    study_row = rows[("study", None, None)]
    assert study_row["jobs"] == 31 and study_row["cell_replicates"] == 4
    assert study_row["total_wall_s"] == pytest.approx(779.5)
    assert study_row["wall_s_per_cell_replicate"] == pytest.approx(779.5 / 4)  # 194.875 s per cell replicate
    assert rows[("rule", "train", None)]["wall_s_per_cell_replicate"] == pytest.approx(406.0 / 4)
    assert rows[("rule", "train", None)]["percent_of_study"] == pytest.approx(100 * 406.0 / 779.5)
    assert sum(r["percent_of_study"] for (s, _, _), r in rows.items() if s == "rule") == pytest.approx(100.0)
    assert study_row["max_rss_mb"] == 103.0


def _rates(root, study):
    rates, missing = estimate_cost.measured_rates(study, root)
    assert not missing
    return rates


def _by_group(table):
    """Rows by (rule, method), the method None where the rule's jobs take none."""
    return {(r["rule"], r["method"] if isinstance(r["method"], str) else None): r for r in table.to_dict("records")}


def test_estimate_of_the_same_study_is_the_measured_time(tmp_path):
    study = _study()
    write_benchmarks(tmp_path, study)
    table, longest = estimate_cost.estimate(study, _rates(tmp_path, study))
    measured = runtime_table([(r, c, str(tmp_path / p)) for r, c, p in layout.benchmark_jobs(study)], cell_replicates=4)
    want = _by_group(measured[measured["scope"] != "study"])
    for (rule, method), row in _by_group(table).items():
        ref = want[(rule, method)]
        assert row["jobs"] == row["finished_jobs"] == ref["jobs"], rule
        assert row["total_wall_s"] == pytest.approx(ref["total_wall_s"], rel=1e-12), (rule, method)
    assert table["total_wall_s"].sum() == pytest.approx(779.5 + 9.0 + 1.0)  # with the report and the inventory
    assert 101.5 < longest < 406.0  # a train job of the dense view: more patterns than the mean


def test_twice_the_doses_double_the_jobs_of_a_dose(tmp_path):
    finished = _study()
    write_benchmarks(tmp_path, finished)
    override = tmp_path / "more_doses.yaml"
    override.write_text("doses: [100.0, 1000.0, 10000.0, 100000.0]\n")
    target = _study(override)
    assert len(target.doses) == 2 * len(finished.doses)
    same, _ = estimate_cost.estimate(finished, _rates(tmp_path, finished))
    more, _ = estimate_cost.estimate(target, _rates(tmp_path, finished))
    same, more = _by_group(same), _by_group(more)
    assert same.keys() == more.keys()
    per_study = {"ground_truth", "training_object", "study_config", "report", "inventory"}
    for key, row in more.items():
        factor = 1 if key[0] in per_study else 2
        assert row["jobs"] == factor * same[key]["jobs"], key
        # a dose changes no pattern count: each job costs what it did, so the totals follow the jobs ...
        if key[0] not in ("report", "inventory"):
            assert row["total_wall_s"] == pytest.approx(factor * same[key]["total_wall_s"]), key
    # ... but the report's work is the number of cells
    assert more[("report", None)]["wall_s_per_job"] == pytest.approx(2 * same[("report", None)]["wall_s_per_job"])


def test_work_follows_epochs_patterns_and_pixels(tmp_path):
    finished = _study()
    write_benchmarks(tmp_path, finished)
    override = tmp_path / "bigger.yaml"
    override.write_text("training: {epochs: 8}\nN: 64\nobject: {size: 128}\n")  # test.yaml: 4 epochs, N = 32
    target = _study(override)
    same, _ = estimate_cost.estimate(finished, _rates(tmp_path, finished))
    big, _ = estimate_cost.estimate(target, _rates(tmp_path, finished))
    same, big = _by_group(same), _by_group(big)
    w_same, w_big = estimate_cost.Workload(finished), estimate_cost.Workload(target)
    cell = layout.Cell("1e2", 0, "dense", "PtychoPINN")
    n_small, n_big = w_same.view_rows(0, "dense")[0], w_big.view_rows(0, "dense")[0]
    assert w_big.work("train", cell) / w_same.work("train", cell) == pytest.approx(2 * 4 * n_big / n_small)
    ratio = big[("train", "PtychoPINN")]["total_wall_s"] / same[("train", "PtychoPINN")]["total_wall_s"]
    work = [
        sum(w.work(r, c) for r, c, _ in layout.benchmark_jobs(s) if r == "train")
        for w, s in ((w_big, target), (w_same, finished))
    ]
    assert ratio == pytest.approx(work[0] / work[1], rel=1e-12)
    assert big[("study_config", None)]["total_wall_s"] == same[("study_config", None)]["total_wall_s"]


def test_the_script_prints_the_estimate(tmp_path, capsys):
    finished = _study()
    write_benchmarks(tmp_path, finished)
    (tmp_path / layout.RESULTS).mkdir()
    (tmp_path / layout.STUDY_CONFIG).write_text(json.dumps(finished.to_dict()))
    sentinel = tmp_path / layout.report([v.name for v in finished.views]).sentinel
    sentinel.parent.mkdir(parents=True, exist_ok=True)
    sentinel.write_text(json.dumps({"config_hash": finished.config_hash()}))
    override = tmp_path / "more_doses.yaml"
    override.write_text("doses: [100.0, 1000.0, 10000.0, 100000.0]\ntraining: {filters: [16, 32, 64]}\n")
    assert estimate_cost.main(["--finished", str(tmp_path), "--config", str(TEST_STUDY), str(override)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("Estimated cost of study 'test'") and "8 cells" in lines[0]
    assert f"finished study 'test' in {tmp_path} (4 cells)" in lines[1]
    total = next(line for line in lines if line.startswith("total"))
    rows = {tuple(line.split()[:2]): line for line in lines if line.split()[:1] and line.split()[0] in BASE_SECONDS}
    assert rows[("train", "(all)")].split()[2] == "8" and rows[("report", "-")].split()[2] == "1"
    assert total.split()[1] == "61"  # jobs: 33, doubled where a dose adds them (all but 5 per study)
    assert "training.filters: [8, 16, 32] -> [16, 32, 64]" in out
    assert "early stopping" in out and "threads: 1" in out and "Note:" not in out
    sentinel.write_text(json.dumps({"config_hash": "other"}))
    estimate_cost.main(["--finished", str(tmp_path), "--config", str(TEST_STUDY), "--cores", "2"])
    out = capsys.readouterr().out
    assert "Note: " in out and "--finished-config" in out and "With --cores 2: at least" in out


def test_the_layout_lists_the_jobs_of_a_dry_run(tmp_path):
    """The jobs the estimate counts are those `snakemake -n` plans for a fresh directory (target rules aside)."""
    import subprocess
    import sys
    from collections import Counter

    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(TEST_STUDY.read_text())
    snakemake = Path(sys.executable).with_name("snakemake")
    cmd = [str(snakemake), "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(tmp_path), "-n", "--quiet", "rules"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    stats = (proc.stdout + proc.stderr).split("Job stats:")[1].split("total")[0].splitlines()[3:]
    planned = {line.split()[0]: int(line.split()[1]) for line in stats if line.strip()}
    planned.pop("all")
    assert planned == Counter(rule for rule, _, _ in layout.benchmark_jobs(load_study(TEST_STUDY)))
