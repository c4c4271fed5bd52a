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

**Stopping** (``stopping``; :mod:`ptycho_core.recon.ptychi` has the rule).
The replicate's free pixels (the same mask PtychoPINN_TTR holds out) are
left out of the LSQML fit; LSQML stops where their mean Poisson deviance
stops improving, ``ptychi.epochs`` being only a cap, and the best check's
object is saved. Their noise is independent of the fitted pixels', so their
deviance measures how well the object predicts counts it was not fitted to,
without any ground truth. The reconstruction's metadata and the sentinel
record the rule and its outcome (``stopped_by_free_deviance``,
``best_epoch``, ``epochs_run``, ``free_deviance_best``, the history). Two
checks can fail the job: the saved object's free deviance, recomputed from
the reconstruction file, must equal the recorded best (to 1e-6 relative:
the saved object is the best check's), and the best must be lower than the
free deviance of the object of ones LSQML starts from (a refinement that
never improved on the free pixels failed, as PtychoPINN_TTR's must improve
on its starting network). A best at the first check passes, with a warning
and ``improved_after_first_check`` false: at the lowest doses LSQML starts
to fit the noise within the first ``check_every`` epochs.
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
from ptycho_core.recon.ptychi import POSITION_TOLERANCE_PX, object_deviances, reconstruct_ptychi
from ptycho_core.sampling.free_pixels import free_pixel_mask
from ptycho_core.steps.skeleton import Step, require
from ptycho_core.streams import ptychi_seed

#: Largest relative difference between the free deviance recomputed from the saved reconstruction and the
#: recorded best (the saved object is the best check's, so they differ only by rounding).
FREE_DEVIANCE_RTOL = 1e-6

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
        depends_on=("physics", "views", "ptychi", "stopping"),
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

    stopping = study.stopping
    obj, covered, info = reconstruct_ptychi(
        test, rows, frame_shape, cfg, ptychi_seed(seed), threads=threads, stopping=stopping, free_pixel_seed=seed
    )
    stop = info["stopping"]
    history = info["free_deviance_history"]

    meta = {
        "schema_version": SCHEMA_VERSION,
        "method": cell.method,
        "dose": float(dose),
        "view": view_name,
        "seed": int(seed),
        "epochs": int(cfg.epochs),  # the cap
        "epochs_run": info["epochs_run"],
        "best_epoch": info["best_epoch"],
        "converged": info["converged"],
        "stopped_by_free_deviance": info["stopped_by_free_deviance"],
        "free_deviance_best": info["free_deviance_best"],
        "free_deviance_history": history,
        "stopping": stop,
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
        "refused": [],  # no outcome check of PtyChi refuses a run (improved_over_start is recorded)
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
            "epoch_cap": int(cfg.epochs),
            "stopped_by_free_deviance": info["stopped_by_free_deviance"],
            "converged": info["converged"],
            "best_epoch": info["best_epoch"],
            "reference_epoch": info["reference_epoch"],
            "free_deviance_reference": info["free_deviance_reference"],
            "n_free_pixels": stop["n_free_pixels"],
            "free_pixel_fraction": stop["free_pixel_fraction"],
            "free_deviance_initial": info["free_deviance_initial"],
            "free_deviance_first": info["free_deviance_first"],
            "free_deviance_best": info["free_deviance_best"],
            "free_deviance_last": history[-1]["free_deviance"],
            "fitted_deviance_at_best": info["fitted_deviance_at_best"],
            "free_deviance_checks": len(history),
            "free_deviance_seconds": info["free_deviance_seconds"],
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
    # the saved object is the best check's: its free deviance, recomputed from the file with the same free pixels
    # and our forward model, is the recorded best
    free = free_pixel_mask(test.N, stopping.free_pixel_fraction, seed)
    require(
        out_recon,
        "free pixels",
        int(free.sum()) == stop["n_free_pixels"],
        f"{int(free.sum())} free pixels here, {stop['n_free_pixels']} held out of the fit",
    )
    probe = test.probe if not cfg.probe_refinement else info["probe_best"]  # the file holds the object only
    free_saved, _ = object_deviances(
        recon.obj.astype(np.complex128),
        probe,
        test.xcoords[rows].astype(np.float64),
        test.ycoords[rows].astype(np.float64),
        test.counts()[rows],
        free,
    )
    best = info["free_deviance_best"]
    checks["free_deviance_of_saved_object"] = free_saved
    require(
        out_recon,
        "saved object is the best check's",
        np.isfinite(free_saved) and abs(free_saved - best) <= FREE_DEVIANCE_RTOL * abs(best),
        f"free deviance {free_saved:.9g} recomputed from the file, {best:.9g} recorded at epoch {info['best_epoch']}",
    )
    free_history = [h["free_deviance"] for h in history]
    require(out_recon, "finite free deviance", bool(np.all(np.isfinite(free_history))), f"{history}")
    # At the lowest doses the free pixels hold almost no photons (default study, 3 photons per pattern, mid and
    # sparse views: best 0.00309 against 0.00307 for the object of ones LSQML starts from): the free deviance cannot
    # tell a reconstruction from the flat start. The best check's object is kept and the sentinel says so; the
    # score, not this step, judges it (a failed job would drop the cell from the study).
    initial = info["free_deviance_initial"]
    checks["improved_over_start"] = bool(best < initial)
    if not checks["improved_over_start"]:
        log.warning(
            "the free deviance never fell below the starting object's (best %.6g at epoch %d, ones %.6g): the free "
            "pixels hold too few photons to judge this run; the best check's object is kept",
            best,
            info["best_epoch"],
            initial,
        )
    checks["improved_after_first_check"] = bool(info["reference_epoch"] > history[0]["epoch"])
    if not checks["improved_after_first_check"]:
        log.warning(
            "no later check improved on the first one (epoch %d, free deviance %.6g; starting object %.6g) beyond "
            "the free pixels' noise: the object kept (epoch %d) is one they cannot tell from it",
            history[0]["epoch"],
            info["free_deviance_first"],
            initial,
            info["best_epoch"],
        )
    if not info["converged"]:
        log.warning(
            "pty-chi reached the cap of %d epochs before the free deviance stopped improving (best at epoch %d)",
            cfg.epochs,
            info["best_epoch"],
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
        free_deviance_history=history,
        stopping=stop,
        pixel_mask_check=info["pixel_mask_check"],
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
