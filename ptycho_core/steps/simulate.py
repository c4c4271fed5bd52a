"""Workflow steps ``ground_truth``, ``training_object`` and ``simulate``, with verification.

Each step writes its artifacts, reloads them through the data contract,
runs its checks and only then writes the JSON sentinel. A failed check
raises :class:`ArtifactCheckError` naming the artifact and the check.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ptycho_core.config import StudyConfig
from ptycho_core.figures.simulation import simulation_preview
from ptycho_core.io.datasets import (
    SCHEMA_VERSION,
    GroundTruth,
    load_diffraction_set,
    load_ground_truth,
    save_diffraction_set,
    save_ground_truth,
)
from ptycho_core.io.sentinel import provenance, sha256_file
from ptycho_core.layout import Cell, GroundTruthFiles, SimulatedFiles
from ptycho_core.physics.objects import MIN_PHASE_STD, make_object
from ptycho_core.physics.simulate import simulate_dose
from ptycho_core.steps.skeleton import Step, require

log = logging.getLogger(__name__)

#: Measured mean counts per pattern must lie within this many Poisson
#: standard errors (sqrt(mean / n)) of the expected mean.
POISSON_SIGMAS = 5.0


def source_records(files: dict[str, str]) -> dict[str, dict]:
    """``{configuration key: {path, sha256, bytes}}`` of the files an object or probe is read from."""
    return {
        key: {"path": str(path), "sha256": sha256_file(path), "bytes": Path(path).stat().st_size}
        for key, path in files.items()
    }


def run_ground_truth(study: StudyConfig, *, cell: Cell, out: GroundTruthFiles, training: bool = False) -> dict:
    """Generate the study object of the replicate ``cell.seed`` (or, ``training``, its separate training object),
    save, verify, write the sentinel.

    Each replicate draws its own objects of the family
    (:meth:`~ptycho_core.config.ObjectConfig.for_replicate`). A family-``file``
    object's source files are the step's inputs (the sentinel records their
    sha256) and are recorded, with sha256, in the ground truth's provenance
    (``provenance.source_files``).
    """
    if training and not study.object.separate_training:
        raise ValueError("training object: the configuration has no object.train_seed or object.train_file")
    out_path = out.obj
    drawn = study.object.for_replicate(int(cell.seed))
    with Step(
        "training_object" if training else "ground_truth",
        study,
        sentinel=out.sentinel,
        depends_on=("physics",),
        extra=cell.record(study),
    ) as step:
        step.outputs.append(out_path)
        cfg = drawn.training_object() if training else drawn
        files = study.object.source_files(training=training)
        step.inputs += list(files.values())
        records = source_records(files)
        obj = make_object(drawn, training=training).astype(np.complex64)
        meta = {
            "schema_version": SCHEMA_VERSION,
            "study": study.name,
            "replicate": int(cell.seed),
            "object": asdict(cfg),
            "role": "training object" if training else "study object",
            "pixel_frame": "pixel [r, c] has coordinates x = c, y = r in object pixels",
            "provenance": {**provenance(study), **({"source_files": records} if records else {})},
        }
        save_ground_truth(out_path, GroundTruth(obj=obj, metadata=meta))
        gt = load_ground_truth(out_path)
        amp, phase = np.abs(gt.obj), np.angle(gt.obj)
        if files:  # the files did not change while they were read
            changed = [k for k, rec in source_records(files).items() if rec != records[k]]
            require(out_path, "source files unchanged", not changed, f"{changed} changed during the job")
        step.checks.update(
            shape=list(gt.obj.shape),
            amplitude_min=float(amp.min()),
            amplitude_max=float(amp.max()),
            amplitude_std=float(amp.std()),
            phase_std=float(phase.std()),
        )
        require(
            out_path,
            "amplitude in (0, 1]",
            amp.min() > 0 and amp.max() <= 1 + 1e-6,
            f"range [{amp.min()}, {amp.max()}]",
        )
        require(out_path, "phase has contrast", phase.std() > MIN_PHASE_STD, f"phase std {phase.std():.3g} rad")
        # a procedural family promises amplitude contrast when it has some; a file object may be a pure phase object
        wanted = study.object.family != "file" and study.object.amplitude_contrast > 0
        require(out_path, "amplitude has contrast", not wanted or amp.std() > 1e-3, f"amplitude std {amp.std():.3g}")
    log.info("ground truth %s written: %s", out_path, step.checks)
    return step.checks


def run_simulate(
    study: StudyConfig,
    *,
    cell: Cell,
    ground_truth: GroundTruthFiles,
    out: SimulatedFiles,
    training_object: GroundTruthFiles | None = None,
) -> dict:
    """Simulate one dose x seed (the cell's view is ignored), save both splits and a preview, verify,
    write the sentinel.

    ``training_object``: the separate training object, required exactly when
    the configuration has one (``object.train_seed`` or ``object.train_file``).
    A probe read from a file (``probe.file``) is an input of the step; its
    sha256 goes into the datasets' provenance.
    """
    if (training_object is None) == study.object.separate_training:
        raise ValueError(
            f"training object: object.train_seed is {study.object.train_seed}, training files "
            f"{study.object.source_files(training=True)}, training object file {training_object}"
        )
    objects = [ground_truth] + ([training_object] if training_object is not None else [])
    with Step(
        "simulate",
        study,
        sentinel=out.sentinel,
        depends_on=("physics",),
        input_sentinels=[o.sentinel for o in objects],
        extra=cell.record(study),
    ) as step:
        step.inputs += [o.obj for o in objects] + list(study.probe.source_files().values())
        step.outputs += [out.train, out.test, out.preview]
        _simulate(study, cell, ground_truth, training_object, out, step)
    log.info("dose %s seed %s: %s", cell.dose, cell.seed, step.checks)
    return step.checks


def _simulate(
    study: StudyConfig,
    cell: Cell,
    ground_truth: GroundTruthFiles,
    training_object: GroundTruthFiles | None,
    out: SimulatedFiles,
    step: Step,
) -> None:
    dose, seed, checks = cell.photons(study), int(cell.seed), step.checks
    out_train, out_test = out.train, out.test
    gt = load_ground_truth(ground_truth.obj)
    drawn = study.object.for_replicate(seed)
    require(
        ground_truth.obj,
        "study object of this replicate",
        gt.metadata["role"] == "study object" and gt.metadata["object"] == asdict(drawn),
        f"role {gt.metadata['role']!r}, object {gt.metadata['object']}, expected replicate {seed}'s {asdict(drawn)}",
    )
    train_gt = None
    if training_object is not None:
        training_object = training_object.obj
        train_gt = load_ground_truth(training_object)
        expected = asdict(drawn.training_object())
        require(
            training_object,
            "training object of this configuration",
            train_gt.metadata["role"] == "training object" and train_gt.metadata["object"] == expected,
            f"role {train_gt.metadata['role']!r}, object {train_gt.metadata['object']}, "
            f"expected the training object {expected}",
        )
    log.info(
        "simulating dose %g seed %d on a %s object%s",
        dose,
        seed,
        gt.obj.shape,
        "" if train_gt is None else " (training split on the training object)",
    )
    records = source_records(study.probe.source_files())
    prov = {**provenance(study), **({"source_files": records} if records else {})}
    sim = simulate_dose(study, gt.obj, dose, seed, prov, None if train_gt is None else train_gt.obj)
    save_diffraction_set(out_train, sim.train)
    save_diffraction_set(out_test, sim.test)
    train = load_diffraction_set(out_train)
    test = load_diffraction_set(out_test)

    checks.update(
        probe_fwhm_diameter_px=sim.probe_diameter,
        scan_step_px=sim.scan.step,
        n_base=int(sim.split.n_base),
        n_train=train.n,
        n_test=test.n,
        n_dropped_in_guard=int(sim.split.n_dropped),
    )
    axis = study.split.axis
    tr = train.xcoords if axis == "x" else train.ycoords
    te = test.xcoords if axis == "x" else test.ycoords
    if train_gt is None:
        require(
            out_train,
            "positions kept",
            train.n + test.n + sim.split.n_dropped == sim.split.n_base,
            "counts do not add up",
        )
        gap = float(te.min() - tr.max())
        checks["guard_gap_px"] = gap
        require(
            out_test, "guard band", gap >= sim.split.guard - 1e-9, f"gap {gap:.2f} px < guard {sim.split.guard:.2f} px"
        )
    else:  # both splits cover the whole base scan: training on the training object, test on the study object
        for name, ds, path in (("train", train, out_train), ("test", test, out_test)):
            require(
                path,
                "whole base scan",
                ds.n == sim.split.n_base,
                f"{name} holds {ds.n} of {sim.split.n_base} base positions",
            )
        require(
            out_test,
            "one scan",
            np.array_equal(train.xcoords, test.xcoords) and np.array_equal(train.ycoords, test.ycoords),
            "the test positions differ from the training positions",
        )

    # the dose is the mean expected counts per pattern over the study object's scanned positions:
    # without a training object these are exactly the two splits' patterns
    all_expected = (
        train.metadata["photons"]["all"]["expected_mean"]
        if train_gt is None
        else train.metadata["probe"]["dose_reference"]["expected_mean"]
    )
    checks["expected_counts_per_pattern"] = all_expected
    require(
        out_train,
        "dose scaling",
        abs(all_expected - dose) <= 1e-6 * dose,
        f"expected mean {all_expected} != dose {dose}",
    )
    for name, ds, path in (("train", train, out_train), ("test", test, out_test)):
        counts = ds.counts()
        residual = float(np.abs(ds.diffraction.astype(np.float64) ** 2 - counts).max())
        require(path, "integer counts", residual < 0.25 or counts.max() > 2**20, f"max |d^2 - round(d^2)| = {residual}")
        stats = ds.metadata["photons"][name]
        per_pattern = counts.sum(axis=(1, 2))
        sigma = float(np.sqrt(stats["expected_mean"] / ds.n))
        z = float((per_pattern.mean() - stats["expected_mean"]) / sigma)
        checks[f"{name}_mean_counts_per_pattern"] = float(per_pattern.mean())
        checks[f"{name}_expected_counts_per_pattern"] = stats["expected_mean"]
        checks[f"{name}_mean_counts_z"] = z
        require(
            path,
            "Poisson mean counts",
            abs(z) <= POISSON_SIGMAS,
            f"measured mean {per_pattern.mean():.4g}, expected {stats['expected_mean']:.4g}, z = {z:.2f}",
        )

    simulation_preview(out.preview, gt.obj, train, test, sim.probe_diameter, None if train_gt is None else train_gt.obj)
