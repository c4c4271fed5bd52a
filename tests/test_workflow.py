"""End-to-end: run the workflow's phase C on the test-sized study with Snakemake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ptycho_core.config import load_study
from ptycho_core.data_contract import load_diffraction_set, load_ground_truth
from ptycho_core.sentinel import verify_sentinel

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")

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
def phase_c_run(tmp_path_factory):
    workdir = deploy(tmp_path_factory.mktemp("study"), (REPO / "config" / "test.yaml").read_text())
    proc = run_snakemake(workdir, "phase_c")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


def test_phase_c_outputs_and_sentinels(phase_c_run):
    workdir = phase_c_run
    study = load_study(workdir / "config" / "config.yaml")
    gt = load_ground_truth(workdir / "results/phase_c/ground_truth.npz")
    assert gt.obj.shape == (study.object.size, study.object.size)
    verify_sentinel(workdir / "results/phase_c/ground_truth.sentinel.json", root=workdir)
    assert (workdir / "logs/phase_c/ground_truth.log").is_file()
    assert (workdir / "benchmarks/phase_c/ground_truth.tsv").is_file()
    for label, dose in study.dose_labels().items():
        for seed in study.seeds:
            cell = workdir / f"results/phase_c/dose_{label}/seed_{seed}"
            sentinel = verify_sentinel(cell / "sentinel.json", root=workdir)
            outputs = {Path(o["path"]).name for o in sentinel["outputs"]}
            assert outputs == {"train.npz", "test.npz", "preview.png"}
            checks = sentinel["checks"]
            assert abs(checks["train_mean_counts_z"]) <= 5 and abs(checks["test_mean_counts_z"]) <= 5
            assert checks["guard_gap_px"] >= checks["probe_fwhm_diameter_px"]
            train = load_diffraction_set(cell / "train.npz")
            test = load_diffraction_set(cell / "test.npz")
            assert train.metadata["dose"] == dose and test.metadata["seed"] == seed
            assert train.N == test.N == study.N
            assert train.metadata["provenance"]["config_hash"] == study.config_hash()
            assert (cell / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert (workdir / f"logs/phase_c/dose_{label}/seed_{seed}/simulate.log").is_file()
            assert (workdir / f"benchmarks/phase_c/dose_{label}/seed_{seed}/simulate.tsv").is_file()


def test_rerun_is_a_no_op(phase_c_run):
    proc = run_snakemake(phase_c_run, "phase_c", "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "bad, expected",
    [
        ("N: 40\n", "N"),
        ("doses: []\n", "doses"),
        ("doses: [1000.0, -5.0]\n", "doses"),
        ("unknown_key: 1\n", "unknown_key"),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, bad, expected):
    workdir = deploy(tmp_path, bad)
    proc = run_snakemake(workdir, "phase_c")
    assert proc.returncode != 0
    assert expected in proc.stderr + proc.stdout
    assert not (workdir / "results").exists()

