"""Overlap of probe footprints, measured on concrete positions and groups.

The footprint of a position is a disc of the measured probe diameter D. Two
footprints at distance d overlap by the fraction

    f(d) = (2 / pi) * (arccos(u) - u * sqrt(1 - u^2)),   u = d / D < 1,

of one disc's area (f(0) = 1, f(D/2) = 0.3910, f(d >= D) = 0).

Metrics (all measured, never assumed), named in the overlap record
(:mod:`ptycho_core.io.records`) by what they measure:

- ``group_overlap`` (gridsize >= 2): for each member of each group, the mean
  f to the other members of its group; averaged over members and groups;
- ``neighbour_overlap``: for each unique position of the view, the mean f to
  its K - 1 nearest other positions; averaged over positions;
- ``group_centre_overlap``: the mean f between group centres (member
  centroids) closer than D, over all such pairs (``group_centre_pairs``; 0
  with a pair count of 0 if there are none).

Also reported: the linear overlap 1 - step / D, and a geometric bound on how
many non-overlapping footprints fit the scanned area (hexagonal packing).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ptycho_core.io.records import (
    GROUP_CENTRE_OVERLAP,
    GROUP_CENTRE_PAIRS,
    GROUP_OVERLAP,
    LINEAR_OVERLAP,
    NEIGHBOUR_OVERLAP,
)


def _require_diameter(D: float) -> None:
    if not D > 0:
        raise ValueError(f"probe diameter: expected D > 0, found {D}")


def disc_overlap_fraction(d: np.ndarray | float, D: float) -> np.ndarray:
    """Fractional area overlap f(d) of two discs of diameter ``D`` at distance ``d``."""
    _require_diameter(D)
    u = np.clip(np.asarray(d, dtype=np.float64) / D, 0.0, 1.0)
    return (2.0 / np.pi) * (np.arccos(u) - u * np.sqrt(1.0 - u * u))


def group_overlap(positions: np.ndarray, groups: np.ndarray, D: float) -> float | None:
    """Group overlap: mean overlap of each member with the other members of its group.

    ``positions`` (n, 2); ``groups`` (G, C) indices into positions. Returns None
    for C = 1 (single-position groups have no group overlap).
    """
    groups = np.asarray(groups)
    if groups.ndim != 2 or groups.shape[0] == 0:
        raise ValueError(f"groups: expected a non-empty (G, C) array, found shape {groups.shape}")
    C = groups.shape[1]
    if C < 2:
        return None
    p = positions[groups]  # (G, C, 2)
    d = np.linalg.norm(p[:, :, None, :] - p[:, None, :, :], axis=-1)  # (G, C, C)
    f = disc_overlap_fraction(d, D)
    per_member = (f.sum(axis=2) - 1.0) / (C - 1)  # remove f(0) = 1 of the member itself
    return float(per_member.mean())


def neighbour_overlap(positions: np.ndarray, K: int, D: float) -> float:
    """Neighbour overlap: mean overlap of each position with its K - 1 nearest other positions."""
    n = positions.shape[0]
    if n < 2 or K < 2:
        raise ValueError(f"neighbour overlap: needs at least 2 positions and K >= 2, found n={n}, K={K}")
    k = min(K, n)
    dist, _ = cKDTree(positions).query(positions, k=k)
    return float(disc_overlap_fraction(dist[:, 1:], D).mean())


def group_centre_overlap(positions: np.ndarray, groups: np.ndarray, D: float) -> tuple[float, int]:
    """Group-centre overlap: mean overlap between group centres closer than D, and the pair count."""
    _require_diameter(D)
    centres = positions[np.asarray(groups)].mean(axis=1)
    pairs = cKDTree(centres).query_pairs(r=D, output_type="ndarray")
    if pairs.size == 0:
        return 0.0, 0
    d = np.linalg.norm(centres[pairs[:, 0]] - centres[pairs[:, 1]], axis=1)
    d = d[d < D]
    if d.size == 0:
        return 0.0, 0
    return float(disc_overlap_fraction(d, D).mean()), int(d.size)


def packing_bound(positions: np.ndarray, D: float) -> dict:
    """How many non-overlapping footprints fit the scanned area (hexagonal packing).

    Area = bounding box of the footprints, (x range + D) * (y range + D);
    bound = floor(area * (pi / (2 sqrt 3)) / (pi D^2 / 4)) = floor(2 area / (sqrt(3) D^2)).
    """
    _require_diameter(D)
    span = positions.max(axis=0) - positions.min(axis=0) + D
    area = float(span[0] * span[1])
    return {
        "scanned_area_px2": area,
        "max_non_overlapping_footprints": int(np.floor(2.0 * area / (np.sqrt(3.0) * D * D))),
    }


def overlap_metrics(
    positions: np.ndarray, view_rows: np.ndarray, groups: np.ndarray, D: float, K: int, nominal_step: float
) -> dict:
    """All overlap metrics of one split of one view (keys: :data:`ptycho_core.io.records.OVERLAP_SPLIT_FIELDS`).

    ``positions`` (n, 2) are every position of the split; ``view_rows`` the rows
    in the view (the neighbour overlap and the packing bound use these); ``groups`` (G, C)
    rows of the view's groups (the group and group-centre overlaps).
    """
    view_positions = positions[view_rows]
    centre_overlap, n_pairs = group_centre_overlap(positions, groups, D)
    return {
        GROUP_OVERLAP: group_overlap(positions, groups, D),
        NEIGHBOUR_OVERLAP: neighbour_overlap(view_positions, K, D),
        GROUP_CENTRE_OVERLAP: centre_overlap,
        GROUP_CENTRE_PAIRS: n_pairs,
        LINEAR_OVERLAP: float(1.0 - nominal_step / D),
        "nominal_step_px": float(nominal_step),
        **packing_bound(view_positions, D),
    }
