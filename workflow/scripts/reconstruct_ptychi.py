"""Adapter of rule reconstruct_ptychi: pty-chi LSQML on one cell (every path is the cell's in ptycho_core.layout).

pty-chi needs torch, which must not share an environment with TensorFlow, so
where the work runs depends on the interpreter Snakemake gave this script:

- ``PTYCHI_PYTHON`` set: that interpreter runs the step (the user's choice wins);
- this interpreter has pty-chi (the rule's conda environment under
  ``--sdm conda``): the step runs here;
- otherwise the PtyChi environment that ``make venv`` builds,
  ``.venv-ptychi`` at the root of the repository holding this workflow.

Nothing of this is a param: moving the checkout or switching interpreters
does not rerun PtyChi. The step itself is
``ptycho_core.steps.reconstruct_ptychi`` (its ``main`` is the command line).
"""

import importlib.util
import os
import subprocess
from pathlib import Path

sm = snakemake  # noqa: F821
argv = [
    "--config-json", sm.input.config,
    "--dose", sm.wildcards.dose,
    "--view", sm.wildcards.view,
    "--seed", sm.wildcards.seed,
    "--method", sm.wildcards.method,
    "--log", sm.log[0],
    "--threads", str(sm.threads),
]  # fmt: skip

python = os.environ.get("PTYCHI_PYTHON")
if python is None and importlib.util.find_spec("ptychi") is not None:
    from ptycho_core.steps.reconstruct_ptychi import main

    main(argv)
else:
    source = "PTYCHI_PYTHON"
    if python is None:
        python = str(Path(sm.scriptdir).resolve().parents[1] / ".venv-ptychi" / "bin" / "python")
        source = "the PtyChi environment built by `make venv`"
    if not Path(python).is_file():
        raise SystemExit(
            f"reconstruct_ptychi: this interpreter has no pty-chi, and {source} ({python}) does not exist; "
            "run `make venv`, set PTYCHI_PYTHON to a Python with pty-chi and ptycho_core, or use --sdm conda"
        )
    subprocess.run([python, "-m", "ptycho_core.steps.reconstruct_ptychi", *argv], check=True)
