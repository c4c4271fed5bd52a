"""Phase D step: build one overlap view of one dose x seed, group it, measure its overlap.

Writes the view file (rows and groups referring to the phase C split files),
the overlap metrics JSON, a figure of positions, footprints and groups, and
the sentinel, after reloading and checking what it wrote.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from ptycho_core.config import StudyConfig
from ptycho_core.io.datasets import SCHEMA_VERSION, DiffractionSet, load_diffraction_set
from ptycho_core.io.npz import atomic_write_text
from ptycho_core.sampling.overlap import METRICS_VERSION, disc_overlap_fraction, overlap_metrics
from ptycho_core.steps.simulate import provenance
from ptycho_core.figures.preview import save_figure
from ptycho_core.io.sentinel import ArtifactCheckError, sha256_file, verify_sentinel, write_sentinel
from ptycho_core.io.view_index import ViewIndex, load_view, save_view
from ptycho_core.sampling.views import build_split_view, group_entropy

log = logging.getLogger(__name__)


def stride_chain(study: StudyConfig, view_name: str) -> tuple[int, ...]:
    """Strides of the views from the densest up to ``view_name`` (views are sorted by stride)."""
    chain = []
    for v in study.views:
        chain.append(v.stride)
        if v.name == view_name:
            return tuple(chain)
    raise KeyError(f"view {view_name!r} is not defined; views: {[v.name for v in study.views]}")


def _positions(ds: DiffractionSet) -> np.ndarray:
    return np.column_stack([ds.xcoords, ds.ycoords])


def _max_member_distance(pos: np.ndarray, groups: np.ndarray) -> float:
    """Largest distance from a group's first member (its seed) to any other member."""
    p = pos[groups]
    return float(np.linalg.norm(p - p[:, :1], axis=-1).max())


def view_figure(path: str | Path, train: DiffractionSet, test: DiffractionSet, view: ViewIndex, metrics: dict) -> None:
    """Positions of the view with probe footprints (FWHM discs) and the test groups drawn."""
    D = metrics["probe_diameter_px"]
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, name, ds in ((axes[0], "train", train), (axes[1], "test", test)):
        pos = _positions(ds)
        rows = getattr(view, f"{name}_index")
        groups = getattr(view, f"{name}_groups")
        ax.scatter(pos[:, 0], pos[:, 1], s=2, c="lightgray", label=f"split, not in view ({ds.n - rows.size})")
        discs = [Circle((x, y), D / 2) for x, y in pos[rows]]
        ax.add_collection(PatchCollection(discs, facecolor="tab:blue", edgecolor="tab:blue", alpha=0.06, lw=0.3))
        ax.scatter(pos[rows, 0], pos[rows, 1], s=4, c="tab:blue", label=f"view ({rows.size})")
        if groups.shape[1] > 1:
            shown = groups if name == "test" else groups[:: max(1, groups.shape[0] // 200)]
            segs = [[pos[g[0]], pos[m]] for g in shown for m in g[1:]]
            ax.add_collection(LineCollection(segs, colors="tab:red", lw=0.6, alpha=0.7, label=f"groups ({groups.shape[0]}{'' if name == 'test' else ', some shown'})"))
        m = metrics["splits"][name]
        m1 = "n/a" if m["metric_1_group"] is None else f"{m['metric_1_group']:.3f}"
        ax.set_title(
            f"{name}: linear {m['linear_overlap']:.2f}, metric 1 {m1}, metric 2 {m['metric_2_neighbours']:.3f}, "
            f"metric 3 {m['metric_3_group_centres']:.3f}",
            fontsize=8,
        )
        ax.set_aspect("equal")
        ax.invert_yaxis()
        ax.set_xlabel("x (object px)")
        ax.set_ylabel("y (object px)")
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(
        f"view {metrics['view']} (stride {metrics['stride']}), dose {metrics['dose']:.3g}, seed {metrics['seed']}: "
        f"probe D = {D:.1f} px, f(D/2) = {float(disc_overlap_fraction(D / 2, D)):.3f}",
        fontsize=10,
    )
    save_figure(fig, path)


def run_view(
    study: StudyConfig,
    view_name: str,
    dose: float,
    seed: int,
    train_path: str | Path,
    test_path: str | Path,
    phase_c_sentinel: str | Path,
    out_view: str | Path,
    out_metrics: str | Path,
    out_figure: str | Path,
    sentinel_path: str | Path,
) -> dict:
    """Build, verify and document one view of one dose x seed."""
    t0 = time.perf_counter()
    verify_sentinel(phase_c_sentinel)
    train, test = load_diffraction_set(train_path), load_diffraction_set(test_path)
    meta = train.metadata
    for name, ds in (("train", train), ("test", test)):
        if ds.metadata["seed"] != seed or ds.metadata["dose"] != dose:
            raise ArtifactCheckError(
                f"{train_path if name == 'train' else test_path}: check 'dose and seed' failed: "
                f"expected dose {dose}, seed {seed}; found dose {ds.metadata['dose']}, seed {ds.metadata['seed']}"
            )
    D = float(meta["probe"]["fwhm_diameter_px"])
    step = float(meta["scan"]["step_px"])
    grid = tuple(meta["scan"]["grid_shape"]) if meta["scan"]["grid_shape"] else None
    chain = stride_chain(study, view_name)
    g = study.grouping
    radius = g.max_radius_diameters * D

    built = {}
    for name, ds in (("train", train), ("test", test)):
        rng = np.random.default_rng(group_entropy(seed, view_name, name))
        built[name] = build_split_view(ds.xcoords, ds.ycoords, ds.scan_index, grid, chain, step, D, g, name, rng)
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
        "rng": {"train_groups": group_entropy(seed, view_name, "train"), "test_groups": "deterministic covering, no draw"},
        "dose": float(dose),
        "seed": int(seed),
        "sources": {"train": {"path": str(train_path), "sha256": sha256_file(train_path)}, "test": {"path": str(test_path), "sha256": sha256_file(test_path)}},
        "provenance": provenance(study),
    }
    view = ViewIndex(built["train"].index, built["test"].index, built["train"].groups, built["test"].groups, view_meta)
    save_view(out_view, view, n_train=train.n, n_test=test.n)
    view = load_view(out_view, n_train=train.n, n_test=test.n)

    splits = {}
    checks: dict = {}
    for name, ds in (("train", train), ("test", test)):
        pos = _positions(ds)
        rows, groups = getattr(view, f"{name}_index"), getattr(view, f"{name}_groups")
        far = _max_member_distance(pos, groups)
        if far > radius + 1e-9:
            raise ArtifactCheckError(f"{out_view}: check 'group radius' failed: {name} member at {far:.2f} px > {radius:.2f} px")
        covered = np.isin(rows, groups).mean()
        splits[name] = {
            "n_before_view": int(ds.n),
            "n_view": int(rows.size),
            "n_groups": int(groups.shape[0]),
            "n_seeds_without_group": int(built[name].n_seeds_without_group),
            "fraction_covered_by_groups": float(covered),
            "max_member_distance_px": far,
            **overlap_metrics(pos, rows, groups, D, g.K, chain[-1] * step),
        }
        checks[f"{name}_n_view"] = int(rows.size)
        checks[f"{name}_n_groups"] = int(groups.shape[0])
        checks[f"{name}_max_member_distance_px"] = far
    checks["test_fraction_covered"] = splits["test"]["fraction_covered_by_groups"]
    if checks["test_fraction_covered"] != 1.0:
        raise ArtifactCheckError(f"{out_view}: check 'test coverage' failed: {checks['test_fraction_covered']:.3f} of test rows grouped")

    metrics = {
        "metrics_version": METRICS_VERSION,
        "view": view_name,
        "stride": chain[-1],
        "dose": float(dose),
        "seed": int(seed),
        "probe_diameter_px": D,
        "base_step_px": step,
        "gridsize": g.gridsize,
        "C": g.C,
        "K": g.K,
        "neighbour_radius_px": radius,
        "n_base_scan": int(meta["scan"]["n_base"]),
        "splits": splits,
    }
    atomic_write_text(out_metrics, json.dumps(metrics, indent=2, sort_keys=True, allow_nan=False) + "\n")
    view_figure(out_figure, train, test, view, metrics)
    write_sentinel(
        sentinel_path,
        step="phase_d.views",
        inputs=[str(train_path), str(test_path), str(phase_c_sentinel)],
        outputs=[str(out_view), str(out_metrics), str(out_figure)],
        checks=checks,
        config_hash=study.config_hash(),
        wall_time_s=time.perf_counter() - t0,
        extra={"view": view_name, "dose": float(dose), "seed": int(seed)},
    )
    log.info("view %s dose %g seed %d: %s", view_name, dose, seed, json.dumps(splits))
    return metrics
