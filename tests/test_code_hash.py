"""The code-provenance hash: which library files each workflow step can load."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ptycho_core.code_hash import code_closure, code_hash, code_hashes

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "ptycho_core"
STEPS = [
    "simulate",
    "views",
    "train",
    "refine",
    "reconstruct_network",
    "reconstruct_ptychi",
    "score",
    "report",
    "study_config",
]


def _rel(paths) -> set[str]:
    return {p.relative_to(PKG.resolve()).as_posix() for p in paths}


def test_closure_follows_imports_inside_functions_and_package_inits():
    ptychi = _rel(code_closure("ptycho_core.steps.reconstruct_ptychi"))
    # what the step imports at the top, its lazy imports, the package inits and the schema config.py reads
    assert {
        "steps/reconstruct_ptychi.py",
        "recon/ptychi.py",
        "steps/joblog.py",
        "recon/__init__.py",
        "__init__.py",
        "config.schema.yaml",
    } <= ptychi
    # the layout's promise, seen from the code hash: the PtyChi step loads no Keras module and no figure
    assert not {f for f in ptychi if f.startswith(("nn/", "figures/"))}
    train = _rel(code_closure("ptycho_core.steps.train"))
    assert {"nn/models.py", "nn/training.py", "nn/physics.py"} <= train and "recon/ptychi.py" not in train


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "ptycho_core"
    shutil.copytree(PKG, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def _hashes(root: Path) -> dict[str, str]:
    return code_hashes({s: (f"ptycho_core.steps.{s}",) for s in STEPS}, root=root)


@pytest.mark.parametrize(
    "edited, changed",
    [
        ("recon/ptychi.py", {"reconstruct_ptychi"}),
        ("nn/models.py", {"train", "refine", "reconstruct_network"}),
        ("figures/study.py", {"report"}),
        ("physics/forward.py", {"simulate", "views", "train", "refine", "reconstruct_ptychi"}),
        ("config.schema.yaml", set(STEPS) - {"study_config"}),
    ],
)
def test_an_edit_changes_the_hash_of_exactly_the_steps_that_can_load_it(tmp_path, edited, changed):
    root = _copy(tmp_path)
    before = _hashes(root)
    assert before == _hashes(PKG), "the hash depends on the files' content, not on where the package lies"
    target = root / edited
    target.write_bytes(target.read_bytes() + b"\n# an edit\n")
    after = _hashes(root)
    assert {s for s in STEPS if after[s] != before[s]} == changed


def test_a_module_no_step_imports_changes_no_hash(tmp_path):
    root = _copy(tmp_path)
    before = _hashes(root)
    (root / "config_reference.py").write_text("# rewritten\n")
    assert _hashes(root) == before


def test_relative_imports_and_from_package_import_submodule(tmp_path):
    pkg = tmp_path / "ptycho_core"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "b.py").write_text("from . import c\nfrom .. import d\n")
    (pkg / "a" / "c.py").write_text("X = 1\n")
    (pkg / "d.py").write_text("def f():\n    from ptycho_core.a import e\n")
    (pkg / "a" / "e.py").write_text("import numpy\n")
    (pkg / "unused.py").write_text("")
    assert {p.name for p in code_closure("ptycho_core.a.b", root=pkg)} == {
        "__init__.py",
        "b.py",
        "c.py",
        "d.py",
        "e.py",
    }
    h = code_hash("ptycho_core.a.b", root=pkg)
    (pkg / "a" / "e.py").write_text("import numpy  # edited\n")
    assert code_hash("ptycho_core.a.b", root=pkg) != h
    with pytest.raises(ValueError, match="not a module"):
        code_closure("ptycho_core.missing", root=pkg)


def test_the_library_imports_nothing_by_name_at_run_time():
    """The closure reads import statements; an importlib/__import__ call would escape it."""
    offenders = [
        p.relative_to(PKG).as_posix()
        for p in PKG.rglob("*.py")
        if re.search(r"importlib\.import_module|__import__\(|import_module\(", p.read_text())
    ]
    assert offenders == []


def test_every_rule_hashes_the_modules_its_adapter_imports():
    """common.smk's STEP_OF_RULE and ADAPTER_IMPORTS against each rule's real script and what it imports."""
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    table = common.split("STEP_OF_RULE = {")[1].split("}")[0]
    step_of_rule = {
        r: (step, script) for r, step, script in re.findall(r'^\s+"(\w+)": \("(\w+)", "(\w+)"\),$', table, re.M)
    }
    adapter_imports = set(re.findall(r'"(ptycho_core[\w.]+)"', common.split("ADAPTER_IMPORTS = ")[1].split(")")[0]))
    scripts = {}
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for rule, body in re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", smk.read_text(), re.M | re.S):
            m = re.search(r'script:\s*\n(?:\s*#.*\n)*\s*"\.\./scripts/(\w+)\.py"', body)
            if m:
                scripts[rule] = m.group(1)
                assert f'code=CODE["{rule}"]' in body, f"rule {rule} has no code param"
    assert set(scripts) == set(step_of_rule), "every rule with a script, and only those, has a code hash"
    for rule, script in scripts.items():
        step_module, hashed_script = step_of_rule[rule]
        assert hashed_script == script, f"rule {rule} runs {script}.py, its code hash reads {hashed_script}.py"
        text = (ROOT / "workflow" / "scripts" / f"{script}.py").read_text()
        used = set(re.findall(r"from (ptycho_core\.[\w.]+) import", text))
        used |= {f"ptycho_core.{m}" for m in re.findall(r"from ptycho_core import (\w+)", text)}
        step = f"ptycho_core.steps.{step_module}"
        assert step in used, f"rule {rule}: its script imports {sorted(used)}, not {step}"
        assert used <= {step} | adapter_imports, (
            f"rule {rule}: its script imports {sorted(used - {step} - adapter_imports)} "
            "beyond what its code hash covers"
        )


def test_extra_files_count_by_content_and_name_not_location(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "train.py").write_text("x = 1\n")
    (b / "train.py").write_text("x = 1\n")
    h = code_hash("ptycho_core.steps.study_config", files=[a / "train.py"])
    assert (
        h
        == code_hash("ptycho_core.steps.study_config", files=[b / "train.py"])
        != code_hash("ptycho_core.steps.study_config")
    )
    (b / "train.py").write_text("x = 2\n")
    assert code_hash("ptycho_core.steps.study_config", files=[b / "train.py"]) != h
    assert code_hashes({"r": {"modules": ("ptycho_core.steps.study_config",), "files": (a / "train.py",)}})["r"] == h
