"""Views and groups (docs/DESIGN.md sections 2 and 9): nesting, counts, determinism,
coverage, neighbour radius, refusals at configuration load, the view data contract.

Studies are small (N = 32, objects of 96-128 pixels, focused probe of pupil 12,
D = 9.3 px, step 0.3 D) so the file runs in a few seconds on two CPU cores.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from ptycho_core import layout
from ptycho_core.config import ConfigError, GroupingConfig, dose_label, study_from_dict
from ptycho_core.io.datasets import SCHEMA_VERSION, load_diffraction_set
from ptycho_core.io.npz import DataContractError, read_npz, write_npz
from ptycho_core.io.records import OVERLAP_METRICS_VERSION, OVERLAP_RECORD
from ptycho_core.io.sentinel import ArtifactCheckError, verify_sentinel
from ptycho_core.io.view_index import ViewIndex, load_view, save_view
from ptycho_core.physics.simulate import make_geometry
from ptycho_core.sampling.views import (
    InfeasibleViewError,
    build_split_view,
    check_views_feasible,
    select_view,
)
from ptycho_core.steps import simulate as simulate_step
from ptycho_core.steps import views as views_step
from ptycho_core.streams import group_entropy

BASE = {
    "name": "views-test",
    "N": 32,
    "doses": [1000.0],
    "seeds": [0, 1],
    "object": {"family": "grf", "size": 96, "seed": 7, "feature_size": 1.5},
    "probe": {"kind": "focused", "pupil_diameter": 12.0, "defocus_waves": 0.78},
    "scan": {"pattern": "raster", "step_fraction": 0.3, "jitter": 0.1},
    "split": {"axis": "x", "test_fraction": 0.5, "guard_diameters": 1.0},
    "views": {"dense": {"stride": 1}, "sparse": {"stride": 2}},
    "grouping": {"gridsize": 2, "K": 6, "max_radius_diameters": 1.0, "train_groups_per_position": 2},
}


def raw_study(**overrides) -> dict:
    """BASE with nested (dict) overrides merged; ``views`` is replaced, not merged."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for key, value in overrides.items():
        if isinstance(value, dict) and key != "views":
            raw[key].update(value)
        else:
            raw[key] = value
    return raw


def make_study(**overrides):
    return study_from_dict(raw_study(**overrides))


def split_arrays(geo, split: str):
    idx = getattr(geo.split, split)
    return geo.scan.x[idx], geo.scan.y[idx], geo.scan.index[idx]


def build(study, seed: int, view: str, split: str, rng=None):
    """build_split_view of one view/split/seed from the geometry alone, with the recorded stream."""
    geo = make_geometry(study, seed)
    x, y, index = split_arrays(geo, split)
    if rng is None:
        rng = np.random.default_rng(group_entropy(seed, view, split))
    sv = build_split_view(
        x,
        y,
        scan_index=index,
        grid_shape=geo.scan.grid_shape,
        stride_chain=study.stride_chain(view),
        step=geo.scan.step,
        probe_diameter=geo.probe_diameter,
        grouping=study.grouping,
        split=split,
        rng=rng,
    )
    return geo, np.column_stack([x, y]), sv


# --------------------------------------------------------------------------
# Views: deterministic, nested subsets of the base scan
# --------------------------------------------------------------------------

NESTING = [
    ("raster", [1, 2, 4], 128),
    ("fermat", [1, 2, 3], 128),
]


@pytest.mark.parametrize("pattern, strides, size", NESTING)
@pytest.mark.parametrize("seed", [0, 1])
def test_sparser_views_are_subsets_of_denser_views(pattern, strides, size, seed):
    study = make_study(
        object={"size": size}, scan={"pattern": pattern}, views={f"s{s}": {"stride": s} for s in strides}
    )
    geo = make_geometry(study, seed)
    for split in ("train", "test"):
        x, y, index = split_arrays(geo, split)
        rows = [
            select_view(x, y, index, geo.scan.grid_shape, study.stride_chain(f"s{s}"), geo.scan.step) for s in strides
        ]
        assert rows[0].size == index.size  # stride 1 keeps the whole split
        for dense, sparse in zip(rows, rows[1:]):
            assert np.unique(sparse).size == sparse.size
            assert set(sparse.tolist()) < set(dense.tolist()), f"{pattern} {split}: sparse view not a strict subset"
            assert sparse.size >= 4


@pytest.mark.parametrize("seed", [0, 1])
def test_raster_stride_2_keeps_exactly_the_even_rows_and_columns(seed):
    study = make_study()
    geo = make_geometry(study, seed)
    nx = geo.scan.grid_shape[1]
    for split in ("train", "test"):
        x, y, index = split_arrays(geo, split)
        rows = select_view(x, y, index, geo.scan.grid_shape, study.stride_chain("sparse"), geo.scan.step)
        r, c = index // nx, index % nx
        expected = np.flatnonzero((r % 2 == 0) & (c % 2 == 0))
        assert sorted(rows.tolist()) == expected.tolist()
        assert np.all(np.diff(index[rows]) > 0)  # rows come sorted by scan index
        dense = select_view(x, y, index, geo.scan.grid_shape, (1,), geo.scan.step)
        assert sorted(dense.tolist()) == list(range(index.size))


def test_fermat_thinning_keeps_the_stated_minimum_spacing():
    study = make_study(
        object={"size": 128},
        scan={"pattern": "fermat"},
        views={"a": {"stride": 1}, "b": {"stride": 2}, "c": {"stride": 3}},
    )
    geo = make_geometry(study, 0)
    for split in ("train", "test"):
        x, y, index = split_arrays(geo, split)
        for name, stride in (("b", 2), ("c", 3)):
            rows = select_view(x, y, index, None, study.stride_chain(name), geo.scan.step)
            pos = np.column_stack([x[rows], y[rows]])
            d, _ = cKDTree(pos).query(pos, k=2)
            assert d[:, 1].min() >= 0.9 * stride * geo.scan.step - 1e-9


def test_view_selection_is_deterministic():
    study = make_study(scan={"pattern": "fermat"})
    a = build(study, 0, "sparse", "train")[2]
    b = build(study, 0, "sparse", "train")[2]
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_array_equal(a.groups, b.groups)


# --------------------------------------------------------------------------
# Groups: coverage, oversampling cap, radius, the neighbour rule
# --------------------------------------------------------------------------

GEOMETRIES = [
    pytest.param("raster", "dense", id="raster-dense"),
    pytest.param("raster", "sparse", id="raster-sparse"),
    pytest.param("fermat", "dense", id="fermat-dense"),
    pytest.param("fermat", "sparse", id="fermat-sparse"),
]


@pytest.mark.parametrize("pattern, view", GEOMETRIES)
@pytest.mark.parametrize("seed", [0, 1])
def test_test_groups_cover_every_test_position_without_oversampling(pattern, view, seed):
    study = make_study(scan={"pattern": pattern})
    _, _, sv = build(study, seed, view, "test")
    rows, groups = sv.index, sv.groups
    assert groups.dtype == np.int64 and groups.shape[1] == study.grouping.C
    assert set(np.unique(groups).tolist()) == set(rows.tolist())  # every row covered, nothing else
    assert groups.shape[0] <= rows.size
    assert all(len(set(g.tolist())) == len(g) for g in groups)  # distinct members
    assert len({tuple(sorted(g.tolist())) for g in groups}) == groups.shape[0]  # no repeated group
    assert sv.n_seeds_without_group == 0


@pytest.mark.parametrize("pattern, view", GEOMETRIES)
def test_test_groups_draw_no_random_numbers(pattern, view):
    study = make_study(scan={"pattern": pattern})
    a = build(study, 0, view, "test")[2]
    b = build(study, 0, view, "test", rng=np.random.default_rng(12345))[2]
    geo = make_geometry(study, 0)
    x, y, index = split_arrays(geo, "test")
    c = build_split_view(
        x,
        y,
        scan_index=index,
        grid_shape=geo.scan.grid_shape,
        stride_chain=study.stride_chain(view),
        step=geo.scan.step,
        probe_diameter=geo.probe_diameter,
        grouping=study.grouping,
        split="test",
        rng=None,
    )
    np.testing.assert_array_equal(a.groups, b.groups)
    np.testing.assert_array_equal(a.groups, c.groups)


@pytest.mark.parametrize("cap", [1, 2, 3])
@pytest.mark.parametrize("pattern, view", GEOMETRIES)
def test_train_groups_oversample_up_to_the_cap(pattern, view, cap):
    study = make_study(scan={"pattern": pattern}, grouping={"train_groups_per_position": cap})
    _, pos, sv = build(study, 0, view, "train")
    rows, groups = sv.index, sv.groups
    assert groups.shape[1] == 4
    assert np.isin(groups, rows).all()
    by_seed = defaultdict(list)
    for g in groups.tolist():
        assert len(set(g)) == 4, f"repeated member in {g}"
        by_seed[g[0]].append(frozenset(g))
    for seed_row, sets in by_seed.items():
        assert len(sets) <= cap
        assert len(set(sets)) == len(sets), f"seed {seed_row}: the same member set drawn twice"
    assert max(len(s) for s in by_seed.values()) == cap  # oversampling happens (K = 6: 10 sets available)
    assert len(by_seed) + sv.n_seeds_without_group == rows.size  # each view row seeds groups or is counted lonely
    # members after the seed are ordered by distance from it
    d = np.linalg.norm(pos[groups] - pos[groups[:, :1]], axis=-1)
    assert np.all(np.diff(d[:, 1:], axis=1) >= -1e-12)


@pytest.mark.parametrize("radius_d", [1.0, 1.5, 2.5])
@pytest.mark.parametrize("pattern, view", GEOMETRIES)
def test_group_members_lie_within_the_neighbour_radius_and_the_K_nearest(pattern, view, radius_d):
    study = make_study(scan={"pattern": pattern}, grouping={"max_radius_diameters": radius_d})
    for split in ("train", "test"):
        geo, pos, sv = build(study, 0, view, split)
        radius = radius_d * geo.probe_diameter
        d = np.linalg.norm(pos[sv.groups] - pos[sv.groups[:, :1]], axis=-1)
        assert d.max() <= radius + 1e-9, f"{split}: member at {d.max():.3f} px > {radius:.3f} px"
        # the rule: members among the K nearest positions of the group's seed (seed included) on its own
        # sub-lattice (the view's positions, or one of a raster training split's interleaved sub-lattices)
        for lattice in sv.sublattices:
            mine = np.isin(sv.groups[:, 0], lattice)
            kth, _ = cKDTree(pos[lattice]).query(pos[sv.groups[mine, 0]], k=study.grouping.K)
            assert np.all(d[mine] <= kth[:, -1:] + 1e-9)
        assert sum(np.isin(sv.groups, lattice).all(axis=1).sum() for lattice in sv.sublattices) == len(sv.groups)


@pytest.mark.parametrize("pattern, stride", [("raster", 1), ("raster", 2), ("fermat", 2)])
def test_every_raster_view_trains_on_every_training_position(pattern, stride):
    """A raster view's training split is all its stride^2 sub-lattices, each with the view's spacing: the training set
    does not shrink with the overlap (a Fermat view's thinning has no sub-lattices, so its training split does)."""
    study = make_study(scan={"pattern": pattern}, views={"dense": {"stride": 1}, "v": {"stride": stride}})
    geo, pos, sv = build(study, 0, "v", "train")
    _, _, dense = build(study, 0, "dense", "train")
    if pattern == "raster":
        assert len(sv.sublattices) == stride**2
        assert sv.index.size == dense.index.size == geo.split.train.size
        # groups per position as in the dense view, within the edge losses of the sparser lattices
        assert abs(len(sv.groups) - len(dense.groups)) <= 0.25 * len(dense.groups)
        test = build(study, 0, "v", "test")[2]
        np.testing.assert_array_equal(sv.sublattices[0].size > 0, True)
        # the test split keeps one sub-lattice: the view's positions
        assert test.index.size < geo.split.test.size or stride == 1
    else:
        assert len(sv.sublattices) == 1 and sv.index.size < dense.index.size
    # members of a group are one view step apart at least (never a dense neighbour)
    step = geo.scan.step * stride
    d = np.linalg.norm(pos[sv.groups[:, 1:]] - pos[sv.groups[:, :1]], axis=-1)
    assert d.min() >= (0.9 if pattern == "fermat" else 1.0) * step - 2 * study.scan.jitter * geo.scan.step - 1e-9


def hand_view(points, split, K=6, cap=2, radius=1.5, rng_seed=0):
    """build_split_view on hand-placed points (no thinning), scan order = row order, D = radius."""
    pts = np.asarray(points, dtype=float)
    g = GroupingConfig(gridsize=2, K=K, max_radius_diameters=1.0, train_groups_per_position=cap)
    return build_split_view(
        pts[:, 0],
        pts[:, 1],
        scan_index=np.arange(len(pts), dtype=np.int64),
        grid_shape=None,
        stride_chain=(1,),
        step=1.0,
        probe_diameter=radius,
        grouping=g,
        split=split,
        rng=np.random.default_rng(rng_seed),
    )


CLUSTER = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]


def test_covering_groups_on_a_hand_built_square():
    sv = hand_view(CLUSTER, "test")
    assert sv.groups.shape == (1, 4) and sv.groups[0, 0] == 0 and set(sv.groups[0].tolist()) == {0, 1, 2, 3}


def test_covering_groups_cover_a_position_with_too_few_neighbours_through_a_neighbour():
    """Row 0 at (-1.2, 0) has one neighbour within 1.5 px (row 1 at 1.2 px): it joins row 1's group."""
    sv = hand_view([(-1.2, 0.0), *CLUSTER], "test")
    groups = sv.groups.tolist()
    assert len(groups) == 2
    assert groups[0][:2] == [1, 0] and set(groups[0]) == {0, 1, 2, 3}
    assert groups[1][0] == 4 and set(groups[1]) == {1, 2, 3, 4}
    pts = np.array([(-1.2, 0.0), *CLUSTER])
    d = np.linalg.norm(pts[sv.groups] - pts[sv.groups[:, :1]], axis=-1)
    assert d.max() <= 1.5


def test_an_ungroupable_test_position_is_refused_with_its_coordinates():
    with pytest.raises(InfeasibleViewError, match=r"test position 4 at \(9\.0, 9\.0\) cannot be grouped"):
        hand_view([*CLUSTER, (9.0, 9.0)], "test")


def test_train_groups_never_exceed_what_the_data_allow():
    """Each corner of a square has exactly 3 neighbours: one member set, whatever the cap."""
    sv = hand_view(CLUSTER, "train", K=4, cap=5)
    assert sv.groups.shape == (4, 4)
    assert sorted(sv.groups[:, 0].tolist()) == [0, 1, 2, 3]
    assert {frozenset(g) for g in sv.groups.tolist()} == {frozenset({0, 1, 2, 3})}


def test_train_seeds_without_a_group_are_counted():
    sv = hand_view([*CLUSTER, (9.0, 9.0)], "train", cap=1)
    assert sv.n_seeds_without_group == 1
    assert 4 in sv.index and 4 not in sv.groups
    assert sv.groups.shape == (4, 4)


def test_a_train_split_with_no_group_at_all_is_refused():
    with pytest.raises(InfeasibleViewError, match="no training group"):
        hand_view([(0, 0), (5, 0), (0, 5), (5, 5)], "train")


def test_train_groups_are_reproducible_from_the_recorded_stream():
    pts = [(x, y) for y in range(5) for x in range(5)]
    a = hand_view(pts, "train", cap=3, rng_seed=7)
    b = hand_view(pts, "train", cap=3, rng_seed=7)
    np.testing.assert_array_equal(a.groups, b.groups)


def test_gridsize_1_groups_are_the_single_view_rows():
    study = make_study(grouping={"gridsize": 1, "K": 4})
    for split in ("train", "test"):
        _, _, sv = build(study, 0, "sparse", split)
        assert sv.groups.shape == (sv.index.size, 1)
        np.testing.assert_array_equal(np.sort(sv.groups[:, 0]), np.sort(sv.index))


def test_group_streams_differ_by_seed_view_and_split():
    entropies = {tuple(group_entropy(s, v, p)) for s in (0, 1) for v in ("dense", "sparse") for p in ("train", "test")}
    assert len(entropies) == 8


# --------------------------------------------------------------------------
# Refusals: at configuration load and for degenerate input
# --------------------------------------------------------------------------


@pytest.mark.parametrize("K", [1, 2, 3])
def test_K_below_C_is_refused_at_config_load(K):
    with pytest.raises(ConfigError, match=r"grouping\.K"):
        make_study(grouping={"K": K})


def test_K_equal_to_C_is_accepted():
    assert make_study(grouping={"K": 4}).grouping.K == 4


def test_non_nested_raster_strides_are_refused_at_config_load():
    with pytest.raises(ConfigError, match=r"'views'.*stride 3 is not a multiple of stride 2"):
        make_study(views={"a": {"stride": 1}, "b": {"stride": 3}, "c": {"stride": 2}})


def test_fermat_strides_need_not_divide_one_another():
    study = make_study(scan={"pattern": "fermat"}, views={"a": {"stride": 1}, "b": {"stride": 3}, "c": {"stride": 2}})
    assert [v.stride for v in study.views] == [1, 2, 3]


def test_feasible_views_pass_the_load_check():
    check_views_feasible(make_study())
    check_views_feasible(make_study(scan={"pattern": "fermat"}))


def test_a_view_keeping_too_few_positions_is_refused_with_its_name():
    study = make_study(views={"dense": {"stride": 1}, "huge": {"stride": 64}})
    with pytest.raises(InfeasibleViewError, match=r"view 'huge' \(stride 64\), seed 0: .*keeps [0-3] of \d+ positions"):
        check_views_feasible(study)


def test_a_radius_too_small_to_group_is_refused_with_the_view_name():
    study = make_study(grouping={"max_radius_diameters": 0.2})  # 1.9 px < step 2.8 px
    with pytest.raises(InfeasibleViewError, match=r"view 'dense'.*neighbours within"):
        check_views_feasible(study)


def test_a_sparse_view_too_sparse_to_group_is_refused_with_its_name():
    study = make_study(
        object={"size": 128}, views={"dense": {"stride": 1}, "wide": {"stride": 8}}
    )  # 8 steps = 2.4 D > radius D
    with pytest.raises(InfeasibleViewError, match=r"view 'wide'"):
        check_views_feasible(study)


@pytest.mark.parametrize("D", [0.0, -9.3, float("nan")])
def test_build_split_view_refuses_a_non_positive_probe_diameter(D):
    study = make_study()
    geo = make_geometry(study, 0)
    x, y, index = split_arrays(geo, "test")
    with pytest.raises(InfeasibleViewError, match="D > 0"):
        build_split_view(
            x,
            y,
            scan_index=index,
            grid_shape=geo.scan.grid_shape,
            stride_chain=(1,),
            step=geo.scan.step,
            probe_diameter=D,
            grouping=study.grouping,
            split="test",
            rng=None,
        )


def test_build_split_view_refuses_K_below_C():
    study = make_study()
    geo = make_geometry(study, 0)
    x, y, index = split_arrays(geo, "test")
    g = GroupingConfig(gridsize=2, K=3, max_radius_diameters=1.0, train_groups_per_position=2)
    with pytest.raises(InfeasibleViewError, match="K >= C"):
        build_split_view(
            x,
            y,
            scan_index=index,
            grid_shape=geo.scan.grid_shape,
            stride_chain=(1,),
            step=geo.scan.step,
            probe_diameter=geo.probe_diameter,
            grouping=g,
            split="test",
            rng=None,
        )


@pytest.mark.parametrize("grid", [(20, 20), None])
def test_an_empty_view_is_refused(grid):
    study = make_study()
    empty = np.zeros(0)
    with pytest.raises(InfeasibleViewError, match="keeps 0 of 0 positions"):
        build_split_view(
            empty,
            empty,
            scan_index=np.zeros(0, np.int64),
            grid_shape=grid,
            stride_chain=(1,),
            step=2.8,
            probe_diameter=9.3,
            grouping=study.grouping,
            split="test",
            rng=None,
        )


def test_a_stride_that_empties_a_split_is_refused():
    study = make_study()
    geo = make_geometry(study, 0)
    x, y, index = split_arrays(geo, "test")
    with pytest.raises(InfeasibleViewError, match=r"test split: the view \(stride 64\) keeps 0 of"):
        build_split_view(
            x,
            y,
            scan_index=index,
            grid_shape=geo.scan.grid_shape,
            stride_chain=(1, 64),
            step=geo.scan.step,
            probe_diameter=geo.probe_diameter,
            grouping=study.grouping,
            split="test",
            rng=None,
        )


# --------------------------------------------------------------------------
# The views step on simulated files: counts, determinism, records
# --------------------------------------------------------------------------

DOSES = (1000.0, 100000.0)


@pytest.fixture(scope="module")
def views_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("views").resolve()
    study = make_study(doses=list(DOSES), seeds=[0])
    gt = layout.ground_truth(0).under(root)
    simulate_step.run_ground_truth(study, cell=layout.Cell.replicate(0), out=gt)
    cells = {}  # dose -> the simulated files of that dose (seed 0)
    for dose in DOSES:
        cell = layout.Cell(dose_label(dose), 0)
        cells[dose] = layout.simulated(cell).under(root)
        simulate_step.run_simulate(study, cell=cell, ground_truth=gt, out=cells[dose])

    def run(dose, view, tag=""):
        cell = layout.Cell(dose_label(dose), 0, view)
        out = layout.view(cell).under(root / tag if tag else root)  # a repeated run goes to another study directory
        metrics = views_step.run_view(study, cell=cell, simulated=cells[dose], out=out)
        return metrics, out

    results = {(dose, view): run(dose, view) for dose in DOSES for view in ("dense", "sparse")}
    results[(DOSES[0], "sparse", "again")] = run(DOSES[0], "sparse", tag="-again")
    return study, cells, results, run


def test_counts_are_taken_before_the_view_filters(views_run):
    study, cells, results, _ = views_run
    for dose in DOSES:
        train = load_diffraction_set(cells[dose].train)
        test = load_diffraction_set(cells[dose].test)
        for view in ("dense", "sparse"):
            metrics, out = results[(dose, view)]
            v = load_view(out.view, n_train=train.n, n_test=test.n)
            assert metrics["n_base_scan"] == train.metadata["scan"]["n_base"]
            for name, ds, rows in (("train", train, v.train_index), ("test", test, v.test_index)):
                m = metrics["splits"][name]
                assert m["n_before_view"] == ds.n == train.metadata["split"][f"n_{name}"]
                assert m["n_view"] == rows.size
                assert m["n_groups"] == getattr(v, f"{name}_groups").shape[0]
                if view == "dense" or name == "train":  # a raster view trains on all its sub-lattices
                    assert m["n_view"] == m["n_before_view"]
                else:
                    assert m["n_view"] < m["n_before_view"]
            assert metrics["splits"]["test"]["fraction_covered_by_groups"] == 1.0


def test_views_are_nested_and_cover_the_test_rows(views_run):
    study, cells, results, _ = views_run
    for dose in DOSES:
        dense = load_view(results[(dose, "dense")][1].view)
        sparse = load_view(results[(dose, "sparse")][1].view)
        assert set(sparse.test_index.tolist()) < set(dense.test_index.tolist())
        assert set(sparse.train_index.tolist()) == set(dense.train_index.tolist())  # every sub-lattice
        for v in (dense, sparse):
            assert set(v.test_index.tolist()) <= set(v.test_groups.ravel().tolist())
            assert v.test_groups.shape[0] <= v.test_index.size


def test_view_groups_stay_within_the_recorded_radius(views_run):
    study, cells, results, _ = views_run
    for (dose, view), (metrics, out) in ((k, v) for k, v in results.items() if len(k) == 2):
        v = load_view(out.view)
        radius = v.metadata["neighbour_radius_px"]
        assert radius == pytest.approx(study.grouping.max_radius_diameters * metrics["probe_diameter_px"], rel=1e-12)
        for split in ("train", "test"):
            ds = load_diffraction_set(getattr(cells[dose], split))
            pos = np.column_stack([ds.xcoords, ds.ycoords])
            groups = getattr(v, f"{split}_groups")
            d = np.linalg.norm(pos[groups] - pos[groups[:, :1]], axis=-1)
            assert d.max() <= radius + 1e-9
            assert metrics["splits"][split]["max_member_distance_px"] == pytest.approx(d.max(), abs=1e-12)


def test_views_are_deterministic(views_run):
    _, _, results, _ = views_run
    m1, a = results[(DOSES[0], "sparse")]
    m2, b = results[(DOSES[0], "sparse", "again")]
    assert Path(a.view).read_bytes() == Path(b.view).read_bytes()
    assert Path(a.overlap).read_bytes() == Path(b.overlap).read_bytes()
    assert m1 == m2


def test_groups_depend_only_on_seed_view_and_split_not_on_dose(views_run):
    _, _, results, _ = views_run
    for view in ("dense", "sparse"):
        a = load_view(results[(DOSES[0], view)][1].view)
        b = load_view(results[(DOSES[1], view)][1].view)
        for key in ("train_index", "test_index", "train_groups", "test_groups"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
        assert a.metadata["dose"] != b.metadata["dose"]


def test_view_groups_match_the_geometry_level_build(views_run):
    """What run_view persists is what check_views_feasible built at load: one construction."""
    study, _, results, _ = views_run
    v = load_view(results[(DOSES[0], "sparse")][1].view)
    for split in ("train", "test"):
        _, _, sv = build(study, 0, "sparse", split)
        np.testing.assert_array_equal(getattr(v, f"{split}_index"), sv.index)
        np.testing.assert_array_equal(getattr(v, f"{split}_groups"), sv.groups)


def test_view_records_K_C_the_rule_and_the_stream(views_run):
    study, cells, results, _ = views_run
    metrics, out = results[(DOSES[0], "sparse")]
    meta = load_view(out.view).metadata
    g = study.grouping
    assert (meta["C"], meta["K"], meta["gridsize"]) == (g.C, g.K, g.gridsize) == (4, 6, 2)
    assert meta["train_groups_per_position"] == g.train_groups_per_position
    assert meta["view"] == "sparse" and meta["stride"] == 2 and meta["stride_chain"] == [1, 2]
    assert meta["rng"]["train_groups"] == group_entropy(0, "sparse", "train")
    assert meta["provenance"]["config_hash"] == study.config_hash()
    assert meta["sources"]["train"]["path"] == str(cells[DOSES[0]].train)
    assert (metrics["C"], metrics["K"]) == (4, 6)
    on_disk = json.loads(Path(out.overlap).read_text())
    assert on_disk == metrics == OVERLAP_RECORD.read(out.overlap)  # the overlap record's contract holds
    assert on_disk["metrics_version"] == OVERLAP_METRICS_VERSION
    for split in ("train", "test"):
        m = on_disk["splits"][split]
        for key in ("group_overlap", "neighbour_overlap", "group_centre_overlap", "linear_overlap"):
            assert 0.0 <= m[key] <= 1.0, (split, key, m[key])
        assert m["linear_overlap"] == pytest.approx(
            1 - 2 * metrics["base_step_px"] / metrics["probe_diameter_px"], abs=1e-12
        )
        assert m["max_non_overlapping_footprints"] >= 1
    sentinel = verify_sentinel(out.sentinel)
    assert {Path(o["path"]).name for o in sentinel["outputs"]} == {"view.npz", "overlap_metrics.json", "positions.png"}
    assert sentinel["checks"]["test_fraction_covered"] == 1.0


def test_dense_view_overlaps_more_than_sparse(views_run):
    _, _, results, _ = views_run
    dense, sparse = results[(DOSES[0], "dense")][0], results[(DOSES[0], "sparse")][0]
    for split in ("train", "test"):
        for key in ("neighbour_overlap", "linear_overlap"):
            assert dense["splits"][split][key] > sparse["splits"][split][key]


def test_views_refuse_a_dose_or_seed_that_is_not_the_files(views_run, tmp_path):
    study, cells, _, _ = views_run
    simulated = cells[DOSES[0]]  # the files of dose DOSES[0], seed 0
    label = dose_label(DOSES[0])
    outs = []

    def run(cell):
        outs.append(layout.view(cell).under(tmp_path))
        views_step.run_view(study, cell=cell, simulated=simulated, out=outs[-1])

    with pytest.raises(ArtifactCheckError, match="dose and seed"):
        run(layout.Cell(dose_label(DOSES[1]), 0, "sparse"))
    with pytest.raises(ArtifactCheckError, match="dose and seed"):
        run(layout.Cell(label, 1, "sparse"))
    with pytest.raises(KeyError, match="nope"):
        run(layout.Cell(label, 0, "nope"))
    assert not any(Path(p).exists() for out in outs for p in out)


# --------------------------------------------------------------------------
# View data contract
# --------------------------------------------------------------------------

N_TRAIN, N_TEST = 10, 8


def valid_view(**changes) -> ViewIndex:
    fields = {
        "train_index": np.array([0, 2, 4, 6, 8], dtype=np.int64),
        "test_index": np.array([1, 3, 5, 7], dtype=np.int64),
        "train_groups": np.array([[0, 2, 4, 6], [2, 4, 6, 8], [8, 6, 4, 2]], dtype=np.int64),
        "test_groups": np.array([[1, 3, 5, 7]], dtype=np.int64),
        "metadata": {"schema_version": SCHEMA_VERSION, "view": "sparse", "stride": 2, "C": 4, "K": 6},
    }
    fields.update(changes)
    return ViewIndex(**fields)


def test_view_round_trip(tmp_path):
    path = tmp_path / "view.npz"
    view = valid_view()
    save_view(path, view, n_train=N_TRAIN, n_test=N_TEST)
    back = load_view(path, n_train=N_TRAIN, n_test=N_TEST)
    for key in ("train_index", "test_index", "train_groups", "test_groups"):
        np.testing.assert_array_equal(getattr(back, key), getattr(view, key))
        assert getattr(back, key).dtype == np.int64
    assert back.metadata == view.metadata
    first = path.read_bytes()
    save_view(path, view, n_train=N_TRAIN, n_test=N_TEST)
    assert path.read_bytes() == first  # deterministic bytes
    assert set(read_npz(path)) == {"train_index", "test_index", "train_groups", "test_groups", "metadata"}


BAD_VIEWS = [
    pytest.param(
        {"train_groups": np.array([[0, 2, 4, 5]], dtype=np.int64)}, {}, "train_groups", id="member-outside-view"
    ),
    pytest.param(
        {"test_groups": np.array([[1, 3, 5, 6]], dtype=np.int64)}, {}, "test_groups", id="test-member-outside-view"
    ),
    pytest.param({"test_index": np.array([1, 3, 5, 7, 2], dtype=np.int64)}, {}, "test_groups", id="uncovered-test-row"),
    pytest.param({"train_index": np.array([0, 2, 4, 6, 8], dtype=np.int32)}, {}, "train_index", id="wrong-index-dtype"),
    pytest.param(
        {"test_groups": np.array([[1, 3, 5, 7]], dtype=np.float64)}, {}, "test_groups", id="wrong-group-dtype"
    ),
    pytest.param({"train_groups": np.array([[0, 2, 4], [4, 6, 8]], dtype=np.int64)}, {}, "train_groups", id="wrong-C"),
    pytest.param({"train_index": np.array([0, 2, 4, 6, 8, 8], dtype=np.int64)}, {}, "train_index", id="repeated-row"),
    pytest.param({}, {"n_train": 8}, "train_index", id="train-row-out-of-range"),
    pytest.param({}, {"n_test": 7}, "test_index", id="test-row-out-of-range"),
    pytest.param(
        {"test_index": np.zeros(0, np.int64), "test_groups": np.zeros((0, 4), np.int64)},
        {},
        "test_index",
        id="empty-view",
    ),
    pytest.param({"train_index": np.array([-1, 0, 2, 4, 6, 8], dtype=np.int64)}, {}, "train_index", id="negative-row"),
    pytest.param(
        {"metadata": {"schema_version": SCHEMA_VERSION, "view": "s", "stride": 2, "K": 6}}, {}, "metadata", id="no-C"
    ),
]


@pytest.mark.parametrize("changes, sizes, key", BAD_VIEWS)
def test_load_view_refuses_a_broken_view_naming_file_and_key(tmp_path, changes, sizes, key):
    path = tmp_path / "broken.npz"
    write_npz(path, valid_view(**changes).to_arrays(str(path)))  # bypass save_view's checks
    kwargs = {"n_train": N_TRAIN, "n_test": N_TEST, **sizes}
    with pytest.raises(DataContractError) as err:
        load_view(path, **kwargs)
    msg = str(err.value)
    assert str(path) in msg and f"'{key}'" in msg, msg


@pytest.mark.parametrize("changes, sizes, key", BAD_VIEWS)
def test_save_view_writes_nothing_for_a_broken_view(tmp_path, changes, sizes, key):
    path = tmp_path / "view.npz"
    kwargs = {"n_train": N_TRAIN, "n_test": N_TEST, **sizes}
    with pytest.raises(DataContractError, match=f"'{key}'"):
        save_view(path, valid_view(**changes), **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_load_view_refuses_a_missing_or_extra_key(tmp_path):
    path = tmp_path / "v.npz"
    arrays = valid_view().to_arrays(str(path))
    write_npz(path, {k: v for k, v in arrays.items() if k != "test_groups"})
    with pytest.raises(DataContractError, match="missing key 'test_groups'"):
        load_view(path)
    write_npz(path, {**arrays, "extra": np.zeros(1)})
    with pytest.raises(DataContractError, match="unexpected key 'extra'"):
        load_view(path)
