"""Workflow step ``reconstruct_ptychi``: pty-chi LSQML on the test rows of one view (:mod:`ptycho_core.recon.ptychi`).

Runs in the PtyChi environment (torch + pty-chi, no TensorFlow) and imports
no plotting library. The rule's adapter calls :func:`main` in its own process
when that process has pty-chi (the rule's conda environment), and otherwise
runs this module in the PtyChi environment's interpreter::

    python -m ptycho_core.steps.reconstruct_ptychi \
        --configfile STUDY.yaml | --config-json STUDY.json \
        --dose 1e4 --view dense --seed 0 [--method PtyChi] [--root STUDY_DIR] \
        --log job.log [--threads T]

Every path (the test split, the view and their sentinels, the
reconstruction and its sentinel) is the cell's in :mod:`ptycho_core.layout`,
below ``--root``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import numpy as np

from ptycho_core import layout
from ptycho_core.config import StudyConfig
from ptycho_core.evaluate.metrics import is_degenerate
from ptycho_core.io.datasets import load_diffraction_set
from ptycho_core.io.reconstruction import SCHEMA_VERSION, Reconstruction, load_recon, save_recon
from ptycho_core.io.sentinel import provenance
from ptycho_core.io.view_index import load_view
from ptycho_core.layout import Cell, ReconFiles, SimulatedFiles, ViewFiles
from ptycho_core.methods import Method
from ptycho_core.recon.ptychi import POSITION_TOLERANCE_PX, reconstruct_ptychi
from ptycho_core.steps.skeleton import Step, require
from ptycho_core.streams import ptychi_seed

log = logging.getLogger(__name__)


def run_reconstruct_ptychi(
    study: StudyConfig,
    *,
    cell: Cell,
    simulated: SimulatedFiles,
    view: ViewFiles,
    out: ReconFiles,
    threads: int | None = None,
) -> dict:
    """Reconstruct the cell's test region with pty-chi onto the study's frame, save, verify, write the sentinel."""
    method = Method.parse(cell.method)
    if method.spec.reconstruct_step != "reconstruct_ptychi":
        raise ValueError(
            f"method {method.value} is not reconstructed by pty-chi (its step is {method.spec.reconstruct_step})"
        )
    with Step(
        "reconstruct_ptychi",
        study,
        sentinel=out.sentinel,
        depends_on=("physics", "views", "ptychi"),
        input_sentinels=[simulated.sentinel, view.sentinel],
        extra=cell.record(study),
    ) as step:
        step.inputs += [simulated.test, view.view]
        step.outputs.append(out.recon)
        _reconstruct(study, cell, simulated, view, out, threads, step)
    log.info("%s %s: %s", method.value, cell.key, json.dumps(step.checks))
    return step.checks


def _reconstruct(
    study: StudyConfig,
    cell: Cell,
    simulated: SimulatedFiles,
    view_files: ViewFiles,
    out: ReconFiles,
    threads: int | None,
    step: Step,
) -> None:
    dose, view_name, seed = cell.photons(study), cell.view, int(cell.seed)
    test_path, view_path, out_recon = simulated.test, view_files.view, out.recon
    test = load_diffraction_set(test_path)
    view = load_view(view_path, n_test=test.n)
    require(
        test_path,
        "dose and seed",
        test.metadata["dose"] == dose and test.metadata["seed"] == seed,
        f"expected dose {dose}, seed {seed}; found dose {test.metadata['dose']}, seed {test.metadata['seed']}",
    )
    require(
        view_path,
        "view name",
        view.metadata["view"] == view_name,
        f"expected {view_name!r}, found {view.metadata['view']!r}",
    )
    frame_shape = study.frame_shape
    rows = view.test_index
    cfg = study.ptychi

    obj, covered, info = reconstruct_ptychi(test, rows, frame_shape, cfg, ptychi_seed(seed), threads=threads)

    meta = {
        "schema_version": SCHEMA_VERSION,
        "method": cell.method,
        "dose": float(dose),
        "view": view_name,
        "seed": int(seed),
        "epochs": int(cfg.epochs),
        "batch_size": int(cfg.batch_size),
        "noise_model": cfg.noise_model,
        "probe_refinement": bool(cfg.probe_refinement),
        "n_patterns": int(rows.size),
        "reconstruction_seconds": info["reconstruction_seconds"],
        "seconds_per_epoch": info["seconds_per_epoch"],
        "seconds_per_epoch_after_first": info["seconds_per_epoch_after_first"],
        "final_loss": info["final_loss"],
        "device": info["device"],
        "torch_threads": info["torch_threads"],
        "ptychi_options": info["ptychi_options"],
        "ptychi_version": info["ptychi_version"],
        "probe_scale": info["probe_scale"],
        "buffer": info["buffer"],
        "covered": (
            "pixels where the summed probe intensity of the used positions (peak 1) "
            f"exceeds {info['covered_min_illumination']}"
        ),
        "object_initialisation": "ones",
        "sources": {"test": str(test_path), "view": str(view_path)},
        "provenance": provenance(study),
    }
    save_recon(out_recon, Reconstruction(obj.astype(np.complex64), covered, meta))
    recon = load_recon(out_recon, shape=frame_shape)

    vals = recon.obj[recon.covered]
    amp = np.abs(vals)
    checks = step.checks
    checks.update(
        {
            "n_patterns": int(rows.size),
            "n_patterns_held_by_ptychi": info["n_patterns_held"],
            "frame_shape": list(frame_shape),
            "covered_pixels": int(recon.covered.sum()),
            "covered_fraction": float(recon.covered.mean()),
            "amplitude_mean": float(amp.mean()),
            "amplitude_std": float(amp.std()),
            "phase_std": float(np.angle(vals * np.exp(-1j * np.angle(vals.mean()))).std()),
            "reconstruction_seconds": info["reconstruction_seconds"],
            "seconds_per_epoch": info["seconds_per_epoch"],
            "first_epoch_seconds": info["first_epoch_seconds"],
            "seconds_per_epoch_after_first": info["seconds_per_epoch_after_first"],
            "epochs_run": info["epochs_run"],
            "initial_loss": info["initial_loss"],
            "final_loss": info["final_loss"],
            "probe_max_relative_change": info["probe_max_relative_change"],
            "forward_model_max_relative_difference_integer_positions": info["forward_model_check"][
                "integer_max_relative_difference"
            ],
            "forward_model_max_relative_difference_subpixel_positions": info["forward_model_check"][
                "subpixel_max_relative_difference"
            ],
            "positions_round_trip_max_px": info["positions_round_trip_max_px"],
            "device": info["device"],
        }
    )
    require(
        out_recon,
        "non-degenerate reconstruction",
        not is_degenerate(recon.obj, recon.covered),
        f"amplitude std {checks['amplitude_std']:.3g}, phase std {checks['phase_std']:.3g}",
    )
    require(
        out_recon,
        "every view row reconstructed",
        info["n_patterns_held"] == rows.size,
        f"pty-chi held {info['n_patterns_held']} positions, the view has {rows.size} test rows",
    )
    losses = info["loss_history"]
    require(out_recon, "finite loss", bool(losses) and np.all(np.isfinite(losses)), f"{losses}")
    require(
        out_recon,
        "loss decreased",
        len(losses) <= 1 or min(losses) < losses[0],
        f"initial {losses[0]:.6g}, best {min(losses):.6g}",
    )
    require(
        out_recon,
        "positions unchanged",
        info["positions_round_trip_max_px"] <= POSITION_TOLERANCE_PX,
        f"{info['positions_round_trip_max_px']:.3g} px",
    )
    step.extra.update(
        # the versions the reconstruction imported (library_versions records the installed distributions
        # "ptychi" and "torch" of sentinel.DEFAULT_LIBRARIES as well)
        ptychi_version=info["ptychi_version"],
        torch_version=info["torch_version"],
        loss_history=losses,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m ptycho_core.steps.reconstruct_ptychi", description=__doc__.split("\n\n")[0]
    )
    study = p.add_mutually_exclusive_group(required=True)
    study.add_argument("--config-json", help="the study configuration as a JSON file (the study_config rule's output)")
    study.add_argument("--configfile", help="the study configuration as a YAML file")
    p.add_argument("--dose", required=True, help="dose label of the cell (e.g. 1e4, as in the results paths)")
    p.add_argument("--view", required=True, help="view name (e.g. dense)")
    p.add_argument("--seed", type=int, required=True, help="replicate seed")
    p.add_argument("--method", default=Method.PTYCHI.value, help="the method (default %(default)s)")
    p.add_argument("--root", default=".", help="the study directory holding results/ (default: the working directory)")
    p.add_argument("--log", required=True, help="log file (stdout, stderr and logging go there)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The command line: log to the job's file, validate the study, reconstruct the cell
    (paths from ptycho_core.layout)."""
    args = parse_args(argv)

    from ptycho_core.config import load_study, study_from_dict
    from ptycho_core.steps.joblog import log_to_file

    log_to_file(args.log)
    if args.configfile:
        study = load_study(args.configfile)
    else:
        with open(args.config_json, encoding="utf-8") as fh:
            study = study_from_dict(json.load(fh), source=args.config_json)
    cell = layout.Cell(args.dose, args.seed, args.view, args.method)
    if cell.dose not in study.dose_labels():
        raise SystemExit(f"--dose {cell.dose}: not a dose of the study; its doses are {list(study.dose_labels())}")
    run_reconstruct_ptychi(
        study,
        cell=cell,
        simulated=layout.simulated(cell).under(args.root),
        view=layout.view(cell).under(args.root),
        out=layout.reconstruction(cell).under(args.root),
        threads=args.threads,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
