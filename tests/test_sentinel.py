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
        step="simulate",
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
        "step",
        "inputs",
        "outputs",
        "checks",
        "config_hash",
        "section_hashes",
        "code_version",
        "library_versions",
        "python",
        "wall_time_s",
        "extra",
    }
    assert [o["path"] for o in record["outputs"]] == ["results/a.npz", "results/b.csv"]
    for entry in record["inputs"] + record["outputs"]:
        data = (workdir / entry["path"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
    assert record["checks"] == {"n_patterns": 5, "finite": True, "mean_counts": 15000.0}
    assert record["config_hash"] == "abc123"
    assert record["python"] == platform.python_version()
    assert record["library_versions"]["numpy"] == np.__version__ and "python" not in record["library_versions"]
    assert record["wall_time_s"] == 1.25 and record["extra"] == {"dose": 1e4}
    assert verify_sentinel(workdir / "results" / "done.json") == record


def test_verify_detects_modified_output(workdir):
    write_default()
    (workdir / "results" / "b.csv").write_text("method,metric,value\nPtyChi,ssim,0.1\n")  # same size
    with pytest.raises(SentinelError, match=r"done\.json: output 'results/b\.csv' changed") as err:
        verify_sentinel("results/done.json")
    # the refusal says what to do next: rerun the step that wrote the file (its name is in the sentinel)
    step = json.loads((workdir / "results" / "done.json").read_text())["step"]
    assert f"snakemake -R {step}" in str(err.value) and "put the original file back" in str(err.value)


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
    assert verify_sentinel(workdir / "results" / "done.json", root=workdir)["step"] == "simulate"


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
    assert versions == {"numpy": np.__version__}  # Python's version is the sentinel's own key "python", recorded once
    assert ptycho_core.__version__


# --------------------------------------------------------------------------
# The step skeleton (ptycho_core.steps.skeleton.Step)
# --------------------------------------------------------------------------


@pytest.fixture
def study():
    from pathlib import Path

    from ptycho_core.config import load_study

    return load_study(Path(__file__).resolve().parents[1] / "config" / "test.yaml")


def test_step_writes_its_sentinel_with_the_hashes_of_its_sections(workdir, study):
    from ptycho_core.config import SECTION_GROUPS
    from ptycho_core.steps.skeleton import Step

    write_default(path="results/upstream.json")
    with Step(
        "views",
        study,
        sentinel="results/step.json",
        depends_on=("physics", "views"),
        input_sentinels=["results/upstream.json"],
        extra={"dose": 1e4},
    ) as step:
        step.inputs.append("config.yaml")
        step.outputs.append("results/b.csv")
        step.checks["n"] = 3
    record = json.loads((workdir / "results" / "step.json").read_text())
    assert record == step.record
    assert record["step"] == "views" and record["checks"] == {"n": 3} and record["extra"] == {"dose": 1e4}
    assert [r["path"] for r in record["inputs"]] == ["config.yaml", "results/upstream.json"]
    assert record["config_hash"] == study.config_hash()
    # each group's hash is the hash of exactly its sections, computed independently here
    d = study.to_dict()
    for group in ("physics", "views"):
        text = json.dumps({k: d[k] for k in SECTION_GROUPS[group]}, sort_keys=True, separators=(",", ":"))
        assert record["section_hashes"][group] == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert set(record["section_hashes"]) == {"physics", "views"}
    # a change to a section outside the groups leaves their hashes alone; one inside changes them
    raw = study.to_dict()
    raw["training"]["epochs"] += 1
    from ptycho_core.config import study_from_dict

    other = study_from_dict(raw)
    assert other.section_hashes("physics", "views") == record["section_hashes"]
    assert other.section_hashes("training") != study.section_hashes("training")


def test_step_refuses_a_changed_input_and_writes_nothing_on_failure(workdir, study):
    from ptycho_core.io.sentinel import ArtifactCheckError
    from ptycho_core.steps.skeleton import Step, require

    write_default(path="results/upstream.json")
    (workdir / "results" / "a.npz").write_bytes(b"changed")
    with pytest.raises(SentinelError, match="changed"):
        with Step("views", study, sentinel="results/step.json", input_sentinels=["results/upstream.json"]):
            raise AssertionError("the body must not run when an input sentinel fails")
    assert not (workdir / "results" / "step.json").exists()
    with pytest.raises(ArtifactCheckError, match=r"results/b.csv: check 'rows' failed: 1 row"):
        with Step("score", study, sentinel="results/step.json") as step:
            step.outputs.append("results/b.csv")
            require("results/b.csv", "rows", False, "1 row")
    assert not (workdir / "results" / "step.json").exists()
    with pytest.raises(KeyError, match="section groups"):
        study.section_hashes("nope")
