"""Tests of the JSON sentinels that record verified artifacts."""

from __future__ import annotations

import hashlib
import json
import platform

import numpy as np
import pytest

import ptycho_core
from ptycho_core.io.sentinel import (
    SentinelError,
    code_version,
    library_versions,
    sha256_file,
    verify_sentinel,
    write_sentinel,
)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory with one input and two outputs, paths relative to it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "config.yaml").write_text("dose: 1e4\n")
    (tmp_path / "results" / "a.npz").write_bytes(b"\x00\x01" * 1000)
    (tmp_path / "results" / "b.csv").write_text("method,metric,value\nPtyChi,ssim,0.9\n")
    return tmp_path


def write_default(path="results/done.json", **overrides):
    kwargs = dict(
        step="phase_c",
        inputs=["config.yaml"],
        outputs=["results/a.npz", "results/b.csv"],
        checks={"n_patterns": 5, "finite": True, "mean_counts": np.float32(1.5e4)},
        config_hash="abc123",
        wall_time_s=1.25,
    )
    kwargs.update(overrides)
    return write_sentinel(path, **kwargs)


def test_sha256_matches_hashlib(tmp_path):
    path = tmp_path / "big.bin"
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)  # spans several chunks
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_sentinel_records_files_checks_and_provenance(workdir):
    written = write_default(extra={"dose": 1e4})
    record = json.loads((workdir / "results" / "done.json").read_text())
    assert record == written
    assert set(record) == {
        "step", "inputs", "outputs", "checks", "config_hash", "code_version",
        "library_versions", "python", "wall_time_s", "extra",
    }
    assert [o["path"] for o in record["outputs"]] == ["results/a.npz", "results/b.csv"]
    for entry in record["inputs"] + record["outputs"]:
        data = (workdir / entry["path"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
    assert record["checks"] == {"n_patterns": 5, "finite": True, "mean_counts": 15000.0}
    assert record["config_hash"] == "abc123"
    assert record["python"] == platform.python_version()
    assert record["library_versions"]["numpy"] == np.__version__
    assert record["wall_time_s"] == 1.25 and record["extra"] == {"dose": 1e4}
    assert verify_sentinel(workdir / "results" / "done.json") == record


def test_verify_detects_modified_output(workdir):
    write_default()
    (workdir / "results" / "b.csv").write_text("method,metric,value\nPtyChi,ssim,0.1\n")  # same size
    with pytest.raises(SentinelError, match=r"done\.json: output 'results/b\.csv' changed"):
        verify_sentinel("results/done.json")


def test_verify_detects_deleted_output(workdir):
    write_default()
    (workdir / "results" / "a.npz").unlink()
    with pytest.raises(SentinelError, match="'results/a.npz' is missing"):
        verify_sentinel("results/done.json")


def test_verify_resolves_against_root(workdir, tmp_path_factory, monkeypatch):
    write_default()
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    with pytest.raises(SentinelError, match="missing"):
        verify_sentinel(workdir / "results" / "done.json")
    assert verify_sentinel(workdir / "results" / "done.json", root=workdir)["step"] == "phase_c"


def test_missing_sentinel_is_reported(workdir):
    with pytest.raises(SentinelError, match="nope.json: sentinel not found"):
        verify_sentinel("nope.json")


def test_missing_output_is_refused_and_nothing_written(workdir):
    with pytest.raises(SentinelError, match="output 'results/ghost.npz' does not exist"):
        write_default(outputs=["results/a.npz", "results/ghost.npz"])
    assert sorted(p.name for p in (workdir / "results").iterdir()) == ["a.npz", "b.csv"]


def test_missing_input_is_refused(workdir):
    with pytest.raises(SentinelError, match="input 'missing.yaml'"):
        write_default(inputs=["missing.yaml"])


@pytest.mark.parametrize(
    "checks",
    [{"ssim": float("nan")}, {"psnr": np.float64(np.inf)}, {"curve": np.array([0.5, np.nan])}],
    ids=["nan", "inf", "nan-in-array"],
)
def test_non_finite_checks_are_refused(workdir, checks):
    with pytest.raises(SentinelError, match="NaN or infinity"):
        write_default(checks=checks)
    assert not (workdir / "results" / "done.json").exists()
    assert sorted(p.name for p in (workdir / "results").iterdir()) == ["a.npz", "b.csv"]


def test_unserialisable_checks_are_refused(workdir):
    with pytest.raises(SentinelError, match="not JSON-serialisable"):
        write_default(checks={"obj": object()})


def test_no_outputs_is_refused(workdir):
    with pytest.raises(SentinelError, match="at least one output"):
        write_default(outputs=[])


def test_code_version_and_library_versions():
    version = code_version()
    assert isinstance(version, str) and version
    versions = library_versions(("numpy", "surely-not-installed-package"))
    assert versions == {"numpy": np.__version__, "python": platform.python_version()}
    assert ptycho_core.__version__
