"""End-to-end: run the test-sized study with Snakemake, from simulation to report (paths: ptycho_core.layout)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ptycho_core import layout
from ptycho_core.config import load_study
from ptycho_core.io.datasets import load_diffraction_set, load_ground_truth
from ptycho_core.io.reconstruction import load_recon
from ptycho_core.io.records import OVERLAP_METRICS_VERSION
from ptycho_core.io.sentinel import verify_sentinel
from ptycho_core.io.view_index import load_view
from ptycho_core.methods import Method

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
ALL_METHODS = {m.value for m in Method}

pytestmark = pytest.mark.workflow


def run_snakemake(workdir: Path, *targets: str, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(workdir), "--cores", "2", *targets]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def deploy(tmp_path: Path, config_text: str) -> Path:
    """A study directory as a user would have it: config/config.yaml only."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(config_text)
    return tmp_path


@pytest.fixture(scope="module")
def study_run(tmp_path_factory):
    """The whole test-sized study, simulation to report (the default target)."""
    workdir = deploy(tmp_path_factory.mktemp("study"), (REPO / "config" / "test.yaml").read_text())
    proc = run_snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


def test_simulate_outputs_and_sentinels(study_run):
    workdir = study_run
    study = load_study(workdir / "config" / "config.yaml")
    gt = load_ground_truth(workdir / layout.ground_truth(0).obj)
    assert gt.obj.shape == (study.object.size, study.object.size)
    verify_sentinel(workdir / layout.ground_truth(0).sentinel, root=workdir)
    if study.object.train_seed is not None:
        train_obj = load_ground_truth(workdir / layout.ground_truth(0, training=True).obj)
        verify_sentinel(workdir / layout.ground_truth(0, training=True).sentinel, root=workdir)
        # replicate 0's draws of the two objects (ObjectConfig.for_replicate)
        drawn = study.object.for_replicate(0)
        assert train_obj.metadata["object"]["seed"] == drawn.train_seed != gt.metadata["object"]["seed"]
        assert gt.metadata["object"]["seed"] == drawn.seed
        assert not np.allclose(train_obj.obj, gt.obj)
    assert (workdir / layout.log("ground_truth", layout.Cell.replicate(0))).is_file()
    assert (workdir / layout.benchmark("ground_truth", layout.Cell.replicate(0))).is_file()
    for label, dose in study.dose_labels().items():
        for seed in study.seeds:
            cell = workdir / f"results/simulate/dose_{label}/seed_{seed}"  # the layout, spelled out once here
            sentinel = verify_sentinel(cell / "sentinel.json", root=workdir)
            outputs = {Path(o["path"]).name for o in sentinel["outputs"]}
            assert outputs == {"train.npz", "test.npz", "preview.png"}
            checks = sentinel["checks"]
            assert abs(checks["train_mean_counts_z"]) <= 5 and abs(checks["test_mean_counts_z"]) <= 5
            if study.object.train_seed is None:
                assert checks["guard_gap_px"] >= checks["probe_fwhm_diameter_px"]
            else:  # both splits cover the whole base scan, each on its own object (checked below)
                assert "test_region_margin_px" not in checks
            train = load_diffraction_set(cell / "train.npz")
            test = load_diffraction_set(cell / "test.npz")
            assert train.metadata["dose"] == dose and test.metadata["seed"] == seed
            if study.object.train_seed is not None:
                assert train.n == test.n == train.metadata["scan"]["n_base"]
                np.testing.assert_array_equal(train.xcoords, test.xcoords)
            assert train.N == test.N == study.N
            assert train.metadata["provenance"]["config_hash"] == study.config_hash()
            assert (cell / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert (workdir / f"logs/simulate/dose_{label}/seed_{seed}.log").is_file()
            assert (workdir / f"benchmarks/simulate/dose_{label}/seed_{seed}.tsv").is_file()


def test_views_groups_and_metrics(study_run):
    workdir = study_run
    study = load_study(workdir / "config" / "config.yaml")
    for label in study.dose_labels():
        for seed in study.seeds:
            cells = {}
            for view in study.views:
                cell = workdir / f"results/views/dose_{label}/view_{view.name}/seed_{seed}"
                sentinel = verify_sentinel(cell / "sentinel.json", root=workdir)
                assert {Path(o["path"]).name for o in sentinel["outputs"]} == {
                    "view.npz",
                    "overlap_metrics.json",
                    "positions.png",
                }
                sim = layout.simulated(layout.Cell(label, seed))
                train, test = load_diffraction_set(workdir / sim.train), load_diffraction_set(workdir / sim.test)
                v = load_view(cell / "view.npz", n_train=train.n, n_test=test.n)
                metrics = json.loads((cell / "overlap_metrics.json").read_text())
                assert metrics["metrics_version"] == OVERLAP_METRICS_VERSION
                for split, ds in (("train", train), ("test", test)):
                    m = metrics["splits"][split]
                    assert m["n_before_view"] == ds.n
                    assert m["n_view"] == getattr(v, f"{split}_index").size
                    assert 0 < m["neighbour_overlap"] < 1 and 0 < m["group_overlap"] < 1
                    assert m["linear_overlap"] == pytest.approx(1 - view.stride * study.scan.step_fraction)
                assert set(v.test_index) <= set(v.test_groups.ravel())
                assert (workdir / f"logs/views/dose_{label}/view_{view.name}/seed_{seed}.log").is_file()
                assert (workdir / f"benchmarks/views/dose_{label}/view_{view.name}/seed_{seed}.tsv").is_file()
                cells[view.name] = (v, metrics)
            dense, sparse = cells["dense"], cells["sparse"]
            # the sparse view trains on all its sub-lattices (as many positions as the dense view), tests on one
            assert set(sparse[0].train_index) == set(dense[0].train_index)
            assert set(sparse[0].test_index) < set(dense[0].test_index)
            assert sparse[1]["splits"]["test"]["neighbour_overlap"] < dense[1]["splits"]["test"]["neighbour_overlap"]


def test_trained_bundles_history_and_sentinels(study_run):
    workdir = study_run
    study = load_study(workdir / "config" / "config.yaml")
    for method in ("PtychoPINN", "Baseline"):
        rule = "train" if Method(method).spec.per_view else "train_per_dose"
        for label in study.dose_labels():
            for view in study.views:
                bundle_cell = layout.network_cell(layout.Cell(label, 0, view.name, method))
                cell = workdir / Path(layout.bundle(bundle_cell).model).parent
                sentinel = verify_sentinel(cell / "sentinel.json", root=workdir)
                checks = sentinel["checks"]
                assert checks["final_loss"] < checks["initial_loss"]
                assert checks["reload_max_abs_difference"] <= 1e-5
                assert checks["pred_phase_std"] > 0 and checks["pred_amplitude_std"] > 0
                side = json.loads((cell / "bundle.json").read_text())
                assert side["method"] == method and side["N"] == study.N
                assert side["refused"] == [] and checks["refused"] == []  # no failed run in this study
                assert side["channels"] == (4 if method == "PtychoPINN" else 1)
                history = (cell / "history.csv").read_text().splitlines()
                header = history[0].split(",")
                assert header[0] == "epoch" and "loss" in header and "val_loss" in header
                assert len(history) == checks["epochs_run"] + 1
                log = (workdir / layout.log(rule, bundle_cell)).read_text()
                assert "Epoch 1/" in log
                assert (workdir / layout.benchmark(rule, bundle_cell)).is_file()


def test_every_method_scored_on_the_same_region(study_run):
    workdir = study_run
    study = load_study(workdir / "config" / "config.yaml")
    for label in study.dose_labels():
        for view in study.views:
            cell = layout.Cell(label, 0, view.name)
            scores = layout.scores(cell).under(workdir)
            verify_sentinel(scores.sentinel, root=workdir)
            rows = [line.split(",") for line in Path(scores.metrics).read_text().splitlines()]
            assert rows[0] == ["method", "quantity", "metric", "value"]
            assert {r[0] for r in rows[1:]} == ALL_METHODS
            assert all(math.isfinite(float(r[3])) for r in rows[1:])
            alignment = json.loads(Path(scores.alignment).read_text())
            assert set(alignment["methods"]) == ALL_METHODS
            for method in sorted(ALL_METHODS):
                verify_sentinel(layout.reconstruction(cell.with_method(method)).under(workdir).sentinel, root=workdir)
                rule = Method(method).spec.reconstruct_step
                job = cell if rule == "reconstruct_network" else cell.with_method(method)  # one network job per cell
                assert (workdir / layout.log(rule, job)).is_file()
            # the refined bundle: fine-tuned from the cell's trained PtychoPINN, on the test counts
            refined = layout.bundle(cell.with_method("PtychoPINN_TTR")).under(workdir)
            ttr = verify_sentinel(refined.sentinel, root=workdir)
            assert ttr["checks"]["free_deviance_best"] <= ttr["checks"]["free_deviance_before"]
            # counted in optimiser steps: whole checks, within the cap, one history row per check
            c, per = ttr["checks"], study.refinement.steps_per_check
            assert c["steps_run"] == c["checks_run"] * per <= -(-study.refinement.max_steps // per) * per
            assert c["best_step"] == c["best_check"] * per <= c["steps_run"]
            history = Path(refined.history).read_text().splitlines()
            assert history[0].split(",")[0] == "check" and len(history) == c["checks_run"] + 1
            side = json.loads(Path(refined.sidecar).read_text())
            trained = json.loads(
                Path(
                    layout.refined_from(refined_cell := cell.with_method("PtychoPINN_TTR")).under(workdir).sidecar
                ).read_text()
            )
            assert refined_cell.method == "PtychoPINN_TTR"
            assert (
                side["method"] == "PtychoPINN_TTR" and side["refined_from"]["model_sha256"] == trained["model_sha256"]
            )
            # the rule's threads reach torch (the default profile gives reconstruct_ptychi 1)
            ptychi = load_recon(layout.reconstruction(cell.with_method("PtyChi")).under(workdir).recon)
            assert ptychi.metadata["torch_threads"] == 1


def test_report_tables_and_html(study_run, tmp_path):
    workdir = study_run
    g = workdir / "results/report"
    verify_sentinel(g / "sentinel.json", root=workdir)
    table = (g / "metrics.csv").read_text().splitlines()
    assert table[0] == "dose,view,seed,method,quantity,metric,value"
    summary = json.loads((g / "summary.json").read_text())
    deltas = (g / "deltas.txt").read_text().splitlines()
    assert len(deltas) == len(summary["deltas"]) > 0
    assert all(("n = 1: no interval" in line) for line in deltas)  # one seed in the test study
    study = load_study(REPO / "config" / "test.yaml")
    highlights = (g / "highlights.txt").read_text()
    # ladder; per view its crossovers and its verdicts; the count of verdicts; the replicate caveat
    assert len(highlights.splitlines()) == 3 + 2 * len(study.views)
    assert "crosses 0.8" in highlights and "no verdict (n = 1)" in highlights
    wide = (g / "headline.csv").read_text().splitlines()
    assert wide[0].startswith("dose (photons per pattern),dose (photons per illuminated pixel),view")
    assert len(wide) == 1 + len(study.doses) * len(study.views) * len(ALL_METHODS)
    for name in ("overlap.csv", "runtime.csv", "inventory.csv", "figures/frc.png", "figures/montage_dense.png"):
        assert (g / name).is_file(), name
    inventory = [line.split(",") for line in (g / "inventory.csv").read_text().splitlines()]
    assert inventory[0] == ["path", "bytes", "sha256", "in_study"]
    assert len(inventory) > 100 and all(r[3] == "yes" for r in inventory[1:])  # a fresh study: every file is its own
    html = tmp_path / "report.html"
    proc = subprocess.run(
        [str(SNAKEMAKE), "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(workdir), "--report", str(html)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = html.read_text(errors="replace")
    assert "Study" in text and len(text) > 100_000
    # the landing page leads with the answer: the dose-response figure inline, the verdict tables, the crossovers
    assert "data:image/png;base64" in text, "no dose-response figure on the landing page"
    assert "verdict" in text, "no verdict table on the landing page"
    assert "Crossover dose (photons per pattern)" in text
    assert "System Message" not in text, "the landing page's reStructuredText has errors"


def test_rerun_is_a_no_op(study_run):
    proc = run_snakemake(study_run, "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_a_missing_artifact_of_any_step_is_regenerated(study_run):
    """A deleted reconstruction or bundle file (which no final target reads) makes a plain run redo its job."""
    workdir = study_run
    victims = [
        workdir / layout.reconstruction(layout.Cell("1e2", 0, "dense", "PtychoPINN")).recon,
        workdir / layout.bundle(layout.Cell("1e4", 0, "sparse", "Baseline")).history,
    ]
    saved = {p: (p.read_bytes(), p.stat()) for p in victims}
    try:
        for p in victims:
            p.unlink()
        proc = run_snakemake(workdir, "-n")
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-3000:]
        # the two jobs that write them (the retrained Baseline also reconstructs again, and what follows)
        assert re.search(r"output files have to be generated:\s*\n\s*reconstruct_network, train_per_dose\s*\n", out), (
            out[-3000:]
        )
        assert re.search(r"^train_per_dose\s+1$", out, re.M), out[-3000:]
    finally:  # put them back exactly (bytes and times), so the study stays complete for the other tests
        for p, (data, st) in saved.items():
            p.write_bytes(data)
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    proc = run_snakemake(workdir, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


#: (change to config/test.yaml, the rules that must rerun): one configuration section at a time.
RERUN_SCOPE = {
    "training.epochs": (
        lambda c: c["training"].update(epochs=c["training"]["epochs"] + 1),
        {"train", "train_per_dose", "refine", "reconstruct_network", "score", "report", "inventory"},
    ),
    "stopping.patience": (
        lambda c: c["stopping"].update(patience=c["stopping"]["patience"] + 1),
        {"study_config", "refine", "reconstruct_ptychi", "reconstruct_network", "score", "report", "inventory"},
    ),
    "refinement.max_steps": (
        lambda c: c["refinement"].update(max_steps=c["refinement"]["max_steps"] + 1),
        {"refine", "reconstruct_network", "score", "report", "inventory"},
    ),
    "ptychi.epochs": (
        lambda c: c.setdefault("ptychi", {}).update(epochs=7),
        {"study_config", "reconstruct_ptychi", "score", "report", "inventory"},
    ),
    "grouping.train_groups_per_position": (
        lambda c: c["grouping"].update(train_groups_per_position=c["grouping"]["train_groups_per_position"] + 1),
        {
            "views",
            "study_config",
            "train",
            "refine",
            "reconstruct_network",
            "reconstruct_ptychi",
            "score",
            "report",
            "inventory",
        },
    ),
    "doses (one replaced)": (
        lambda c: c.update(doses=[c["doses"][0], 30000.0]),
        {
            "simulate",
            "views",
            "train",
            "train_per_dose",
            "refine",
            "reconstruct_network",
            "reconstruct_ptychi",
            "score",
            "report",
            "inventory",
        },
    ),
}


def _rules_to_rerun(workdir: Path) -> tuple[set[str], str]:
    proc = run_snakemake(workdir, "-n")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    table = out.split("Job stats:")[1].split("Reasons:")[0] if "Job stats:" in out else ""
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
    return {r for r in counts if r not in ("all", "total")}, table


def test_a_config_change_reruns_exactly_the_rules_that_read_it(study_run, tmp_path):
    import shutil

    import yaml

    workdir = tmp_path / "study"
    shutil.copytree(study_run, workdir, symlinks=True)  # results, logs and .snakemake, times kept
    original = (workdir / "config" / "config.yaml").read_text()
    for change, (edit, expected) in RERUN_SCOPE.items():
        cfg = yaml.safe_load(original)
        edit(cfg)
        (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
        rerun, table = _rules_to_rerun(workdir)
        assert rerun == expected, f"{change}: reruns {sorted(rerun)}, expected {sorted(expected)}\n{table}"
        if change.startswith("doses"):
            assert re.search(r"^simulate\s+1$", table, re.M), table  # only the new dose is simulated
    (workdir / "config" / "config.yaml").write_text(original)
    assert _rules_to_rerun(workdir)[0] == set()


def test_a_study_file_defines_its_views_and_doses(tmp_path):
    """--configfile with one view and two doses: that study runs (simulation and views),
    not the default's views besides."""
    workdir = deploy(tmp_path, (REPO / "config" / "test.yaml").read_text())
    study_file = tmp_path / "one_view.yaml"
    study_file.write_text("doses: [300.0, 3000.0]\nviews:\n  wide:\n    stride: 1\n")
    proc = run_snakemake(
        workdir, "all_views", "--configfile", str(study_file)
    )  # --configfile takes several files: last
    assert proc.returncode == 0, proc.stderr[-4000:]
    views = sorted(
        p.relative_to(workdir / "results/views").as_posix() for p in (workdir / "results/views").rglob("view.npz")
    )
    assert views == ["dose_3e2/view_wide/seed_0/view.npz", "dose_3e3/view_wide/seed_0/view.npz"]


@pytest.mark.parametrize(
    "bad, expected",
    [
        ("N: 40\n", "N"),
        ("doses: []\n", "doses"),
        ("doses: [1000.0, -5.0]\n", "doses"),
        ("unknown_key: 1\n", "unknown_key"),
        ("grouping: {K: 3}\n", "grouping.K"),
        ("views: {dense: {stride: 1}, sparse: {stride: 40}}\n", "view 'sparse'"),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, bad, expected):
    workdir = deploy(tmp_path, bad)
    proc = run_snakemake(workdir, "all_simulate")
    assert proc.returncode != 0
    assert expected in proc.stderr + proc.stdout
    assert not (workdir / "results").exists()


#: (library file edited, the rules that must rerun): the edited module's importers, and what depends on them.
LIBRARY_EDITS = {
    "recon/ptychi.py": {"reconstruct_ptychi", "score", "report", "inventory"},
    "nn/models.py": {"train", "train_per_dose", "refine", "reconstruct_network", "score", "report", "inventory"},
    "evaluate/tables.py": {"score", "report", "inventory"},
}


def test_a_library_edit_reruns_the_jobs_whose_step_can_load_it(study_run, tmp_path):
    """Snakemake run on an edited copy of ptycho_core (first on PYTHONPATH):
    its code-hash params rerun exactly the importers."""
    import shutil

    workdir = tmp_path / "study"
    shutil.copytree(study_run, workdir, symlinks=True)
    for edited, expected in LIBRARY_EDITS.items():
        lib = tmp_path / edited.replace("/", "_")
        shutil.copytree(REPO / "ptycho_core", lib / "ptycho_core", ignore=shutil.ignore_patterns("__pycache__"))
        with open(lib / "ptycho_core" / edited, "a", encoding="utf-8") as fh:
            fh.write("\n# an edit\n")
        env = {**os.environ, "PYTHONPATH": str(lib)}
        cmd = [str(SNAKEMAKE), "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(workdir), "--cores", "2", "-n"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-3000:]
        table = out.split("Job stats:")[1].split("Reasons:")[0] if "Job stats:" in out else ""
        rerun = {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)} - {"all", "total"}
        assert rerun == expected, f"editing {edited} reruns {sorted(rerun)}, expected {sorted(expected)}\n{table}"
        assert "Params have changed" in out, out[-3000:]
    # the unedited copy of the library reruns nothing: the hash is of the files' content, not their location
    lib = tmp_path / "unedited"
    shutil.copytree(REPO / "ptycho_core", lib / "ptycho_core", ignore=shutil.ignore_patterns("__pycache__"))
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(workdir), "--cores", "2", "-n"]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(lib)}, cwd=tmp_path
    )
    assert "Nothing to be done" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]


def test_a_moved_checkout_reruns_nothing(study_run, tmp_path):
    """The workflow copied elsewhere (fresh modification times, other absolute paths) finds the study up to date:
    no param holds a path, and the PtyChi script finds its interpreter when it runs."""
    import shutil

    moved = tmp_path / "elsewhere" / "workflow"
    shutil.copytree(REPO / "workflow", moved, copy_function=shutil.copy)  # copy, not copy2: the files are new
    cmd = [str(SNAKEMAKE), "-s", str(moved / "Snakefile"), "-d", str(study_run), "--cores", "2", "-n"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[
        -3000:
    ]


def test_the_workflow_deployed_as_a_module_runs_the_study(study_run, tmp_path):
    """As `snakedeploy deploy-workflow` sets it up: another directory whose Snakefile uses this workflow as a module.

    The whole test-sized study runs through it and produces the same data files and scores as the direct run.
    """
    import csv
    import hashlib

    workdir = tmp_path / "deployed"
    (workdir / "workflow").mkdir(parents=True)
    (workdir / "config").mkdir()
    (workdir / "config" / "config.yaml").write_text((REPO / "config" / "test.yaml").read_text())
    (workdir / "workflow" / "Snakefile").write_text(
        'configfile: "config/config.yaml"\n\n\n'
        "module ptycho_study:\n"
        f'    snakefile:\n        "{REPO / "workflow" / "Snakefile"}"\n'
        "    config:\n        config\n\n\n"
        "use rule * from ptycho_study\n"
    )
    proc = subprocess.run([str(SNAKEMAKE), "--cores", "2"], cwd=workdir, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert (workdir / layout.report([]).sentinel).is_file()

    def data_files(root: Path) -> dict[str, str]:
        files = [*root.glob("results/simulate/**/*.npz"), *root.glob("results/views/**/view.npz")]
        return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(files)}

    deployed, direct = data_files(workdir), data_files(study_run)
    assert deployed and deployed == direct, (
        "simulated and view files differ between the module deployment and the direct run"
    )

    def scores(root: Path) -> dict[tuple, float]:
        with open(root / layout.report([]).metrics, newline="") as fh:
            return {
                (r["dose"], r["view"], r["seed"], r["method"], r["quantity"], r["metric"]): float(r["value"])
                for r in csv.DictReader(fh)
            }

    a, b = scores(workdir), scores(study_run)
    assert a.keys() == b.keys()
    differ = {k: (a[k], b[k]) for k in a if not (a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])))}
    assert not differ, (
        f"scores differ between the module deployment and the direct run: {dict(list(differ.items())[:10])}"
    )
