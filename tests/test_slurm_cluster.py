"""A real SLURM cluster: the test-sized study through profiles/slurm.

scripts/slurm_local.sh starts a single-node SLURM on this machine from Debian
packages (munged, slurmctld, slurmd; root, no systemd, one fake GPU). The tests
then run simulation, views and training of the test-sized study through the SLURM profile (every
job submitted with sbatch) and the same target locally, and check that

- the outputs of the deterministic simulation and views are byte-identical;
- every training job was submitted with `sbatch ... --gpus=1` and SLURM recorded
  the GPU (TresPerJob=gres:gpu:1), while no other job asked for one;
- a job that fails under SLURM is reported with its SLURM log path, and a rerun
  runs only what is missing.

These tests never skip: without root, without apt-get, or when a daemon does
not come up, they fail with the reason. Every Snakemake run is wrapped in
`timeout -k`, so a hung run cannot hang CI.

The test leaves the machine as it found it: at the end `slurm_local.sh
uninstall` stops the daemons and removes the packages, configuration and state
that `start` added, and the fixture checks that SLURM's tools, configuration,
packages, users and daemons are as before (a difference is an error at
teardown). This matters beyond tidiness: while `sinfo` is on PATH, the Snakemake
SLURM executor plugin runs `scontrol show config` (10 s timeout) at import, so
every later `snakemake` call would wait on it. A cluster that was already
running before the tests (a developer's) is left alone.

Wall times and the sbatch evidence are printed (`pytest -s` or `-rP` shows them).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ptycho_core import layout
from ptycho_core.config import load_study
from ptycho_core.methods import TRAINED_METHODS

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
SNAKEFILE = REPO / "workflow" / "Snakefile"
SLURM_PROFILE = REPO / "profiles" / "slurm"
SLURM_LOCAL = REPO / "scripts" / "slurm_local.sh"
# simulation, views and training: every trained bundle's sentinel (the training jobs are the GPU jobs)
TARGETS = [
    layout.bundle(cell.with_method(m)).sentinel
    for cell in layout.cells(load_study(REPO / "config" / "test.yaml"))
    for m in TRAINED_METHODS
]
LIMIT_S = {"start": 900, "cluster": 600, "local": 600, "failure": 300, "rerun": 300, "uninstall": 600}
SLURM_STATE = Path(os.environ.get("SLURM_LOCAL_STATE", "/var/lib/slurm-local"))
# what start may add to the machine and uninstall must take away again
SLURM_TOOLS = ("sinfo", "scontrol", "squeue", "sbatch", "sacct", "slurmctld", "slurmd", "munge", "munged")
SLURM_PATHS = (
    "/etc/slurm/slurm.conf",
    "/etc/slurm/gres.conf",
    "/etc/slurm",
    "/etc/munge/munge.key",
    "/run/munge",
    "/var/lib/munge",
    "/var/log/munge",
    str(SLURM_STATE),
)
SLURM_DAEMONS = ("munged", "slurmctld", "slurmd", "slurmstepd")
SLURM_USERS = ("slurm", "munge")

pytestmark = pytest.mark.workflow


def deploy(path: Path) -> Path:
    """A study directory as a user would have it: config/config.yaml only."""
    (path / "config").mkdir(parents=True)
    shutil.copy(REPO / "config" / "test.yaml", path / "config" / "config.yaml")
    return path


def run_logged(cmd: list[str], log: Path, limit_s: int, cwd: Path, env: dict | None = None) -> tuple[int, str, float]:
    """Run cmd under `timeout -k 10 limit_s`, output to log; (exit status, output, wall seconds)."""
    start = time.monotonic()
    with log.open("w") as fh:
        rc = subprocess.run(
            ["timeout", "-k", "10", str(limit_s), *map(str, cmd)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
        ).returncode
    wall = time.monotonic() - start
    text = log.read_text(errors="replace")
    if rc in (124, 137):
        pytest.fail(f"timed out after {limit_s} s: {' '.join(map(str, cmd))}\n(log: {log})\n{text[-3000:]}")
    return rc, text, wall


def snakemake_slurm(workdir: Path, *args: str) -> list[str]:
    """The SLURM run as a user types it (README), plus a short first status check for tests."""
    return [
        SNAKEMAKE,
        "-s",
        SNAKEFILE,
        "-d",
        workdir,
        "--profile",
        SLURM_PROFILE,
        "--workflow-profile",
        "none",
        "--slurm-init-seconds-before-status-checks",
        "2",
        *args,
    ]


def deterministic_outputs(workdir: Path) -> dict[str, str]:
    """sha256 of the simulated sets and views, which must not depend on where they ran."""
    files = sorted(
        [
            *workdir.glob("results/simulate/**/*.npz"),
            *workdir.glob("results/views/**/view.npz"),
            *workdir.glob("results/views/**/overlap_metrics.json"),
        ]
    )
    return {str(f.relative_to(workdir)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def job_stats(output: str) -> dict[str, int]:
    """Snakemake's 'Job stats' table (rule -> job count) of one run."""
    match = re.search(r"Job stats:\njob\s+count\n[-\s]+\n(.*?)\ntotal\s+\d+", output, re.S)
    assert match, "no 'Job stats' table in the Snakemake output"
    return {rule: int(n) for rule, n in (line.split() for line in match.group(1).splitlines())}


def machine_state() -> dict:
    """What scripts/slurm_local.sh start may change on this machine."""

    def exists_user(name):
        try:
            pwd.getpwnam(name)
            return True
        except KeyError:
            return False

    def daemons():
        # names of running (not zombie) processes, as ps -C would match them
        running = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            name, state = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2]
            if name in SLURM_DAEMONS and state != "Z":
                running.add(name)
        return sorted(running)

    dpkg = (
        subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Package}\n"], capture_output=True, text=True)
        if shutil.which("dpkg-query")
        else None
    )
    return {
        "tools on PATH": {t: shutil.which(t) for t in SLURM_TOOLS},
        "paths": {p: os.path.lexists(p) for p in SLURM_PATHS},
        "users": {u: exists_user(u) for u in SLURM_USERS},
        "daemons running": daemons(),
        "packages": set(dpkg.stdout.splitlines()) if dpkg else None,
    }


def state_changes(before: dict, after: dict) -> tuple[list[str], list[str]]:
    """(what is there after but was not before, what was there before but is not after)."""
    added, removed = [], []
    for key in ("tools on PATH", "paths", "users"):
        for name, was in before[key].items():
            now = after[key][name]
            if bool(was) != bool(now):
                (added if now else removed).append(f"{key}: {name} ({now or was})")
            elif was != now:
                added.append(f"{key}: {name} ({was} before, {now} after)")
    added += [f"daemon running: {d}" for d in sorted(set(after["daemons running"]) - set(before["daemons running"]))]
    removed += [f"daemon running: {d}" for d in sorted(set(before["daemons running"]) - set(after["daemons running"]))]
    if before["packages"] is not None:
        added += [f"package (dpkg status, name): {p}" for p in sorted(after["packages"] - before["packages"])]
        removed += [f"package (dpkg status, name): {p}" for p in sorted(before["packages"] - after["packages"])]
    return added, removed


def time_snakemake_version() -> float:
    start = time.monotonic()
    subprocess.run([SNAKEMAKE, "--version"], capture_output=True, timeout=120)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def cluster():
    """Start the local SLURM cluster; at the end, if this fixture started it, uninstall
    it (daemons, packages, configuration, state) and check the machine is as before."""
    problems = []
    if os.geteuid() != 0:
        problems.append(
            f"not root (uid {os.geteuid()}): scripts/slurm_local.sh installs Debian packages and starts daemons"
        )
    if shutil.which("timeout") is None:
        problems.append("coreutils `timeout` not found")
    if problems:
        yield {"ok": False, "why": "; ".join(problems)}
        return
    was_running = subprocess.run([SLURM_LOCAL, "status"], capture_output=True).returncode == 0
    # leftovers of an earlier start that was never uninstalled: uninstall removes them too
    leftovers = SLURM_STATE.exists() and not was_running
    before = machine_state()
    version_s = {"before": time_snakemake_version()}
    proc = subprocess.run(
        ["timeout", "-k", "10", str(LIMIT_S["start"]), SLURM_LOCAL, "start"],
        capture_output=True,
        text=True,
    )
    print(proc.stdout)
    why = f"scripts/slurm_local.sh start failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    yield {"ok": proc.returncode == 0, "why": why}

    # teardown (pytest runs it whatever the tests did)
    if was_running:
        print("a SLURM cluster of scripts/slurm_local.sh was running before the tests: left as it is")
        return
    # also after a failed start: uninstall takes away whatever start got to add
    proc = subprocess.run(
        ["timeout", "-k", "10", str(LIMIT_S["uninstall"]), SLURM_LOCAL, "uninstall"], capture_output=True, text=True
    )
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, (
        f"scripts/slurm_local.sh uninstall failed (exit {proc.returncode}):\n"
        f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )
    after = machine_state()
    version_s["after"] = time_snakemake_version()
    print("`snakemake --version`: {before:.1f} s before the SLURM test, {after:.1f} s after it".format(**version_s))
    # the condition under which the SLURM executor plugin runs scontrol at import
    if before["tools on PATH"]["sinfo"] is None:
        assert after["tools on PATH"]["sinfo"] is None, (
            f"sinfo is still on PATH ({after['tools on PATH']['sinfo']}): every snakemake call now waits on scontrol"
        )
    added, removed = state_changes(before, after)
    if leftovers and removed:
        print(
            f"{SLURM_STATE} existed before the tests (an earlier start, never uninstalled); "
            "uninstall also removed what that one added:\n  " + "\n  ".join(removed)
        )
        removed = []
    assert not added and not removed, "the SLURM test did not leave the machine as it found it:\n  " + "\n  ".join(
        [f"added: {x}" for x in added] + [f"removed: {x}" for x in removed]
    )


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    """Simulation, views and training of the test study through the SLURM profile (verbose: sbatch calls logged)."""
    if not cluster["ok"]:
        return {"error": cluster["why"]}
    workdir = deploy(tmp_path_factory.mktemp("slurm_study"))
    log = workdir / "snakemake_slurm.log"
    rc, out, wall = run_logged(snakemake_slurm(workdir, "--verbose", *TARGETS), log, LIMIT_S["cluster"], workdir)
    return {"workdir": workdir, "rc": rc, "output": out, "wall": wall, "log": log}


@pytest.fixture(scope="module")
def local_run(cluster, tmp_path_factory):
    """The same target run locally (default local profile), for comparison."""
    if not cluster["ok"]:
        return {"error": cluster["why"]}
    workdir = deploy(tmp_path_factory.mktemp("local_study"))
    log = workdir / "snakemake_local.log"
    cmd = [SNAKEMAKE, "-s", SNAKEFILE, "-d", workdir, "--cores", "2", *TARGETS]
    rc, out, wall = run_logged(cmd, log, LIMIT_S["local"], workdir)
    return {"workdir": workdir, "rc": rc, "output": out, "wall": wall, "log": log}


def require(run):
    """Fail (never skip) with the reason when the cluster or a run is not there."""
    if "error" in run:
        pytest.fail(run["error"], pytrace=False)
    assert run["rc"] == 0, f"Snakemake failed (exit {run['rc']}; log {run['log']}):\n{run['output'][-5000:]}"


def test_study_through_slurm_matches_local_run(slurm_run, local_run):
    require(slurm_run)
    require(local_run)
    print(
        f"\nwall time, simulation to training of the test study: SLURM profile {slurm_run['wall']:.0f} s, "
        f"local run (--cores 2) {local_run['wall']:.0f} s"
    )
    cluster, local = deterministic_outputs(slurm_run["workdir"]), deterministic_outputs(local_run["workdir"])
    study = load_study(REPO / "config" / "test.yaml")
    n_cells = len(study.dose_labels()) * len(study.seeds)
    n_objects = 1 if study.object.train_seed is None else 2  # the study object and the separate training object
    assert len(cluster) == n_objects + 2 * n_cells + 2 * n_cells * len(study.views), sorted(cluster)
    assert sorted(cluster) == sorted(local)
    differ = [name for name in cluster if cluster[name] != local[name]]
    assert not differ, (
        f"simulated sets and views differ between the SLURM and the local run: {differ} "
        "(the provenance code_version inside them differs too if a commit landed between the runs)"
    )
    for method in ("PtychoPINN", "Baseline"):  # per cell, and once per dose for the Baseline (layout.network_cell)
        sentinels = {layout.bundle(c.with_method(method)).sentinel for c in layout.cells(study)}
        assert len(sentinels) == n_cells * (len(study.views) if method == "PtychoPINN" else 1)
        assert all((slurm_run["workdir"] / p).is_file() for p in sentinels), sorted(sentinels)


def test_training_jobs_are_submitted_with_a_gpu(slurm_run):
    require(slurm_run)
    out, workdir = slurm_run["output"], slurm_run["workdir"]
    calls = [line for line in out.splitlines() if line.startswith("sbatch call: sbatch ")]
    assert calls, f"no sbatch call in the verbose Snakemake output ({slurm_run['log']})"
    by_comment = {}
    for line in calls:
        head = line.split(" --wrap=")[0]
        comment = re.search(r"--comment (\S+)", head).group(1)
        by_comment[comment] = head
    train = {c: h for c, h in by_comment.items() if c.startswith("rule_train_")}
    others = {c: h for c, h in by_comment.items() if not c.startswith("rule_train_")}
    study = load_study(REPO / "config" / "test.yaml")
    n_doses = len(study.dose_labels()) * len(study.seeds)
    # PtychoPINN per cell, the Baseline once per dose (rule train_per_dose)
    assert len(train) == n_doses * (len(study.views) + 1), sorted(by_comment)
    assert all(" --gpus=1" in h for h in train.values()), train
    assert not any("--gpus" in h or "--gres" in h for h in others.values()), others
    print("\nsbatch calls of the training jobs (Snakemake --verbose, up to --wrap):")
    for head in train.values():
        print("  " + head)

    # What SLURM itself recorded (finished jobs stay in slurmctld for MinJobAge = 1 h).
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.", out)
    assert len(submitted) >= len(by_comment)
    print("SLURM's record of the jobs (scontrol show job):")
    seen_gpu = 0
    for jobid, _ in submitted:
        info = subprocess.run(["scontrol", "show", "job", jobid], capture_output=True, text=True, timeout=30).stdout
        comment = re.search(r"Comment=(\S+)", info).group(1)
        tres = re.search(r"TresPerJob=(\S+)", info)
        state = re.search(r"JobState=(\S+)", info).group(1)
        if comment.startswith("rule_train_"):
            assert tres and tres.group(1) == "gres:gpu:1", info
            seen_gpu += 1
            print(f"  job {jobid}: {comment} JobState={state} TresPerJob={tres.group(1)}")
        else:
            assert tres is None, info
    assert seen_gpu >= len(train)
    # Snakemake's own log file of the run lists the submissions too.
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    assert logs and "has been submitted with SLURM jobid" in logs[-1].read_text()


def test_failed_slurm_job_is_reported_and_rerun_resumes(slurm_run):
    """PtyChi with a broken interpreter fails under SLURM; the rerun runs only that job."""
    require(slurm_run)
    workdir = slurm_run["workdir"]
    study = load_study(REPO / "config" / "test.yaml")
    cell = layout.Cell(next(iter(study.dose_labels())), study.seeds[0], study.views[-1].name)
    targets = [layout.reconstruction(cell.with_method(m)).recon for m in ("PtyChi", "Baseline")]
    broken = dict(os.environ, PTYCHI_PYTHON="/nonexistent/ptychi/bin/python")

    rc, out, wall = run_logged(
        snakemake_slurm(workdir, *targets), workdir / "snakemake_failure.log", LIMIT_S["failure"], workdir, env=broken
    )
    print(f"\nrun with a failing PtyChi job: exit {rc}, {wall:.0f} s")
    assert rc != 0, out[-3000:]
    assert "Error in rule reconstruct_ptychi" in out, out[-3000:]
    slurm_logs = sorted(set(re.findall(r"(/\S+/rule_reconstruct_ptychi/\S+?\.log)", out)))
    assert slurm_logs, f"no SLURM log path reported for the failed job:\n{out[-3000:]}"
    for path in slurm_logs:
        assert Path(path).is_file(), path
    assert any("/nonexistent/ptychi/bin/python" in Path(p).read_text(errors="replace") for p in slurm_logs)
    print("reported SLURM logs of the failed job: " + ", ".join(slurm_logs))
    assert not (workdir / targets[0]).exists()
    assert (workdir / targets[1]).is_file(), "keep-going: the independent job should have finished"

    rc, out, wall = run_logged(
        snakemake_slurm(workdir, *targets), workdir / "snakemake_rerun.log", LIMIT_S["rerun"], workdir
    )
    print(f"rerun: exit {rc}, {wall:.0f} s")
    assert rc == 0, out[-5000:]
    assert job_stats(out) == {"reconstruct_ptychi": 1}, out[-3000:]
    assert (workdir / targets[0]).is_file()

    proc = subprocess.run(
        [*map(str, snakemake_slurm(workdir, *targets, *TARGETS)), "-n"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=workdir,
    )
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr, proc.stderr[-3000:]
