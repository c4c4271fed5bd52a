"""The study files through Snakemake, as the README says to run them (dry runs only: seconds each).

Every file in ``config/`` runs with ``--configfile config/<file>`` over the
default ``config/config.yaml``, in a directory holding a copy of ``config/``
(``config/test_file_object.yaml`` reads ``config/examples/`` relative to the
working directory). A bad study file is refused before any job: a short message
naming the file and the key, exit code 1, nothing written.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
STUDY_FILES = sorted(p.name for p in (REPO / "config").glob("*.yaml"))

pytestmark = pytest.mark.workflow


def deploy(tmp_path: Path) -> Path:
    """A study directory as in a clone: the repository's config/ (default study, study files, examples)."""
    workdir = tmp_path / "study"
    shutil.copytree(REPO / "config", workdir / "config")
    return workdir


def dry_run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """``snakemake -n`` as a user types it in the study directory (relative paths from there)."""
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(workdir), "-n", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=workdir)


def tree(workdir: Path) -> set[str]:
    return {str(p.relative_to(workdir)) for p in workdir.rglob("*")}


def test_every_study_file_is_tested():
    assert {"config.yaml", "full.yaml", "test.yaml", "test_file_object.yaml"} <= set(STUDY_FILES)


@pytest.mark.parametrize("name", STUDY_FILES)
def test_a_shipped_study_file_runs_as_documented(tmp_path, name):
    """`snakemake --configfile config/<file>` (README "Running a study"): the dry run plans the whole study."""
    workdir = deploy(tmp_path)
    proc = dry_run(workdir, "--configfile", f"config/{name}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "This was a dry-run" in out, out[-3000:]
    for rule in ("ground_truth", "simulate", "views", "train", "score", "report"):
        assert rule in out, f"{name}: no {rule} job planned\n{out[-3000:]}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an unknown top-level key: Snakemake's schema check used to print the whole configuration (1,500 lines)
        ("name: mine\ndosez: [100.0]\n", "config/mine.yaml: key 'dosez': unknown key"),
        # a key named twice: the second used to win silently
        (
            "name: mine\nobject:\n  seed: 1\n  seed: 2\n",
            "config/mine.yaml: key 'object.seed': named twice, on lines 3 and 4",
        ),
        ("grouping: {K: 3}\n", "config/mine.yaml: key 'grouping.K': expected K >= C = gridsize^2 = 4, found 3"),
        # N = 64 needs an object of 128 pixels; config/config.yaml sets 80
        ("N: 64\n", "config/config.yaml: key 'object.size': expected at least 2*N = 128 pixels, found 80"),
        # a scan beyond the memory bound, refused before it is made, naming the file that set the step
        (
            "scan: {step_fraction: 0.001}\n",
            "config/mine.yaml: key 'scan.step_fraction': expected a scan whose patterns",
        ),
        # an object of another family takes the schema's defaults (size 256), not config/config.yaml's
        ("N: 160\nobject: {family: grf}\n", "default: key 'object.size': expected at least 2*N = 320 pixels"),
    ],
)
def test_a_bad_study_file_is_refused_in_a_few_lines_naming_the_file_and_key(tmp_path, text, expected):
    """A WorkflowError: its message on stderr in a run, on stdout in a dry run (Snakemake logs there with -n)."""
    workdir = deploy(tmp_path)
    (workdir / "config" / "mine.yaml").write_text(text, encoding="utf-8")
    before = tree(workdir)
    proc = dry_run(workdir, "--configfile", "config/mine.yaml")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert f'WorkflowError in file "{REPO / "workflow" / "rules" / "common.smk"}"' in out, out
    assert expected in out, out
    assert len(out.splitlines()) < 10, out
    assert "Error validating config file" not in out  # Snakemake's schema check never runs
    assert tree(workdir) == before, sorted(tree(workdir) - before)  # nothing written, not even .snakemake/


def test_a_key_named_twice_in_the_default_study_is_refused(tmp_path):
    """config/config.yaml is read strictly too, with no --configfile."""
    workdir = deploy(tmp_path)
    default = workdir / "config" / "config.yaml"
    text = default.read_text(encoding="utf-8")
    default.write_text(text + "N: 48\n", encoding="utf-8")
    first = 1 + text.splitlines().index(next(line for line in text.splitlines() if line.startswith("N:")))
    proc = dry_run(workdir)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    expected = f"config/config.yaml: key 'N': named twice, on lines {first} and {len(text.splitlines()) + 1} "
    assert expected + "(a study file names each key once)" in out, out
