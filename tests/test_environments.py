"""The rules' software environments (workflow/envs/) against what the tests exercise.

`--sdm conda` cannot run here (no conda channel is reachable from the build
machines), so these tests hold the conda files to the pinned requirements that
`make venv` installs and every other test runs on, check that each rule names
the environment holding what its step imports, and run the post-deploy
install of ptycho_core for real in a fresh virtual environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS = ROOT / "workflow" / "envs"
RULES = ROOT / "workflow" / "rules"
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)$")

# The environment each rule runs in: the network rules need Keras/TensorFlow,
# the PtyChi rule torch and pty-chi (never together with TensorFlow).
NN_RULES = {"train", "train_per_dose", "refine", "reconstruct_network"}
PTYCHI_RULES = {"reconstruct_ptychi"}


def _name(name: str) -> str:
    """A distribution name as pip compares it: case, `-`, `_` and `.` alike."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            m = PIN.match(line)
            assert m, f"{path.name}: {line!r} is not pinned as name==version"
            pins[_name(m.group(1))] = m.group(2)
    return pins


def _env(name: str) -> dict:
    return yaml.safe_load((ENVS / f"{name}.yaml").read_text())


def _env_pins(env: dict, local: tuple[str, ...] = ()) -> dict[str, str]:
    """The pip pins of a conda environment; `local` lists the entries allowed besides name==version."""
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pins = {}
    for entry in pip:
        if entry in local:
            continue
        m = PIN.match(entry)
        assert m, (
            f"{env['name']}: pip entry {entry!r} is not name==version "
            "(the environment must be self-contained: no -r, no -e)"
        )
        pins[_name(m.group(1))] = m.group(2)
    return pins


def _rule_envs() -> dict[str, str]:
    """rule name -> the env file its conda: directive names."""
    found = {}
    for smk in RULES.glob("*.smk"):
        for rule, body in re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", smk.read_text(), re.M | re.S):
            m = re.search(r"conda:\s*\n\s*\"([^\"]+)\"", body)
            if m:
                found[rule] = (smk.parent / m.group(1)).resolve()
    return found


def _dep_names(specs: list[str]) -> set[str]:
    return {_name(re.split(r"[<>=\[ ]", s, maxsplit=1)[0]) for s in specs}


ENV_NAMES = sorted(p.stem for p in ENVS.glob("*.yaml"))


def test_there_are_the_three_environments():
    assert ENV_NAMES == ["nn", "ptychi", "study"]


@pytest.mark.parametrize("name", ENV_NAMES)
def test_environment_is_self_contained_and_pinned_as_the_tested_requirements(name):
    env = _env(name)
    assert "python=3.11" in env["dependencies"], "the Python the requirements were resolved for"
    pins = _env_pins(env)
    tested = _pins(ROOT / ("requirements-ptychi.txt" if name == "ptychi" else "requirements.txt"))
    differ = {k: (v, tested.get(k)) for k, v in pins.items() if tested.get(k) != v}
    assert not differ, f"{name}.yaml pins differ from the tested requirements (env, requirements): {differ}"
    post = ENVS / f"{name}.post-deploy.sh"
    assert post.is_file() and os.access(post, os.X_OK), (
        f"{post.name} missing or not executable: ptycho_core would not be installed"
    )


def test_root_environment_runs_the_workflow_at_the_tested_pins():
    """environment.yml (one conda environment for the workflow) is requirements.txt plus ptycho_core
    from the repository."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = {
        d for name in ENV_NAMES for d in _env(name)["dependencies"] if isinstance(d, str) and d.startswith("python")
    }
    assert len(python) == 1, f"the rules' environments disagree on Python: {python}"
    assert python == {d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")}, (
        f"environment.yml must pin {python.pop()}, as the rules' environments"
    )
    assert "pip" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip.count("-e .") == 1, "ptycho_core must be installed (editable) from the repository: `-e .`"
    pins, tested = _env_pins(env, local=("-e .",)), _pins(ROOT / "requirements.txt")
    assert len(pins) == len(pip) - 1, "a package pinned twice in environment.yml"
    differ = {k: (pins.get(k), tested.get(k)) for k in pins.keys() | tested.keys() if pins.get(k) != tested.get(k)}
    assert not differ, f"environment.yml pins differ from requirements.txt (environment.yml, requirements): {differ}"
    assert not {"torch", "ptychi"} & set(pins), "torch must not share an environment with TensorFlow"


def test_each_environment_holds_what_its_steps_import():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = _dep_names(project["dependencies"])
    extras = {k: _dep_names(v) for k, v in project["optional-dependencies"].items()}
    for name in ENV_NAMES:
        missing = core - set(_env_pins(_env(name)))
        assert not missing, f"{name}.yaml lacks ptycho_core's dependencies {sorted(missing)}"
    assert extras["nn"] <= set(_env_pins(_env("nn"))), "nn.yaml lacks the network extra"
    assert extras["ptychi"] <= set(_env_pins(_env("ptychi"))), "ptychi.yaml lacks the PtyChi extra"
    assert not {"torch", "ptychi"} & set(_env_pins(_env("nn"))), "torch must not share an environment with TensorFlow"
    assert not {"tensorflow-cpu", "keras"} & set(_env_pins(_env("ptychi")))


def test_every_rule_with_a_job_names_the_environment_of_its_step():
    envs = _rule_envs()
    jobs = {r for smk in RULES.glob("*.smk") for r in re.findall(r"^rule (\w+):", smk.read_text(), re.M)}
    targets = {r for r in jobs if r.startswith("all_") or r == "all"}
    assert set(envs) == jobs - targets, f"rules without conda: {sorted(jobs - targets - set(envs))}"
    for rule, env in envs.items():
        want = "nn" if rule in NN_RULES else "ptychi" if rule in PTYCHI_RULES else "study"
        assert env == ENVS / f"{want}.yaml", f"rule {rule} runs in {env.name}, expected {want}.yaml"


def test_post_deploy_installs_ptycho_core_from_this_repository(tmp_path):
    """What Snakemake runs after building an environment, run for real in a fresh venv."""
    venv = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    env.pop("PTYCHO_CORE_SOURCE", None)
    proc = subprocess.run(
        ["bash", str(ENVS / "nn.post-deploy.sh")], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import ptycho_core.config, sys; print(ptycho_core.config.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).resolve() == (ROOT / "ptycho_core" / "config.py").resolve(), where
