"""Overlap views (subsets of the base scan) and groups of neighbouring positions.

A **view** keeps a deterministic subset of each split's positions:

- raster scans: every ``stride``-th row and column of the scan grid
  (``scan_index = row * nx + col``); nested views have strides that divide
  one another, so a sparser view is a subset of a denser one;
- Fermat spirals: greedy thinning in spiral order to a minimum spacing of
  ``0.9 * stride * step``, applied view after view along the chain of strides,
  so nesting holds by construction.

A **group** is a seed position plus C - 1 others among its K nearest positions
(seed included) within ``max_radius_diameters * D`` of the seed; members are
ordered seed first, then by distance (a test position too isolated to seed a
group is covered as the second member of a neighbour's group). Training groups oversample: up to
``train_groups_per_position`` distinct member sets per seed, drawn from a
recorded random stream. Test groups never oversample: scanning positions in
order, each position not yet covered seeds a group with its nearest
neighbours, so every test position is covered, with at most one group per
position, and no random draw.

**Training sets of equal size.** A raster view of stride s > 1 keeps one of
the s^2 interleaved sub-lattices of the base scan for its test split. Its
training split takes all s^2 of them, each grouped on its own: every group
has the view's spacing and overlap, and every view trains on the same number
of groups (one per training position and draw), so a sparser view's network
is not also a network trained on s^2 times less data. The training object is
simulated, so this costs no measurement. (A Fermat view's thinning has no
such sub-lattices: its training split is thinned like its test split.)

Indices returned here are rows of the simulated split file the positions came
from, so every later phase reads exactly these rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.spatial import cKDTree

from ptycho_core.config import GroupingConfig, StudyConfig
from ptycho_core.physics.simulate import make_geometry
from ptycho_core.streams import group_entropy

THINNING_FACTOR = 0.9


class InfeasibleViewError(ValueError):
    """A view or its groups cannot be built from the data; the message says why."""


def _greedy_thin(order: np.ndarray, pos: np.ndarray, min_spacing: float) -> np.ndarray:
    kept: list[int] = []
    for i in order:
        if not kept or np.min(np.hypot(*(pos[kept] - pos[i]).T)) >= min_spacing:
            kept.append(int(i))
    return np.asarray(kept, dtype=np.int64)


def select_view(
    xcoords: np.ndarray,
    ycoords: np.ndarray,
    scan_index: np.ndarray,
    grid_shape: tuple[int, int] | None,
    stride_chain: tuple[int, ...],
    step: float,
) -> np.ndarray:
    """Rows (sorted by scan index) of one split kept by the last view of ``stride_chain``.

    ``stride_chain`` lists the strides of the views from the densest up to
    this one (only the Fermat thinning uses the chain; raster strides nest by
    divisibility).
    """
    order = np.argsort(scan_index, kind="stable")
    stride = stride_chain[-1]
    if grid_shape is not None:
        nx = grid_shape[1]
        row, col = scan_index // nx, scan_index % nx
        keep = (row % stride == 0) & (col % stride == 0)
        return order[keep[order]]
    pos = np.column_stack([xcoords, ycoords])
    kept = order
    for s in stride_chain:
        if s > 1:
            kept = _greedy_thin(kept, pos, THINNING_FACTOR * s * step)
    return kept


def _neighbourhoods(pos: np.ndarray, K: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """K nearest positions of each position (itself first) and whether each is within radius."""
    k = min(K, pos.shape[0])
    dist, nn = cKDTree(pos).query(pos, k=k)
    dist, nn = dist.reshape(len(pos), k), nn.reshape(len(pos), k)
    return nn, dist <= radius


def oversampled_groups(
    pos: np.ndarray, g: GroupingConfig, radius: float, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Oversampled training groups (local indices) and the number of seeds that formed none."""
    n = pos.shape[0]
    if g.C == 1:
        return np.arange(n, dtype=np.int64)[:, None], 0
    nn, valid = _neighbourhoods(pos, g.K, radius)
    groups, lonely = [], 0
    for i in range(n):
        others = nn[i, 1:][valid[i, 1:]]
        if others.size < g.C - 1:
            lonely += 1
            continue
        combos = list(combinations(others.tolist(), g.C - 1))
        take = min(g.train_groups_per_position, len(combos))
        for c in rng.choice(len(combos), size=take, replace=False):
            groups.append((i, *combos[c]))
    if not groups:
        raise InfeasibleViewError(
            f"no training group: no position has {g.C - 1} neighbours within {radius:.2f} px "
            f"among its K = {g.K} nearest"
        )
    return np.asarray(groups, dtype=np.int64), lonely


def covering_groups(pos: np.ndarray, g: GroupingConfig, radius: float) -> np.ndarray:
    """Deterministic groups (local indices) covering every position at least once."""
    n = pos.shape[0]
    if g.C == 1:
        return np.arange(n, dtype=np.int64)[:, None]
    nn, valid = _neighbourhoods(pos, g.K, radius)
    covered = np.zeros(n, dtype=bool)
    groups = []
    for i in range(n):
        if covered[i]:
            continue
        others = nn[i, 1:][valid[i, 1:]]
        if others.size >= g.C - 1:
            group = (i, *others[: g.C - 1].tolist())
        else:  # cover i as a member of a neighbour's group
            group = None
            for j in nn[i, 1:][valid[i, 1:]]:
                j_others = nn[j, 1:][valid[j, 1:]]
                if i in j_others and j_others.size >= g.C - 1:
                    rest = [int(o) for o in j_others if o != i][: g.C - 2]
                    group = (int(j), i, *rest)
                    break
            if group is None:
                raise InfeasibleViewError(
                    f"test position {i} at ({pos[i, 0]:.1f}, {pos[i, 1]:.1f}) cannot be grouped: fewer than "
                    f"{g.C - 1} neighbours within {radius:.2f} px among its K = {g.K} nearest"
                )
        groups.append(group)
        covered[list(group)] = True
    return np.asarray(groups, dtype=np.int64)


@dataclass(frozen=True)
class SplitView:
    """One split of one view: rows of the simulated split file and groups of rows.

    ``sublattices``: the rows of each interleaved sub-lattice a training split was grouped on (one entry when the
    split is the view's own positions)."""

    index: np.ndarray
    groups: np.ndarray
    n_before: int
    n_seeds_without_group: int
    sublattices: tuple[np.ndarray, ...] = ()


def sublattice_rows(scan_index: np.ndarray, grid_shape: tuple[int, int], stride: int) -> list[np.ndarray]:
    """Rows (sorted by scan index) of each of the ``stride``^2 interleaved sub-lattices of a raster split, offset
    (0, 0) first: the one :func:`select_view` keeps."""
    order = np.argsort(scan_index, kind="stable")
    nx = grid_shape[1]
    row, col = scan_index // nx, scan_index % nx
    return [order[((row % stride == i) & (col % stride == j))[order]] for i in range(stride) for j in range(stride)]


def _training_groups_on_sublattices(
    xcoords: np.ndarray,
    ycoords: np.ndarray,
    lattices: list[np.ndarray],
    g: GroupingConfig,
    radius: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Oversampled groups drawn on each sub-lattice apart (rows), and the seeds that formed none."""
    groups, lonely = [], 0
    for rows in lattices:
        if rows.size < g.C:
            lonely += int(rows.size)
            continue
        pos = np.column_stack([xcoords[rows], ycoords[rows]])
        try:
            local, n_lonely = oversampled_groups(pos, g, radius, rng)
        except InfeasibleViewError:
            lonely += int(rows.size)
            continue
        groups.append(rows[local])
        lonely += n_lonely
    if not groups:
        raise InfeasibleViewError(
            f"no training group: no position has {g.C - 1} neighbours within {radius:.2f} px on its sub-lattice"
        )
    return np.concatenate(groups), lonely


def build_split_view(
    xcoords: np.ndarray,
    ycoords: np.ndarray,
    *,
    scan_index: np.ndarray,
    grid_shape: tuple[int, int] | None,
    stride_chain: tuple[int, ...],
    step: float,
    probe_diameter: float,
    grouping: GroupingConfig,
    split: str,
    rng: np.random.Generator | None,
) -> SplitView:
    """Select the view's positions of one split and group them (train: oversampled; test: covering).

    The training split of a raster view of stride > 1 is every sub-lattice of the split, each grouped apart
    (module docs: training sets of equal size)."""
    g = grouping
    if not probe_diameter > 0:
        raise InfeasibleViewError(f"probe diameter: expected D > 0, found {probe_diameter}")
    if g.K < g.C:
        raise InfeasibleViewError(f"grouping: expected K >= C = {g.C}, found K = {g.K}")
    radius = g.max_radius_diameters * probe_diameter
    stride = stride_chain[-1]
    if split == "train" and grid_shape is not None and stride > 1:
        lattices = sublattice_rows(scan_index, grid_shape, stride)
        if lattices[0].size < max(g.C, 2):
            raise InfeasibleViewError(
                f"{split} split: the view (stride {stride}) keeps {lattices[0].size} of {scan_index.size} positions "
                f"per sub-lattice; at least {max(g.C, 2)} are needed"
            )
        groups, lonely = _training_groups_on_sublattices(xcoords, ycoords, lattices, g, radius, rng)
        rows = np.argsort(scan_index, kind="stable")  # every position of the split, by scan index
        return SplitView(
            index=rows,
            groups=groups,
            n_before=int(scan_index.size),
            n_seeds_without_group=int(lonely),
            sublattices=tuple(lattices),
        )
    rows = select_view(xcoords, ycoords, scan_index, grid_shape, stride_chain, step)
    min_n = max(g.C, 2)
    if rows.size < min_n:
        raise InfeasibleViewError(
            f"{split} split: the view (stride {stride_chain[-1]}) keeps {rows.size} of {scan_index.size} positions; "
            f"at least {min_n} are needed"
        )
    pos = np.column_stack([xcoords[rows], ycoords[rows]])
    if split == "train":
        local, lonely = oversampled_groups(pos, g, radius, rng)
    else:
        local, lonely = covering_groups(pos, g, radius), 0
    return SplitView(
        index=rows,
        groups=rows[local],
        n_before=int(scan_index.size),
        n_seeds_without_group=int(lonely),
        sublattices=(rows,),
    )


def check_views_feasible(study: StudyConfig) -> None:
    """Build every view and its groups from the geometry alone; raise with the reason if any fails.

    Run at configuration load so that an infeasible view never reaches a job.
    """
    for seed in study.seeds:
        geo = make_geometry(study, seed)
        scan = geo.scan
        for view in study.views:
            chain = study.stride_chain(view.name)
            for split, idx in (("train", geo.split.train), ("test", geo.split.test)):
                try:
                    build_split_view(
                        scan.x[idx],
                        scan.y[idx],
                        scan_index=scan.index[idx],
                        grid_shape=scan.grid_shape,
                        stride_chain=chain,
                        step=scan.step,
                        probe_diameter=geo.probe_diameter,
                        grouping=study.grouping,
                        split=split,
                        rng=np.random.default_rng(group_entropy(seed, view.name, split)),
                    )
                except InfeasibleViewError as exc:
                    raise InfeasibleViewError(
                        f"view '{view.name}' (stride {view.stride}), seed {seed}: {exc}"
                    ) from None
