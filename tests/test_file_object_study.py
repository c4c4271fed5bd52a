"""End-to-end: the test-sized study on your own object and probe (config/test_file_object.yaml).

The study reads the shipped examples of ``config/examples/`` (object family
``file``, probe kind ``file``), paths relative to the working directory: the
whole study (the default target) runs in a temporary directory holding the
study file and a copy of the examples.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import zoom

from ptycho_core import layout
from ptycho_core.config import load_study
from ptycho_core.io.datasets import load_diffraction_set, load_ground_truth
from ptycho_core.io.npz import write_npz
from ptycho_core.io.sentinel import verify_sentinel

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")

pytestmark = pytest.mark.workflow


def run_snakemake(workdir: Path, *targets: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(workdir), "--cores", "2", *targets]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def file_study(tmp_path_factory):
    """The whole test-sized study on the example object, training object and probe files."""
    workdir = tmp_path_factory.mktemp("file_study")
    (workdir / "config").mkdir()
    shutil.copy(REPO / "config" / "test_file_object.yaml", workdir / "config" / "config.yaml")
    shutil.copytree(REPO / "config" / "examples", workdir / "config" / "examples")
    proc = run_snakemake(workdir)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return workdir


def _resampled_crop(path: Path, factor: float, size: int) -> np.ndarray:
    """The configured geometry, computed here from the documented recipe: linear zoom of re/im, centre crop."""
    arr = np.load(path, allow_pickle=False)["object"].astype(np.complex128)
    z = zoom(arr.real, factor, order=1, mode="nearest", grid_mode=True) + 1j * zoom(
        arr.imag, factor, order=1, mode="nearest", grid_mode=True
    )
    r0, c0 = (z.shape[0] - size) // 2, (z.shape[1] - size) // 2
    return z[r0 : r0 + size, c0 : c0 + size]


def test_the_ground_truth_is_the_example_file_resampled_and_cropped(file_study):
    workdir = file_study
    study = load_study(workdir / "config" / "config.yaml")
    assert study.object.family == "file" and study.probe.kind == "file"
    for name, source in (("ground_truth", study.object.file), ("training_object", study.object.train_file)):
        gt = load_ground_truth(workdir / f"results/simulate/seed_0/{name}.npz")
        verify_sentinel(workdir / f"results/simulate/seed_0/{name}.sentinel.json", root=workdir)
        expected = _resampled_crop(workdir / source, study.object.file_pixel_size, study.object.size)
        assert gt.obj.shape == expected.shape == (78, 78)
        np.testing.assert_array_equal(gt.obj, expected.astype(np.complex64))
        (record,) = gt.metadata["provenance"]["source_files"].values()
        assert record["path"] == source
        assert record["sha256"] == hashlib.sha256((workdir / source).read_bytes()).hexdigest()


def test_the_datasets_carry_the_example_probe(file_study):
    workdir = file_study
    probe = np.load(workdir / "config/examples/probe.npz", allow_pickle=False)["probe"]
    ds = load_diffraction_set(workdir / "results/simulate/dose_1e4/seed_0/test.npz")
    unit = probe / np.abs(probe).max()
    scale = ds.metadata["probe"]["scale_sqrt_photons"]
    np.testing.assert_allclose(ds.probe, unit * scale, rtol=1e-5, atol=1e-6 * scale)
    assert (
        ds.metadata["provenance"]["source_files"]["probe.file"]["sha256"]
        == hashlib.sha256(probe_bytes := (workdir / "config/examples/probe.npz").read_bytes()).hexdigest()
    )
    assert len(probe_bytes) == ds.metadata["provenance"]["source_files"]["probe.file"]["bytes"]


def test_the_report_is_finished(file_study):
    workdir = file_study
    verify_sentinel(workdir / "results/report/sentinel.json", root=workdir)
    header = (workdir / "results/report/metrics.csv").read_text().splitlines()[0]
    assert header == "dose,view,seed,method,quantity,metric,value"
    proc = run_snakemake(workdir, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_a_changed_object_or_probe_file_reruns_what_reads_it(file_study, tmp_path):
    workdir = tmp_path / "study"
    shutil.copytree(file_study, workdir, symlinks=True)

    def rerun() -> set[str]:
        proc = run_snakemake(workdir, "-n", timeout=600)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-3000:]
        table = out.split("Job stats:")[1].split("Reasons:")[0] if "Job stats:" in out else ""
        return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)} - {"all", "total"}

    examples = workdir / "config" / "examples"
    (examples / "probe.npz").touch()  # same bytes: nothing to do
    assert rerun() == set()
    probe = np.load(examples / "probe.npz")["probe"]
    write_npz(examples / "probe.npz", {"probe": (probe * np.exp(0.3j)).astype(np.complex64)})
    after_probe = rerun()
    assert "simulate" in after_probe and not {"ground_truth", "training_object"} & after_probe
    train = np.load(examples / "train_object.npz")["object"]
    write_npz(examples / "train_object.npz", {"object": (train * 0.98).astype(np.complex64)})
    assert {"training_object", "simulate"} <= rerun() and "ground_truth" not in rerun()


def test_replaced_content_with_an_older_time_reruns_what_reads_it(file_study, tmp_path):
    """Files are compared by content: other bytes under an older modification time still rerun their readers."""
    workdir = tmp_path / "study"
    shutil.copytree(file_study, workdir, symlinks=True)
    examples = workdir / "config" / "examples"
    old = (workdir / layout.ground_truth(0).obj).stat().st_mtime - 86400  # a day before the results
    obj = np.load(examples / "object.npz")["object"]
    write_npz(examples / "object.npz", {"object": (obj * 0.97).astype(np.complex64)})
    os.utime(examples / "object.npz", (old, old))
    proc = run_snakemake(workdir, "-n", timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Params have changed" in out and re.search(r"^ground_truth\s+1$", out, re.M), out[-3000:]
    assert re.search(r"^simulate\s+\d+$", out, re.M), out[-3000:]  # and what reads the new object


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            {"probe": {"kind": "file", "file": "config/examples/object.npz", "key": "object"}},
            (
                r"config/examples/object\.npz \(probe\.file\): key 'object': "
                r"expected a complex array of shape \(32, 32\) \(N x N\), found complex64 \(96, 96\)"
            ),
        ),
        (
            {"object": {"file": "config/examples/missing.npz"}},
            r"config/examples/missing\.npz \(object\.file\): file not found",
        ),
        (
            {"object": {"file_pixel_size": 0.5}},
            r"expected at least object\.size x object\.size = 78 x 78 pixels .* found 48 x 48 \(file 96 x 96\)",
        ),
    ],
)
def test_a_bad_object_or_probe_file_fails_before_any_job(tmp_path, edit, expected):
    import yaml

    cfg = yaml.safe_load((REPO / "config" / "test_file_object.yaml").read_text())
    for section, values in edit.items():
        cfg[section].update(values)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    shutil.copytree(REPO / "config" / "examples", tmp_path / "config" / "examples")
    proc = run_snakemake(tmp_path, "all_simulate", timeout=300)
    assert proc.returncode != 0
    assert re.search(expected, proc.stdout + proc.stderr), (proc.stdout + proc.stderr)[-3000:]
    assert not (tmp_path / "results").exists()
