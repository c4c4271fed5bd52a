"""Workflow step ``views``: build one overlap view of one dose x seed, group it, measure its overlap.

Writes the view file (rows and groups referring to the simulated split files),
the overlap metrics JSON, a figure of positions, footprints and groups, and
the sentinel, after reloading and checking what it wrote.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from ptycho_core.config import StudyConfig
from ptycho_core.figures.views import view_figure
from ptycho_core.io.datasets import SCHEMA_VERSION, DiffractionSet, load_diffraction_set
from ptycho_core.io.records import OVERLAP_METRICS_VERSION, OVERLAP_RECORD
from ptycho_core.io.sentinel import provenance, sha256_file
from ptycho_core.io.view_index import ViewIndex, load_view, save_view
from ptycho_core.layout import Cell, SimulatedFiles, ViewFiles
from ptycho_core.sampling.overlap import overlap_metrics
from ptycho_core.sampling.views import build_split_view
from ptycho_core.steps.skeleton import Step, require
from ptycho_core.streams import group_entropy

log = logging.getLogger(__name__)


def _positions(ds: DiffractionSet) -> np.ndarray:
    return np.column_stack([ds.xcoords, ds.ycoords])


def _max_member_distance(pos: np.ndarray, groups: np.ndarray) -> float:
    """Largest distance from a group's first member (its seed) to any other member."""
    p = pos[groups]
    return float(np.linalg.norm(p - p[:, :1], axis=-1).max())


def run_view(study: StudyConfig, *, cell: Cell, simulated: SimulatedFiles, out: ViewFiles) -> dict:
    """Build, verify and document the cell's view of its dose x seed (the splits ``simulated``)."""
    with Step(
        "views",
        study,
        sentinel=out.sentinel,
        depends_on=("physics", "views"),
        input_sentinels=[simulated.sentinel],
        extra=cell.record(study),
    ) as step:
        step.inputs += [simulated.train, simulated.test]
        step.outputs += [out.view, out.overlap, out.figure]
        metrics = _build_view(study, cell, simulated, out, step)
    log.info("view %s dose %s seed %s: %s", cell.view, cell.dose, cell.seed, json.dumps(metrics["splits"]))
    return metrics


def _build_view(study: StudyConfig, cell: Cell, simulated: SimulatedFiles, out: ViewFiles, step: Step) -> dict:
    view_name, dose, seed, checks = cell.view, cell.photons(study), int(cell.seed), step.checks
    train_path, test_path, out_view, out_metrics, out_figure = (
        simulated.train,
        simulated.test,
        out.view,
        out.overlap,
        out.figure,
    )
    train, test = load_diffraction_set(train_path), load_diffraction_set(test_path)
    meta = train.metadata
    for name, ds in (("train", train), ("test", test)):
        if ds.metadata["seed"] != seed or ds.metadata["dose"] != dose:
            require(
                train_path if name == "train" else test_path,
                "dose and seed",
                False,
                f"expected dose {dose}, seed {seed}; found dose {ds.metadata['dose']}, seed {ds.metadata['seed']}",
            )
    D = float(meta["probe"]["fwhm_diameter_px"])
    scan_step = float(meta["scan"]["step_px"])
    grid = tuple(meta["scan"]["grid_shape"]) if meta["scan"]["grid_shape"] else None
    chain = study.stride_chain(view_name)
    g = study.grouping
    radius = g.max_radius_diameters * D

    built = {}
    for name, ds in (("train", train), ("test", test)):
        rng = np.random.default_rng(group_entropy(seed, view_name, name))
        built[name] = build_split_view(
            ds.xcoords,
            ds.ycoords,
            scan_index=ds.scan_index,
            grid_shape=grid,
            stride_chain=chain,
            step=scan_step,
            probe_diameter=D,
            grouping=g,
            split=name,
            rng=rng,
        )
    view_meta = {
        "schema_version": SCHEMA_VERSION,
        "view": view_name,
        "stride": chain[-1],
        "stride_chain": list(chain),
        "gridsize": g.gridsize,
        "C": g.C,
        "K": g.K,
        "neighbour_radius_px": radius,
        "train_groups_per_position": g.train_groups_per_position,
        # the training split grouped on each of the view's interleaved sub-lattices apart (equal training sets)
        "train_sublattices": len(built["train"].sublattices),
        "rng": {
            "train_groups": group_entropy(seed, view_name, "train"),
            "test_groups": "deterministic covering, no draw",
        },
        "dose": float(dose),
        "seed": int(seed),
        "sources": {
            "train": {"path": str(train_path), "sha256": sha256_file(train_path)},
            "test": {"path": str(test_path), "sha256": sha256_file(test_path)},
        },
        "provenance": provenance(study),
    }
    view = ViewIndex(built["train"].index, built["test"].index, built["train"].groups, built["test"].groups, view_meta)
    save_view(out_view, view, n_train=train.n, n_test=test.n)
    view = load_view(out_view, n_train=train.n, n_test=test.n)

    splits = {}
    for name, ds in (("train", train), ("test", test)):
        pos = _positions(ds)
        rows, groups = getattr(view, f"{name}_index"), getattr(view, f"{name}_groups")
        far = _max_member_distance(pos, groups)
        require(out_view, "group radius", far <= radius + 1e-9, f"{name} member at {far:.2f} px > {radius:.2f} px")
        covered = np.isin(rows, groups).mean()
        # overlap as one sub-lattice sees it (they share the view's geometry; groups never mix them)
        lattice = built[name].sublattices[0]
        own = np.isin(groups, lattice).all(axis=1)
        require(
            out_view,
            "groups within one sub-lattice",
            sum(np.isin(groups, s).all(axis=1).sum() for s in built[name].sublattices) == groups.shape[0],
            f"{name}: a group mixes the view's sub-lattices",
        )
        splits[name] = {
            "n_before_view": int(ds.n),
            "n_view": int(rows.size),
            "n_groups": int(groups.shape[0]),
            "n_seeds_without_group": int(built[name].n_seeds_without_group),
            "fraction_covered_by_groups": float(covered),
            "max_member_distance_px": far,
            **overlap_metrics(pos, lattice, groups[own], D, g.K, chain[-1] * scan_step),
        }
        checks[f"{name}_n_view"] = int(rows.size)
        checks[f"{name}_n_groups"] = int(groups.shape[0])
        checks[f"{name}_max_member_distance_px"] = far
    checks["test_fraction_covered"] = splits["test"]["fraction_covered_by_groups"]
    require(
        out_view,
        "test coverage",
        checks["test_fraction_covered"] == 1.0,
        f"{checks['test_fraction_covered']:.3f} of test rows grouped",
    )

    metrics = {
        "metrics_version": OVERLAP_METRICS_VERSION,
        "view": view_name,
        "stride": chain[-1],
        "dose": float(dose),
        "seed": int(seed),
        "probe_diameter_px": D,
        "base_step_px": scan_step,
        "gridsize": g.gridsize,
        "C": g.C,
        "K": g.K,
        "neighbour_radius_px": radius,
        "n_base_scan": int(meta["scan"]["n_base"]),
        "splits": splits,
    }
    OVERLAP_RECORD.write(out_metrics, metrics)
    view_figure(out_figure, train, test, view, metrics)
    return metrics
