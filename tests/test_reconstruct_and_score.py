"""Reconstruction and scoring steps: chunked prediction + stitching, the evaluation region, and scoring end to end.

A small case is simulated once (ground truth and simulation, the
view, N = 32, a 96 x 96 object). The networks are replaced by a fake model
that returns the ground truth's N/2 x N/2 support (amplitude, phase) of each
row it is given; the rows are recovered from the input because the fake
test set's diffraction pattern of row k is filled with the value k. The
scoring step gets reconstructions built from the ground truth with known
defects (shift, phase offset, amplitude scale, noise).
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from cells import simulate_cell

from ptycho_core import layout
from ptycho_core.config import study_from_dict
from ptycho_core.evaluate.metrics import MetricError, shift_image
from ptycho_core.evaluate.region import MIN_REGION_SIDE, evaluation_region, view_box
from ptycho_core.evaluate.rows import (
    ALIGNMENT,
    ALIGNMENT_METRICS,
    METRICS,
    PAPER_AMPLITUDE_METRICS,
    PAPER_METRICS,
    PAPER_QUANTITIES,
    QUANTITIES,
)
from ptycho_core.io.datasets import load_diffraction_set, load_ground_truth
from ptycho_core.io.reconstruction import Reconstruction, save_recon
from ptycho_core.io.records import ALIGNMENT_RECORD, FRC_ROWS, METRIC_ROWS
from ptycho_core.io.sentinel import ArtifactCheckError, verify_sentinel, write_sentinel
from ptycho_core.io.view_index import load_view
from ptycho_core.physics.forward import extract_patches
from ptycho_core.recon.gauge import apply_offsets, synchronise
from ptycho_core.recon.network import predict_and_stitch
from ptycho_core.recon.stitch import probe_window, stitch_patches
from ptycho_core.steps.score import run_score

DOSE, VIEW, SEED = 1.0e4, "dense", 0
STUDY = {
    "name": "phase-f-test",
    "N": 32,
    "doses": [DOSE],
    "seeds": [SEED],
    "object": {
        "family": "grf",
        "size": 96,
        "seed": 3,
        "feature_size": 4.0,
        "amplitude_contrast": 0.3,
        "phase_max": 1.5,
        "train_seed": 4,  # a separate training object: the test scan covers the whole study object
    },
    "probe": {"kind": "focused", "pupil_diameter": 10.0, "defocus_waves": 0.3, "apodisation": 4.0},
    "scan": {"pattern": "raster", "step_fraction": 0.25, "jitter": 0.1},
    "split": {"axis": "x", "test_fraction": 0.5, "guard_diameters": 1.0},
    "views": {VIEW: {"stride": 1}},
    "grouping": {"gridsize": 2, "K": 6, "max_radius_diameters": 1.0, "train_groups_per_position": 2},
}


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    d = tmp_path_factory.mktemp("reconstruct_and_score")
    study = study_from_dict(STUDY)
    p = simulate_cell(study, d, dose=DOSE, seed=SEED, view=VIEW, as_str=False)
    test = load_diffraction_set(p["test.npz"])
    view = load_view(p["view.npz"], n_test=test.n)
    gt = load_ground_truth(p["gt.npz"]).obj.astype(np.complex128)
    D = float(test.metadata["probe"]["fwhm_diameter_px"])
    region = evaluation_region(test, {VIEW: view.test_index}, gt.shape, D / 2)
    return SimpleNamespace(dir=d, study=study, p=p, test=test, view=view, gt=gt, D=D, region=region)


# --------------------------------------------------------------------------
# predict_and_stitch with a fake model
# --------------------------------------------------------------------------


class FakeModel:
    """Returns the ground-truth support (amplitude, phase) of each row; records what it sees."""

    def __init__(self, gt, test):
        N = test.N
        q = N // 4
        support = extract_patches(gt, test.xcoords, test.ycoords, N)[:, q : q + N // 2, q : q + N // 2]
        self.amp = np.abs(support).astype(np.float32)
        self.phase = np.angle(support).astype(np.float32)
        self.calls = []

    def predict(self, x, batch_size, verbose):
        x = np.asarray(x)
        rows = np.rint(x[:, 0, 0, :]).astype(int)  # (b, C): the row index each input pattern encodes
        assert np.all(x == rows[:, None, None, :]), "an input pattern is not one row's pattern"
        self.calls.append({"shape": x.shape, "batch_size": batch_size, "verbose": verbose, "rows": rows})
        return np.moveaxis(self.amp[rows], 1, -1), np.moveaxis(self.phase[rows], 1, -1)


def encoded(test):
    """The test set with diffraction pattern k filled with the value k (the fake model's key)."""
    code = np.broadcast_to(np.arange(test.n, dtype=np.float32)[:, None, None], test.diffraction.shape).copy()
    return dataclasses.replace(test, diffraction=code)


def groups_of(view, channels):
    return view.test_groups if channels > 1 else view.test_index[:, None]


@pytest.mark.parametrize("channels", [1, 4], ids=["Baseline", "PtychoPINN"])
def test_predict_and_stitch_reproduces_the_object_on_the_region(case, channels):
    test, view, gt = case.test, case.view, case.gt
    model = FakeModel(gt, test)
    st, n_patches, gauge = predict_and_stitch(model, channels, encoded(test), view, gt.shape, chunk=40)
    groups = groups_of(view, channels)
    assert n_patches == groups.size

    # exactly the view's rows (Baseline) or groups (PtychoPINN), in order, each member in its channel
    seen = np.concatenate([c["rows"] for c in model.calls])
    np.testing.assert_array_equal(seen, groups)
    assert all(c["shape"][1:] == (test.N, test.N, channels) for c in model.calls)

    # the same as synchronising, then stitching the support patches of those
    # rows at their positions with the probe weights
    positions = np.column_stack([test.xcoords, test.ycoords])[groups.ravel()]
    patches = (model.amp * np.exp(1j * model.phase))[groups.ravel()]
    window = probe_window(test.probe)
    units = np.repeat(np.arange(groups.shape[0]), channels)
    solution = synchronise(patches.astype(np.complex64), positions, window, units)
    direct = stitch_patches(apply_offsets(patches, solution, units), positions, gt.shape, window=window)
    # patches of one object in one gauge: nothing to correct (see tests/test_gauge.py for the tolerance)
    assert gauge == pytest.approx(solution.summary(), rel=1e-5)
    assert gauge["offset_spread_rad"] < 0.01 and gauge["consistency_residual_rad"] < 0.01
    np.testing.assert_array_equal(st.covered, direct.covered)
    np.testing.assert_allclose(st.obj, direct.obj, atol=1e-6)

    # and it is the ground truth on the evaluation region (errors: float32
    # support patches, the subpixel extraction and the stitcher's Fourier
    # shift, see tests/test_stitch.py; measured median 1.4e-3, max 6e-3)
    r = case.region
    assert st.covered[r].all()
    err = np.abs(st.obj[r] - gt[r]) / np.abs(gt[r])
    assert np.median(err) < 5e-3
    assert err.max() < 2e-2
    # every test position is covered
    rows = view.test_index
    assert st.covered[np.rint(test.ycoords[rows]).astype(int), np.rint(test.xcoords[rows]).astype(int)].all()


@pytest.mark.parametrize("channels", [1, 4], ids=["Baseline", "PtychoPINN"])
def test_predict_and_stitch_chunk_size_is_irrelevant_and_bounds_each_prediction(case, channels):
    test, view, gt = case.test, case.view, case.gt
    enc = encoded(test)
    n_groups = groups_of(view, channels).shape[0]
    results = {}
    for chunk in (7, 512):
        model = FakeModel(gt, test)
        results[chunk] = predict_and_stitch(model, channels, enc, view, gt.shape, chunk=chunk)
        sizes = [c["shape"][0] for c in model.calls]
        # memory: never more than `chunk` groups handed to predict at once
        assert max(sizes) <= chunk
        assert sum(sizes) == n_groups
        assert len(sizes) == math.ceil(n_groups / chunk)
        assert all(c["verbose"] == 0 and int(c["batch_size"]) >= 1 for c in model.calls)
    (a, na, _), (b, nb, _) = results[7], results[512]
    assert na == nb
    np.testing.assert_array_equal(a.covered, b.covered)
    np.testing.assert_allclose(a.obj, b.obj, atol=1e-6)
    np.testing.assert_allclose(a.weight, b.weight, atol=1e-6)


def test_predict_and_stitch_refuses_a_channel_count_the_groups_do_not_have(case):
    with pytest.raises(ValueError, match="channel"):
        predict_and_stitch(FakeModel(case.gt, case.test), 2, encoded(case.test), case.view, case.gt.shape)


# --------------------------------------------------------------------------
# evaluation region
# --------------------------------------------------------------------------


def _positions(x, y):
    return SimpleNamespace(xcoords=np.asarray(x, float), ycoords=np.asarray(y, float))


def test_a_views_box_is_the_bounding_box_shrunk_by_the_border():
    # rows 0-3 are the view; row 4 lies far outside and must not count
    test = _positions([10.3, 50.7, 30.0, 22.2, 90.0], [20.2, 25.0, 60.9, 40.0, 90.0])
    rows = np.array([0, 1, 2, 3])
    rs, cs = view_box(test, rows, (100, 100), border=3.5)
    # rows: y in [20.2 + 3.5, 60.9 - 3.5] = [23.7, 57.4]; cols: x in [13.8, 47.2]
    assert (rs.start, rs.stop) == (24, 58)
    assert (cs.start, cs.stop) == (14, 48)
    # every pixel centre of the region lies inside the shrunk box, and the box's
    # pixel centres all belong to the region
    assert rs.start >= 20.2 + 3.5 and rs.stop - 1 <= 60.9 - 3.5 and rs.start - 1 < 23.7 and rs.stop > 57.4
    assert cs.start >= 10.3 + 3.5 and cs.stop - 1 <= 50.7 - 3.5 and cs.start - 1 < 13.8 and cs.stop > 47.2
    assert evaluation_region(test, {"one": rows}, (100, 100), border=3.5) == (rs, cs)  # 34 x 34 px
    # integer bounds are included; the frame clips the region
    rs, cs = view_box(_positions([10, 30], [10, 30]), np.array([0, 1]), (100, 100), border=2.0)
    assert (rs.start, rs.stop, cs.start, cs.stop) == (12, 29, 12, 29)
    rs, cs = view_box(_positions([-5, 30], [10, 40]), np.array([0, 1]), (35, 25), border=1.0)
    assert (rs.start, rs.stop) == (11, 35) and (cs.start, cs.stop) == (0, 25)


def test_the_evaluation_region_is_common_to_the_views():
    """Two views of one scan: the region is the intersection of their boxes, the same for both."""
    test = _positions([10.0, 60.0, 14.0, 55.0], [12.0, 58.0, 10.0, 61.0])
    rows = {"dense": np.array([0, 1, 2, 3]), "sparse": np.array([0, 1])}
    rs, cs = evaluation_region(test, rows, (100, 100), border=2.0)
    # dense: rows 12-59, cols 12-58; sparse: rows 14-56, cols 12-58 -> rows 14-56, cols 12-58
    assert (rs.start, rs.stop, cs.start, cs.stop) == (14, 57, 12, 59)


def test_evaluation_region_of_the_simulated_view(case):
    rs, cs = case.region
    rows = case.view.test_index
    x, y = case.test.xcoords[rows], case.test.ycoords[rows]
    assert rs.start == math.ceil(y.min() + case.D / 2) and rs.stop == math.floor(y.max() - case.D / 2) + 1
    assert cs.start == math.ceil(x.min() + case.D / 2) and cs.stop == math.floor(x.max() - case.D / 2) + 1
    assert min(rs.stop - rs.start, cs.stop - cs.start) >= MIN_REGION_SIDE


@pytest.mark.parametrize(
    "x, y, border",
    [
        ([10.0, 20.0], [10.0, 60.0], 3.0),  # 10 px wide, 4 px after the border
        ([10.0, 60.0], [10.0, 20.0], 3.0),
        ([10.0, 60.0], [10.0, 60.0], 22.0),  # the border eats the whole span
        ([10.0, 36.9], [10.0, 90.0], 0.0),  # 27 px wide: MS-SSIM would run two scales
        ([10.0, 40.0], [10.0, 40.0], 0.0),  # 31 x 31 = 961 px
    ],
)
def test_evaluation_region_too_small_raises(x, y, border):
    with pytest.raises(ArtifactCheckError, match="evaluation region"):
        evaluation_region(_positions(x, y), {"v": np.array([0, 1])}, (100, 100), border)


def test_the_smallest_evaluation_region_is_accepted():
    rs, cs = evaluation_region(_positions([10.0, 37.0], [10.0, 47.0]), {"v": np.array([0, 1])}, (100, 100), 0.0)
    assert (rs.stop - rs.start, cs.stop - cs.start) == (38, 28)  # 1,064 px, 28 px wide


# --------------------------------------------------------------------------
# run_score end to end
# --------------------------------------------------------------------------

SHIFT = (1.3, -1.45)  # (dy, dx) applied to the PtychoPINN_TTR reconstruction
PINN_PHASE, PINN_SCALE = 0.7, 1.2
PTYCHI_OFFSET = -2.0


def write_recon(path, obj, method, covered=None, **meta):
    """A reconstruction at ``path`` and its sentinel (``<path>.sentinel.json``),
    as a reconstruction step leaves them."""
    metadata = {
        "schema_version": 1,
        "method": method,
        "dose": DOSE,
        "view": VIEW,
        "seed": SEED,
        "refused": [],
        **meta,
    }
    covered = np.ones(obj.shape, bool) if covered is None else covered
    save_recon(path, Reconstruction(np.asarray(obj, dtype=np.complex64), covered, metadata))
    files = layout.ReconFiles(str(path), f"{path}.sentinel.json")
    write_sentinel(
        files.sentinel,
        step="test_recon",
        inputs=[],
        outputs=[files.recon],
        checks={},
        config_hash="test",
        wall_time_s=0.0,
    )
    return files


def score_out(case, tag):
    """Where ``score(case, ..., tag)`` writes: the cell's score files below the study directory ``case.dir / tag``."""
    return layout.scores(case.p["cell"]).under(case.dir / tag)


def score(case, reconstructions, tag):
    out = score_out(case, tag)
    files = case.p["files"]
    result = run_score(
        case.study,
        cell=case.p["cell"],
        ground_truth=files["ground_truth"],
        simulated=files["simulated"],
        view=files["view"],
        region_views={VIEW: files["view"]},
        reconstructions=reconstructions,
        out=out,
    )
    return result, out


def noise(shape, seed, sigma):
    rng = np.random.default_rng(seed)
    return sigma * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


@pytest.fixture(scope="module")
def scored(case):
    gt = case.gt
    recons = {
        "PtychoPINN": PINN_SCALE * gt * np.exp(1j * PINN_PHASE) + noise(gt.shape, 10, 1e-4),
        "PtychoPINN_TTR": shift_image(gt, SHIFT) + noise(gt.shape, 13, 1e-4),
        "Baseline": gt + noise(gt.shape, 11, 0.01),
        "PtyChi": gt * np.exp(1j * PTYCHI_OFFSET),
    }
    paths = {m: write_recon(case.dir / f"{m}.recon.npz", o, m) for m, o in recons.items()}
    result, out = score(case, paths, "main")
    with open(out.metrics, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    with open(out.frc, newline="") as f:
        frc_reader = csv.reader(f)
        frc_header = next(frc_reader)
        frc_rows = list(frc_reader)
    alignment = ALIGNMENT_RECORD.read(out.alignment)  # validated by the record's contract
    assert len(METRIC_ROWS.read(out.metrics)) == len(rows) and len(FRC_ROWS.read(out.frc)) == len(frc_rows)
    values = {(m, q, k): float(v) for m, q, k, v in rows}
    return SimpleNamespace(
        methods=tuple(recons),
        result=result,
        out=out,
        header=header,
        rows=rows,
        values=values,
        frc_header=frc_header,
        frc_rows=frc_rows,
        alignment=alignment,
    )


def test_metrics_table_has_exactly_the_expected_rows(scored):
    assert scored.header == ["method", "quantity", "metric", "value"]
    methods = list(scored.methods)
    expected = {(m, q, k) for m in methods for q in QUANTITIES for k in METRICS}
    expected |= {(m, "amplitude", "amplitude_scale") for m in methods}
    expected |= {(m, q, "ms_ssim_scales") for m in methods for q in QUANTITIES}
    expected |= {(m, ALIGNMENT, k) for m in methods for k in ALIGNMENT_METRICS}
    # the secondary paper-style rows, under their own quantity names
    expected |= {(m, q, k) for m in methods for q in PAPER_QUANTITIES for k in PAPER_METRICS}
    expected |= {(m, "amplitude_paper", k) for m in methods for k in PAPER_AMPLITUDE_METRICS}
    assert not set(PAPER_QUANTITIES) & {*QUANTITIES, ALIGNMENT}
    keys = [tuple(r[:3]) for r in scored.rows]
    assert len(keys) == len(set(keys)), "repeated rows"
    assert set(keys) == expected
    assert {r[0] for r in scored.rows} == set(methods)  # canonical ids only
    for r in scored.rows:
        assert len(r) == 4 and math.isfinite(float(r[3])), r
    for m in methods:
        for q in QUANTITIES:
            n = scored.values[(m, q, "ms_ssim_scales")]
            assert n == int(n) and 1 <= n <= 5
    assert len(scored.result["rows"]) == len(expected)


def test_alignment_record_reports_the_known_shift(scored):
    """The residual shift of the displaced PtychoPINN_TTR image is reported (within 0.05 px), never applied.

    shift_image(recon, s) aligns recon onto the ground truth, so s = -SHIFT. In the known frame the displaced
    image scores what a displaced image is worth: below the undisplaced ones.
    """
    shift = scored.alignment["methods"]["PtychoPINN_TTR"]["residual_shift_dy_dx_px"]
    assert shift == pytest.approx([-SHIFT[0], -SHIFT[1]], abs=0.05)
    # the same shift is in the tidy metrics table
    assert scored.values[("PtychoPINN_TTR", ALIGNMENT, "residual_shift_dy_px")] == pytest.approx(shift[0])
    assert scored.values[("PtychoPINN_TTR", ALIGNMENT, "residual_shift_px")] == pytest.approx(math.hypot(*shift))
    for m in ("PtychoPINN", "Baseline", "PtyChi"):
        assert scored.alignment["methods"][m]["residual_shift_dy_dx_px"] == pytest.approx([0.0, 0.0], abs=0.05)
    v = scored.values
    assert v[("PtychoPINN_TTR", "phase", "ssim")] < v[("Baseline", "phase", "ssim")] - 0.01


def test_amplitude_is_compared_raw_and_its_scale_reported(case, scored):
    rec = scored.alignment["methods"]["PtychoPINN"]
    # the scale reported is the least-squares s in |gt| ~ s |recon| (metrics.amplitude_scale):
    # for an amplitude scaled by 1.2 it is 1 / 1.2, in the record and in the table
    assert rec["amplitude_scale_reported_not_applied"] == pytest.approx(1 / PINN_SCALE, rel=2e-3)
    assert scored.values[("PtychoPINN", "amplitude", "amplitude_scale")] == pytest.approx(1 / PINN_SCALE, rel=2e-3)
    assert rec["phase_offset_rad"] == pytest.approx(-PINN_PHASE, abs=1e-2)
    # raw comparison: the MAE is that of a 20 % too bright image, not of a rescaled one
    ref = np.abs(case.gt[case.region])
    raw_mae = (PINN_SCALE - 1) * ref.mean()
    mae = scored.values[("PtychoPINN", "amplitude", "mae")]
    assert mae == pytest.approx(raw_mae, rel=0.05)
    assert mae > 10 * scored.values[("Baseline", "amplitude", "mae")]
    assert scored.values[("PtychoPINN", "amplitude", "rmse")] == pytest.approx(
        raw_mae * np.sqrt(np.mean(ref**2)) / ref.mean(), rel=0.05
    )
    # its phase, once the offset is removed, is close to the truth
    assert scored.values[("PtychoPINN", "phase", "ssim")] > 0.99
    # the paper-style amplitude row applies the ratio of means (1 / 1.2, recorded), to itself only:
    # there the 20 % scale is gone, while the strict row above keeps it
    v = scored.values
    assert v[("PtychoPINN", "amplitude_paper", "mean_ratio")] == pytest.approx(1 / PINN_SCALE, rel=2e-3)
    assert v[("PtychoPINN", "amplitude_paper", "ssim")] > 0.99 > v[("PtychoPINN", "amplitude", "ssim")]
    assert v[("PtychoPINN", "amplitude_paper", "psnr")] > v[("PtychoPINN", "amplitude", "psnr")] + 10
    assert v[("PtychoPINN", "phase_paper", "ssim")] > 0.99


def test_a_global_phase_offset_does_not_change_the_metrics(scored):
    v = scored.values
    rec = scored.alignment["methods"]["PtyChi"]
    assert rec["phase_offset_rad"] == pytest.approx(-PTYCHI_OFFSET, abs=1e-6)
    assert v[("PtyChi", "phase", "mae")] < 1e-6
    assert v[("PtyChi", "phase", "rmse")] < 1e-6
    assert v[("PtyChi", "amplitude", "mae")] < 1e-6
    for q in QUANTITIES:
        assert v[("PtyChi", q, "ssim")] > 1 - 1e-9
        assert v[("PtyChi", q, "ms_ssim")] > 1 - 1e-9
        assert v[("PtyChi", q, "psnr")] > 100
        assert v[("PtyChi", q, "frc50")] == 0.5
    assert v[("PtyChi", "amplitude", "amplitude_scale")] == pytest.approx(1.0, abs=1e-6)
    # Baseline: small noise, unit scale, near-perfect but not perfect
    assert v[("Baseline", "amplitude", "amplitude_scale")] == pytest.approx(1.0, abs=5e-3)
    assert 0 < v[("Baseline", "phase", "mae")] < 0.02


def test_the_same_image_with_a_phase_offset_scores_identically(case):
    """PtyChi = Baseline's noisy image times exp(i c): every metric equal, only the offset differs."""
    obj = case.gt + noise(case.gt.shape, 12, 0.02)
    paths = {
        "Baseline": write_recon(case.dir / "offset-a.npz", obj, "Baseline"),
        "PtyChi": write_recon(case.dir / "offset-b.npz", obj * np.exp(1.3j), "PtyChi"),
    }
    result, out = score(case, paths, "offset")
    by = {}
    for m, q, k, v in result["rows"]:
        by.setdefault(m, {})[(q, k)] = v
    assert by["Baseline"].keys() == by["PtyChi"].keys()
    for key, value in by["Baseline"].items():
        if key == (ALIGNMENT, "phase_offset_rad"):
            continue  # the one number that differs (checked below)
        assert by["PtyChi"][key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    a = result["alignment"]
    assert a["PtyChi"]["residual_shift_dy_dx_px"] == a["Baseline"]["residual_shift_dy_dx_px"]
    assert a["PtyChi"]["phase_offset_rad"] - a["Baseline"]["phase_offset_rad"] == pytest.approx(-1.3, abs=1e-5)
    verify_sentinel(out.sentinel)


def test_frc_table_figure_and_sentinel(case, scored):
    assert scored.frc_header == ["method", "quantity", "frequency_cycles_per_pixel", "frc"]
    pairs = {(r[0], r[1]) for r in scored.frc_rows}
    assert pairs == {(m, q) for m in scored.methods for q in QUANTITIES}
    for m, q, f, c in scored.frc_rows:
        assert 0 < float(f) <= 0.5 and math.isfinite(float(c))
    # one curve per method and quantity, of equal length
    counts = {p: sum(1 for r in scored.frc_rows if (r[0], r[1]) == p) for p in pairs}
    assert len(set(counts.values())) == 1 and next(iter(counts.values())) >= 4

    png = Path(scored.out.figure)
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    record = verify_sentinel(scored.out.sentinel)
    listed = {o["path"] for o in record["outputs"]}
    assert {scored.out.metrics, scored.out.frc, scored.out.alignment, scored.out.figure} <= listed
    assert record["checks"]["n_metric_rows"] == len(scored.rows)
    assert record["checks"]["methods"] == sorted(scored.methods)
    a = scored.alignment
    assert [a["region_rows"], a["region_cols"]] == [
        [case.region[0].start, case.region[0].stop],
        [case.region[1].start, case.region[1].stop],
    ]
    assert a["border_px"] == pytest.approx(case.D / 2)


# --------------------------------------------------------------------------
# run_score failures
# --------------------------------------------------------------------------


def _good(case, name="good.npz", method="PtychoPINN"):
    return write_recon(case.dir / name, case.gt + noise(case.gt.shape, 13, 0.01), method)


def test_a_constant_reconstruction_fails_naming_the_method(case):
    flat = np.full(case.gt.shape, 0.8 * np.exp(0.3j))
    paths = {"PtychoPINN": _good(case), "Baseline": write_recon(case.dir / "flat.npz", flat, "Baseline")}
    with pytest.raises(MetricError, match="Baseline") as exc:
        score(case, paths, "flat")
    assert "flat.npz" in str(exc.value) and "degenerate" in str(exc.value)
    assert not Path(score_out(case, "flat").sentinel).exists()
    assert not Path(score_out(case, "flat").metrics).exists()


def test_uncovered_region_pixels_fail_naming_the_file(case):
    covered = np.ones(case.gt.shape, bool)
    rs, cs = case.region
    covered[rs.start + 3, cs.start + 2] = False
    obj = np.where(covered, case.gt, 0)
    paths = {"PtyChi": write_recon(case.dir / "holes.npz", obj, "PtyChi", covered=covered)}
    with pytest.raises(ArtifactCheckError, match="holes.npz") as exc:
        score(case, paths, "holes")
    assert "region covered" in str(exc.value) and "PtyChi" in str(exc.value)
    assert not Path(score_out(case, "holes").sentinel).exists()


def test_a_reconstruction_of_another_method_is_refused(case):
    paths = {"PtyChi": _good(case, "mislabelled.npz", method="Baseline")}
    with pytest.raises(ArtifactCheckError, match="mislabelled.npz.*method"):
        score(case, paths, "mislabelled")
    assert not Path(score_out(case, "mislabelled").sentinel).exists()


def test_a_reconstruction_with_values_outside_covered_is_refused(case):
    from ptycho_core.io.npz import DataContractError

    covered = np.ones(case.gt.shape, bool)
    covered[0, 0] = False  # the object is not zero there
    with pytest.raises(
        DataContractError, match=r"outside.npz: key 'object': expected 0 outside covered, found 1 non-zero"
    ):
        write_recon(case.dir / "outside.npz", case.gt, "PtyChi", covered=covered)
    assert not (case.dir / "outside.npz").exists()


@pytest.mark.parametrize("method_id", ["Pty-chi (pty-chi)", "ptychi", "PINN"])
def test_an_unknown_method_id_is_refused(case, method_id):
    paths = {method_id: _good(case, "unknown.npz", method="PtyChi")}
    with pytest.raises(ValueError, match="method"):
        score(case, paths, "unknown")
    assert not Path(score_out(case, "unknown").sentinel).exists()
