"""Overlap metrics of the views step (docs/DESIGN.md sections 2 and 9) on hand-built configurations.

Every expected value is computed here from the analytic disc-overlap formula
(or, for the formula itself, from an independent pixel count), never taken
from the code under test. Tolerances: 1e-12 where both sides evaluate the
same closed form in float64; the pixel count's tolerance is stated with it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptycho_core.io.records import OVERLAP_SPLIT_FIELDS
from ptycho_core.sampling.overlap import (
    disc_overlap_fraction,
    group_centre_overlap,
    group_overlap,
    neighbour_overlap,
    overlap_metrics,
    packing_bound,
)

EXACT = 1e-12


def f_ref(d: float, D: float) -> float:
    """Lens area of two discs of diameter D at distance d over one disc's area (textbook formula)."""
    if d >= D:
        return 0.0
    r = D / 2
    lens = 2 * r * r * math.acos(d / (2 * r)) - (d / 2) * math.sqrt(4 * r * r - d * d)
    return lens / (math.pi * r * r)


def square(centre=(0.0, 0.0), side=1.0) -> np.ndarray:
    cx, cy = centre
    h = side / 2
    return np.array([[cx - h, cy - h], [cx + h, cy - h], [cx - h, cy + h], [cx + h, cy + h]])


# --------------------------------------------------------------------------
# f(d)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("D", [1.0, 9.3262, 40.0])
def test_f_of_zero_is_one(D):
    assert float(disc_overlap_fraction(0.0, D)) == pytest.approx(1.0, abs=EXACT)


@pytest.mark.parametrize("D", [1.0, 9.3262, 40.0])
def test_f_of_half_diameter_is_0_3910(D):
    value = float(disc_overlap_fraction(D / 2, D))
    assert round(value, 4) == 0.3910
    # closed form: (2/pi)(pi/3 - sqrt(3)/4)
    assert value == pytest.approx((2 / math.pi) * (math.pi / 3 - math.sqrt(3) / 4), abs=EXACT)


@pytest.mark.parametrize("ratio", [1.0, 1.0 + 1e-9, 1.5, 2.0, 100.0])
def test_f_is_zero_at_and_beyond_the_diameter(ratio):
    D = 9.3262
    assert float(disc_overlap_fraction(ratio * D, D)) == 0.0


def test_f_matches_the_lens_area_formula():
    D = 7.0
    for d in np.linspace(0, 1.2 * D, 25):
        assert float(disc_overlap_fraction(d, D)) == pytest.approx(f_ref(d, D), abs=EXACT)


def test_f_matches_a_pixel_count_of_the_lens():
    """Independent check: count grid points inside both discs (grid step D/1000).

    The relative error of a pixel-counted area scales like perimeter * h / area,
    about 4 h / D = 4e-3 for one disc; 5e-3 absolute on f covers it.
    """
    D = 1.0
    h = D / 1000
    x = np.arange(-D, 2 * D, h) + h / 2
    y = np.arange(-D / 2, D / 2, h) + h / 2
    X, Y = np.meshgrid(x, y, sparse=True)
    in_a = X * X + Y * Y <= (D / 2) ** 2
    disc_area = in_a.sum()
    for d in (0.1, 0.3, 0.5, 0.8):
        in_b = (X - d) ** 2 + Y * Y <= (D / 2) ** 2
        measured = (in_a & in_b).sum() / disc_area
        assert float(disc_overlap_fraction(d, D)) == pytest.approx(measured, abs=5e-3)


def test_f_is_strictly_decreasing_on_zero_to_D():
    D = 5.0
    d = np.linspace(0, D, 401)
    f = disc_overlap_fraction(d, D)
    assert np.all(np.diff(f) < 0)
    assert np.all((f >= 0) & (f <= 1))


def test_f_is_vectorised_and_keeps_the_shape():
    D = 4.0
    d = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 10.0]])
    f = disc_overlap_fraction(d, D)
    assert isinstance(f, np.ndarray) and f.shape == d.shape and f.dtype == np.float64
    expected = np.array([[f_ref(v, D) for v in row] for row in d])
    np.testing.assert_allclose(f, expected, rtol=0, atol=EXACT)
    # integer input is accepted and gives the same values
    np.testing.assert_allclose(disc_overlap_fraction(np.array([0, 2, 4]), D), [1.0, f_ref(2, D), 0.0], atol=EXACT)


@pytest.mark.parametrize("D", [0.0, -1.0, -1e-9, float("nan")])
def test_f_refuses_a_non_positive_diameter(D):
    with pytest.raises(ValueError, match="D > 0"):
        disc_overlap_fraction(1.0, D)


@pytest.mark.parametrize("D", [0.0, -3.0])
def test_group_and_neighbour_overlaps_refuse_a_non_positive_diameter(D):
    pos = square(side=1.0)
    with pytest.raises(ValueError, match="D > 0"):
        group_overlap(pos, np.array([[0, 1, 2, 3]]), D)
    with pytest.raises(ValueError, match="D > 0"):
        neighbour_overlap(pos, 3, D)


@pytest.mark.parametrize("C", [1, 4])
@pytest.mark.parametrize("D", [0.0, -3.0])
def test_overlap_metrics_refuse_a_non_positive_diameter(D, C):
    pos = square(side=1.0)
    groups = np.arange(4).reshape(-1, C)
    with pytest.raises(ValueError, match="D > 0"):
        overlap_metrics(pos, np.arange(4), groups, D, K=3, nominal_step=1.0)


@pytest.mark.parametrize("D", [0.0, -3.0])
def test_group_centre_overlap_refuses_a_non_positive_diameter(D):
    """The group-centre overlap on its own must refuse D <= 0 like the group and neighbour overlaps
    (it returned (0.0, 0))."""
    pos = np.vstack([square((0, 0), 1.0), square((0.5, 0), 1.0)])
    with pytest.raises(ValueError, match=r"D > 0|diameter"):
        group_centre_overlap(pos, np.array([[0, 1, 2, 3], [4, 5, 6, 7]]), D)


@pytest.mark.parametrize("D", [0.0, -3.0])
def test_packing_bound_refuses_a_non_positive_diameter(D):
    """The packing bound must refuse D <= 0 clearly (it raised OverflowError for 0, returned 0 for D < 0)."""
    pos = np.array([[0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match=r"D > 0|diameter"):
        packing_bound(pos, D)


# --------------------------------------------------------------------------
# Group overlap
# --------------------------------------------------------------------------


@pytest.mark.parametrize("side", [1.0, 3.0, 6.0])
def test_group_overlap_square_group(side):
    """Each member of a square has two neighbours at s and one at s*sqrt(2)."""
    D = 8.0
    pos = square(side=side)
    expected = (2 * f_ref(side, D) + f_ref(side * math.sqrt(2), D)) / 3
    assert group_overlap(pos, np.array([[0, 1, 2, 3]]), D) == pytest.approx(expected, abs=EXACT)
    # member order inside the group does not matter
    assert group_overlap(pos, np.array([[3, 1, 0, 2]]), D) == pytest.approx(expected, abs=EXACT)


def test_group_overlap_averages_over_groups():
    D = 8.0
    pos = np.vstack([square((0, 0), 2.0), square((100, 0), 5.0)])
    groups = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    a = (2 * f_ref(2.0, D) + f_ref(2.0 * math.sqrt(2), D)) / 3
    b = (2 * f_ref(5.0, D) + f_ref(5.0 * math.sqrt(2), D)) / 3
    assert group_overlap(pos, groups, D) == pytest.approx((a + b) / 2, abs=EXACT)


def test_group_overlap_uses_only_group_members():
    """A position not in any group (however close) changes nothing."""
    D = 8.0
    pos = np.vstack([square(side=2.0), [[0.0, 0.0]]])
    expected = (2 * f_ref(2.0, D) + f_ref(2.0 * math.sqrt(2), D)) / 3
    assert group_overlap(pos, np.array([[0, 1, 2, 3]]), D) == pytest.approx(expected, abs=EXACT)


def test_group_overlap_pair_and_far_members():
    D = 10.0
    pos = np.array([[0.0, 0.0], [5.0, 0.0], [50.0, 0.0], [75.0, 0.0]])
    assert group_overlap(pos, np.array([[0, 1]]), D) == pytest.approx(f_ref(5.0, D), abs=EXACT)
    assert group_overlap(pos, np.array([[2, 3]]), D) == 0.0


def test_group_overlap_is_none_for_single_position_groups():
    pos = square(side=1.0)
    assert group_overlap(pos, np.arange(4)[:, None], 5.0) is None


@pytest.mark.parametrize("groups", [np.zeros((0, 4), dtype=np.int64), np.array([0, 1, 2, 3])])
def test_group_overlap_refuses_empty_or_flat_groups(groups):
    with pytest.raises(ValueError, match="groups"):
        group_overlap(square(), groups, 5.0)


# --------------------------------------------------------------------------
# Neighbour overlap (K - 1 nearest other positions, K counts the position itself)
# --------------------------------------------------------------------------


def ring(M: int, R: float) -> np.ndarray:
    t = 2 * np.pi * np.arange(M) / M
    return np.column_stack([R * np.cos(t), R * np.sin(t)])


@pytest.mark.parametrize("K, D", [(3, 4.0), (5, 4.0), (5, 2.5)])
def test_neighbour_overlap_on_a_ring_where_every_position_is_alike(K, D):
    M, R = 24, 5.0
    chord = lambda k: 2 * R * math.sin(math.pi * k / M)  # noqa: E731
    # K - 1 others: the closest (K - 1) / 2 chords on either side
    expected = np.mean([f_ref(chord(k), D) for k in range(1, (K - 1) // 2 + 1)])
    assert neighbour_overlap(ring(M, R), K, D) == pytest.approx(expected, abs=EXACT)


def test_neighbour_overlap_on_a_3x3_grid_counts_edges_and_corners():
    """3x3 grid of step s, K = 5 (4 nearest others), D = 3 s.

    corner: s, s, s*sqrt2, 2s; edge: s, s, s, s*sqrt2; centre: s, s, s, s.
    """
    s, D = 1.0, 3.0
    g = np.arange(3) * s
    pos = np.array([(x, y) for y in g for x in g])
    fs, fd, f2 = f_ref(s, D), f_ref(s * math.sqrt(2), D), f_ref(2 * s, D)
    corner = (2 * fs + fd + f2) / 4
    edge = (3 * fs + fd) / 4
    centre = fs
    expected = (4 * corner + 4 * edge + centre) / 9
    assert neighbour_overlap(pos, 5, D) == pytest.approx(expected, abs=EXACT)
    # K = 3: every point has two others at s
    assert neighbour_overlap(pos, 3, D) == pytest.approx(fs, abs=EXACT)


def test_neighbour_overlap_interior_of_a_large_grid():
    """Interior points of a large grid have 4 neighbours at step: their mean is f(step).

    Evaluate on the grid with K = 5 and compare the whole-grid value with the
    exact edge/corner bookkeeping of an n x n grid (D < 2 s so only s and s*sqrt2 count).
    """
    n, s, D = 12, 1.0, 1.8
    g = np.arange(n) * s
    pos = np.array([(x, y) for y in g for x in g])
    fs, fd = f_ref(s, D), f_ref(s * math.sqrt(2), D)
    corner = (2 * fs + fd + 0.0) / 4  # 4th neighbour at 2s: f = 0 since 2s > D
    edge = (3 * fs + fd) / 4
    interior = fs
    n_corner, n_edge, n_int = 4, 4 * (n - 2), (n - 2) ** 2
    expected = (n_corner * corner + n_edge * edge + n_int * interior) / n**2
    assert neighbour_overlap(pos, 5, D) == pytest.approx(expected, abs=EXACT)


def test_neighbour_overlap_with_K_above_n_uses_every_other_position():
    D = 10.0
    pos = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    expected = np.mean(
        [(f_ref(3, D) + f_ref(4, D)) / 2, (f_ref(3, D) + f_ref(5, D)) / 2, (f_ref(4, D) + f_ref(5, D)) / 2]
    )
    assert neighbour_overlap(pos, 6, D) == pytest.approx(expected, abs=EXACT)


@pytest.mark.parametrize("n, K", [(1, 4), (0, 4), (5, 1)])
def test_neighbour_overlap_refuses_degenerate_input(n, K):
    with pytest.raises(ValueError, match="neighbour overlap"):
        neighbour_overlap(ring(n, 3.0) if n else np.zeros((0, 2)), K, 5.0)


# --------------------------------------------------------------------------
# Group-centre overlap
# --------------------------------------------------------------------------


def test_group_centre_overlap_two_groups_closer_than_D():
    D, dist = 10.0, 4.0
    pos = np.vstack([square((0, 0), 3.0), square((dist, 0), 1.0)])  # centroids (0,0) and (4,0)
    value, pairs = group_centre_overlap(pos, np.array([[0, 1, 2, 3], [4, 5, 6, 7]]), D)
    assert pairs == 1
    assert value == pytest.approx(f_ref(dist, D), abs=EXACT)


def test_group_centre_overlap_groups_farther_than_D():
    D = 10.0
    pos = np.vstack([square((0, 0), 3.0), square((10.5, 0), 3.0)])
    assert group_centre_overlap(pos, np.array([[0, 1, 2, 3], [4, 5, 6, 7]]), D) == (0.0, 0)


def test_group_centre_overlap_centres_exactly_D_apart_are_not_closer_than_D():
    D = 10.0
    pos = np.vstack([square((0, 0), 2.0), square((10, 0), 2.0)])
    assert group_centre_overlap(pos, np.array([[0, 1, 2, 3], [4, 5, 6, 7]]), D) == (0.0, 0)


def test_group_centre_overlap_averages_only_pairs_closer_than_D():
    """Centres at x = 0, 3, 8, 30 with D = 10: pairs (0,3), (0,8), (3,8) count."""
    D = 10.0
    xs = [0.0, 3.0, 8.0, 30.0]
    pos = np.vstack([square((x, 0), 2.0) for x in xs])
    groups = np.arange(16).reshape(4, 4)
    value, pairs = group_centre_overlap(pos, groups, D)
    assert pairs == 3
    assert value == pytest.approx((f_ref(3, D) + f_ref(8, D) + f_ref(5, D)) / 3, abs=EXACT)


def test_group_centre_overlap_centre_is_the_member_centroid():
    """Group A: members at (0,0),(6,0),(0,6),(6,6) -> centre (3,3); group B a single spot at (3,8)."""
    D = 10.0
    pos = np.array([[0, 0], [6, 0], [0, 6], [6, 6], [3, 8], [3, 8], [3, 8], [3, 8]], dtype=float)
    value, pairs = group_centre_overlap(pos, np.array([[0, 1, 2, 3], [4, 5, 6, 7]]), D)
    assert pairs == 1 and value == pytest.approx(f_ref(5.0, D), abs=EXACT)


# --------------------------------------------------------------------------
# Packing bound, linear overlap, the bundle
# --------------------------------------------------------------------------


def test_packing_bound_on_a_known_box():
    """Positions spanning 10 x 20 px with D = 4: footprint box 14 x 24 = 336 px^2.

    Hexagonal packing density pi / (2 sqrt 3); disc area 4 pi:
    336 * (pi / (2 sqrt3)) / (4 pi) = 336 / (8 sqrt3) = 24.25 -> 24.
    """
    pos = np.array([[5.0, 7.0], [15.0, 7.0], [5.0, 27.0], [15.0, 27.0], [10.0, 17.0]])
    out = packing_bound(pos, 4.0)
    assert out["scanned_area_px2"] == pytest.approx(336.0, abs=EXACT)
    assert out["max_non_overlapping_footprints"] == 24
    assert isinstance(out["max_non_overlapping_footprints"], int)


def test_packing_bound_of_a_single_position_is_one_disc_box():
    """One position: box D x D, bound floor(2 / sqrt3) = 1."""
    out = packing_bound(np.array([[3.0, 4.0]]), 5.0)
    assert out["scanned_area_px2"] == pytest.approx(25.0, abs=EXACT)
    assert out["max_non_overlapping_footprints"] == 1


def test_overlap_metrics_bundle_on_a_hand_built_split():
    """A 3x3 grid split; the view keeps 4 of 9 rows; one group of the 4; K = 3."""
    s, D = 2.0, 5.0
    g = np.arange(3) * s
    positions = np.array([(x, y) for y in g for x in g])  # row r*3 + c
    view_rows = np.array([0, 1, 3, 4])  # the square of side s at the origin
    groups = np.array([[0, 1, 3, 4]])
    out = overlap_metrics(positions, view_rows, groups, D, K=3, nominal_step=1.5)
    square_value = (2 * f_ref(s, D) + f_ref(s * math.sqrt(2), D)) / 3
    assert set(out) == set(OVERLAP_SPLIT_FIELDS) - {
        "n_before_view",
        "n_view",
        "n_groups",
        "n_seeds_without_group",
        "fraction_covered_by_groups",
        "max_member_distance_px",
    }
    assert out["group_overlap"] == pytest.approx(square_value, abs=EXACT)
    assert out["neighbour_overlap"] == pytest.approx(f_ref(s, D), abs=EXACT)  # only view rows count
    assert (out["group_centre_overlap"], out["group_centre_pairs"]) == (0.0, 0)
    assert out["linear_overlap"] == pytest.approx(1 - 1.5 / D, abs=EXACT)
    assert out["nominal_step_px"] == 1.5
    assert out["scanned_area_px2"] == pytest.approx((s + D) ** 2, abs=EXACT)  # box of the view, not the split
    assert out["max_non_overlapping_footprints"] == math.floor(2 * (s + D) ** 2 / (math.sqrt(3) * D * D))


@pytest.mark.parametrize(
    "step, D, expected", [(3.0, 10.0, 0.7), (2.5, 10.0, 0.75), (10.0, 10.0, 0.0), (15.0, 10.0, -0.5)]
)
def test_linear_overlap_is_one_minus_step_over_D(step, D, expected):
    pos = square(side=1.0)
    out = overlap_metrics(pos, np.arange(4), np.array([[0, 1, 2, 3]]), D, K=2, nominal_step=step)
    assert out["linear_overlap"] == pytest.approx(expected, abs=EXACT)
