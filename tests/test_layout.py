"""The package's layout keeps its promises (docs/DESIGN.md section 11).

- Importing any module does no work that loads a heavy framework: Keras and
  TensorFlow are imported only by ``ptycho_core.nn`` (and inside the training
  steps' functions), torch only inside ``ptycho_core.recon.ptychi``'s functions.
- The PtyChi step, which runs in the torch environment, imports no plotting
  library and no Keras.
- The library never imports Snakemake; the workflow scripts call only ``steps``
  (with the configuration and the layout of paths).
"""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import ptycho_core

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(m.name for m in pkgutil.walk_packages(ptycho_core.__path__, "ptycho_core."))


def _loaded_after_import(modules: list[str], probes: tuple[str, ...]) -> dict[str, bool]:
    """In a fresh interpreter, import ``modules`` and report which of ``probes`` got loaded."""
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(','.join(p for p in {probes!r} if p in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    loaded = set(filter(None, out.stdout.strip().split(",")))
    return {p: p in loaded for p in probes}


def test_the_package_has_the_documented_subpackages():
    packages = {m.name for m in pkgutil.iter_modules(ptycho_core.__path__) if m.ispkg}
    assert packages == {"physics", "sampling", "io", "nn", "recon", "evaluate", "figures", "steps"}
    documented = ptycho_core.__doc__
    for name in packages:
        assert f"``{name}/``" in documented, f"ptycho_core/__init__ docstring does not describe {name}/"


def test_only_nn_imports_keras_and_nothing_imports_torch_at_module_level():
    outside = [m for m in MODULES if not m.startswith("ptycho_core.nn")]
    assert len(outside) > 30
    loaded = _loaded_after_import(outside, ("keras", "tensorflow", "torch", "ptychi", "snakemake"))
    assert not any(loaded.values()), f"importing modules outside ptycho_core.nn loaded {loaded}"


def test_the_ptychi_step_needs_neither_plotting_nor_keras():
    loaded = _loaded_after_import(
        ["ptycho_core.steps.reconstruct_ptychi"], ("matplotlib", "keras", "tensorflow", "torch")
    )
    assert not any(loaded.values()), loaded


def test_workflow_scripts_call_only_steps_and_the_configuration():
    allowed = re.compile(r"ptycho_core\.(steps(\.[a-z_]+)?|config|layout)$")
    for script in sorted((ROOT / "workflow" / "scripts").glob("*.py")):
        text = script.read_text()
        used = set(re.findall(r"from (ptycho_core[.a-z_]*) import", text)) - {"ptycho_core"}
        used |= {f"ptycho_core.{m}" for m in re.findall(r"from ptycho_core import ([a-z_]+)", text)}
        assert used, f"{script.name} calls no ptycho_core step"
        wrong = [m for m in used if not allowed.match(m)]
        assert not wrong, f"{script.name} imports {wrong}; workflow scripts are thin adapters over ptycho_core.steps"


def test_every_method_says_how_it_is_produced_and_which_step_reconstructs_it():
    import importlib

    from ptycho_core.methods import REGISTRY, Method

    rules = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    assert set(REGISTRY) == set(Method)
    for method, spec in REGISTRY.items():
        assert spec.produced_by in ("trained", "refined", "iterative"), method
        assert (spec.produced_by == "iterative") == (spec.iterative_step is not None), method
        assert (spec.refines is not None) == (spec.produced_by == "refined"), method
        step = spec.reconstruct_step
        assert hasattr(importlib.import_module(f"ptycho_core.steps.{step}"), f"run_{step}"), method
        assert f"rule {step}:" in rules, f"{method.value}: no workflow rule {step}"


def test_only_a_supervised_method_is_given_the_ground_truth(tmp_path):
    import pytest

    from ptycho_core import layout
    from ptycho_core.config import dose_label, load_study
    from ptycho_core.steps.train import run_train

    study = load_study(ROOT / "config" / "test.yaml")
    cell = layout.Cell(dose_label(100.0), 0, "dense")
    files = dict(simulated=layout.simulated(cell).under(tmp_path), view=layout.view(cell).under(tmp_path))
    with pytest.raises(ValueError, match="PtychoPINN is unsupervised: it must not be given the ground truth"):
        pinn = cell.with_method("PtychoPINN")
        run_train(
            study,
            cell=pinn,
            **files,
            out=layout.bundle(pinn).under(tmp_path),
            ground_truth=layout.ground_truth(0).under(tmp_path),
        )
    baseline = layout.network_cell(cell.with_method("Baseline"))  # trained once per dose: no view
    with pytest.raises(ValueError, match="Baseline is supervised: it needs the ground truth"):
        run_train(
            study,
            cell=baseline,
            simulated=files["simulated"],
            view=None,
            out=layout.bundle(baseline).under(tmp_path),
        )
    with pytest.raises(ValueError, match="Baseline is trained once per dose: it must not be given a view"):
        run_train(
            study,
            cell=cell.with_method("Baseline"),
            **files,
            out=layout.bundle(baseline).under(tmp_path),
            ground_truth=layout.ground_truth(0, training=True).under(tmp_path),
        )
    assert not any(tmp_path.iterdir())


def test_a_method_trained_once_per_dose_has_one_bundle_for_every_view():
    from collections import Counter

    from ptycho_core import layout
    from ptycho_core.config import load_study

    study = load_study(ROOT / "config" / "test.yaml")
    dense, sparse = (layout.Cell("1e2", 0, v, "Baseline") for v in ("dense", "sparse"))
    assert layout.bundle(dense) == layout.bundle(sparse)
    assert layout.bundle(dense).model == "results/networks/dose_1e2/seed_0/Baseline/model.keras"
    pinn = [layout.bundle(c.with_method("PtychoPINN")).model for c in (dense, sparse)]
    assert pinn[0] != pinn[1] and "view_dense" in pinn[0]
    # one training job per dose and seed, one network reconstruction job per cell
    per_rule = Counter(rule for rule, _, _ in layout.benchmark_jobs(study))
    n_cells = len(study.doses) * len(study.views) * len(study.seeds)
    assert per_rule["train_per_dose"] == len(study.doses) * len(study.seeds)
    assert per_rule["train"] == per_rule["refine"] == per_rule["reconstruct_network"] == n_cells
