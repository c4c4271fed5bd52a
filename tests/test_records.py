"""The JSON and CSV record contracts (:mod:`ptycho_core.io.records`): round trips and refusals naming file and key.

Every record written by its writer reads back equal through its reader; a
missing key, an extra key and a value of the wrong type are refused, on
writing and on reading, with a :class:`DataContractError` naming the file
and the key. The example records below are also used by other tests that
need a valid record (``from test_records import overlap_record``).
"""

from __future__ import annotations

import copy
import json

import pytest

from ptycho_core.io import records
from ptycho_core.io.npz import DataContractError
from ptycho_core.io.records import (
    ALIGNMENT_RECORD,
    FRC_ROWS,
    HEADLINE_COLUMNS,
    HEADLINE_TABLE,
    INVENTORY,
    METRIC_ROWS,
    OVERLAP_METRICS_VERSION,
    OVERLAP_RECORD,
    OVERLAP_TABLE,
    OVERLAP_TABLE_COLUMNS,
    RUNTIME_TABLE,
    STUDY_METRIC_ROWS,
    SUMMARY_DOCUMENT,
    SUMMARY_VERSION,
)


def overlap_split(**changes) -> dict:
    """One split of a valid overlap record (values of a small dense view)."""
    split = {
        "n_before_view": 400,
        "n_view": 400,
        "n_groups": 100,
        "n_seeds_without_group": 0,
        "fraction_covered_by_groups": 1.0,
        "max_member_distance_px": 2.1,
        "group_overlap": 0.61,
        "neighbour_overlap": 0.58,
        "group_centre_overlap": 0.22,
        "group_centre_pairs": 180,
        "linear_overlap": 0.8,
        "nominal_step_px": 1.05,
        "scanned_area_px2": 1600.0,
        "max_non_overlapping_footprints": 66,
    }
    return {**split, **changes}


def overlap_record(
    *, probe_diameter_px: float = 5.3, train: dict | None = None, test: dict | None = None, **changes
) -> dict:
    """A valid ``overlap_metrics.json`` record; ``train`` / ``test`` change entries of a split."""
    doc = {
        "metrics_version": OVERLAP_METRICS_VERSION,
        "view": "dense",
        "stride": 1,
        "dose": 1000.0,
        "seed": 0,
        "probe_diameter_px": probe_diameter_px,
        "base_step_px": 1.05,
        "gridsize": 2,
        "C": 4,
        "K": 6,
        "neighbour_radius_px": 5.3,
        "n_base_scan": 1444,
        "splits": {"train": overlap_split(**(train or {})), "test": overlap_split(**(test or {}))},
    }
    return {**doc, **changes}


def alignment_record() -> dict:
    method = {
        "residual_shift_dy_dx_px": [0.25, -0.5],
        "phase_offset_rad": 0.1,
        "phase_ramp": None,
        "amplitude_scale_reported_not_applied": 0.98,
        "region_pixels": 900,
        "refused": [],
    }
    return {
        "region_rows": [10, 40],
        "region_cols": [5, 35],
        "border_px": 2.65,
        "policy": "subpixel registration",
        "methods": {
            "PtyChi": method,
            "PtychoPINN": {**method, "phase_ramp": {"offset": 0.1, "slope_y": 0.0, "slope_x": 1e-3}},
        },
    }


def summary_document() -> dict:
    """A valid ``summary.json``: two methods, one cell, two seeds (so the verdict and the deltas have intervals)."""
    import pandas as pd

    from ptycho_core.evaluate.tables import deltas, report_document, summarise
    from ptycho_core.evaluate.verdicts import evidence

    rows = [
        (dose, "dense", seed, method, "phase", metric, base + 0.01 * seed + (0.02 if metric == "mae" else 0.0))
        for dose in (10.0, 100.0)
        for seed in (0, 1)
        for method, base in (("PtychoPINN", 0.7 if dose == 10.0 else 0.9), ("PtyChi", 0.5))
        for metric in ("ms_ssim", "mae")
    ]
    table = pd.DataFrame(rows, columns=["dose", "view", "seed", "method", "quantity", "metric", "value"])
    summary = summarise(table, fwhm_diameter_px=5.3)
    return report_document(summary, deltas(table, metrics=("ms_ssim",), quantities=("phase",)), **evidence(summary))


#: runtime.csv's header (version 2).
RUNTIME_HEADER = ",".join(RUNTIME_TABLE.fields)

CSV_EXAMPLES = {
    "metric rows": (
        METRIC_ROWS,
        [("PtyChi", "phase", "ms_ssim", 0.912345678901), ("PtyChi", "alignment", "shift_px", 0.1 + 0.2)],
    ),
    "study metric rows": (
        STUDY_METRIC_ROWS,
        [
            (3.0, "dense", 0, "PtyChi", "phase", "psnr", 21.5),
            (3000.0, "sparse", 2, "Baseline", "amplitude", "mae", 1e-05),
        ],
    ),
    "frc rows": (FRC_ROWS, [("PtyChi", "phase", 0.03125, 0.99), ("PtyChi", "phase", 0.5, -0.01)]),
    "overlap table": (
        OVERLAP_TABLE,
        [
            ("dense", 1000.0, 0, "train", 400, 400, 100, 0.8, 0.61, 0.58, 0.22, 180),
            ("dense", 1000.0, 0, "test", 40, 40, 40, 0.8, None, 0.58, 0.0, 0),
        ],
    ),
    "headline table": (
        HEADLINE_TABLE,
        [
            dict(
                zip(
                    HEADLINE_COLUMNS,
                    [3.0, 0.137, "dense", 0.8, "PtyChi", 1, 0, 0.7, 21.0, 0.3, 0.2, 0.8, 25.0, 0.05, None, None],
                )
            ),
            dict(
                zip(
                    HEADLINE_COLUMNS,
                    [30.0, None, "mid", None, "Baseline", 3, 1, 0.9, 25.0, 0.2, 0.25, 0.85, 26.0, 0.04, 0.01, 0.02],
                )
            ),
        ],
    ),
    "runtime table": (
        RUNTIME_TABLE,
        [
            ("study", None, None, 7, 3, 42.5, 42.5 / 7, 42.5 / 3, 100.0, 512.25),
            ("rule", "score", None, 6, 3, 30.0, 5.0, 10.0, 30.0 / 42.5 * 100, None),
            ("rule_method", "train", "PtychoPINN", 1, 3, 12.5, 12.5, 12.5 / 3, 12.5 / 42.5 * 100, 512.25),
        ],
    ),
    "inventory": (
        INVENTORY,
        [("results/score/metrics.csv", 1234, "ab" * 32, "yes"), ("logs/old.log", 0, "0" * 64, "no")],
    ),
}


# --------------------------------------------------------------------------
# CSV records
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CSV_EXAMPLES))
def test_csv_record_round_trip(tmp_path, name):
    record, rows = CSV_EXAMPLES[name]
    path = tmp_path / "table.csv"
    record.write(path, rows)
    text = path.read_text()
    assert text.splitlines()[0].split(",") == list(record.fields)
    back = record.read(path)
    as_dicts = [dict(r) if isinstance(r, dict) else dict(zip(record.fields, r)) for r in rows]
    if all(c.fmt is None for c in record.columns):
        assert back == as_dicts  # repr: exact
    else:
        for got, want in zip(back, as_dicts, strict=True):
            for c in record.columns:
                if want[c.name] is None or c.type is not float:
                    assert got[c.name] == want[c.name]
                else:
                    assert got[c.name] == pytest.approx(want[c.name], rel=1e-3)
    assert record.format(back, source="again") == text  # written again: the same bytes


def test_csv_floats_are_written_as_repr_and_ints_as_ints():
    text = STUDY_METRIC_ROWS.format([(3.0, "dense", 0, "PtyChi", "phase", "psnr", 0.1 + 0.2)])
    assert text == "dose,view,seed,method,quantity,metric,value\n3.0,dense,0,PtyChi,phase,psnr,0.30000000000000004\n"
    assert (
        RUNTIME_TABLE.format([("rule", "score", None, 2, 1, 1.0, 0.5, 1.0, 100.0, None)])
        == RUNTIME_HEADER + "\nrule,score,,2,1,1.0,0.5,1.0,100.0,\n"
    )


def test_csv_missing_column_is_refused_naming_file_and_key(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("method,quantity,value\nPtyChi,phase,0.5\n")
    with pytest.raises(
        DataContractError, match=r"metrics.csv: missing key 'metric' \(expected keys: method, quantity, metric, value\)"
    ):
        METRIC_ROWS.read(path)
    with pytest.raises(DataContractError, match=r"out.csv: missing key 'metric' \(line 2\)"):
        METRIC_ROWS.write(tmp_path / "out.csv", [{"method": "PtyChi", "quantity": "phase", "value": 0.5}])
    assert not (tmp_path / "out.csv").exists()


def test_csv_extra_column_is_refused_naming_file_and_key(tmp_path):
    path = tmp_path / "runtime.csv"
    path.write_text(RUNTIME_HEADER + ",cpu\nrule,score,,1,1,1.0,1.0,1.0,100.0,,3\n")
    with pytest.raises(DataContractError, match=r"runtime.csv: unexpected key 'cpu'"):
        RUNTIME_TABLE.read(path)
    with pytest.raises(DataContractError, match=r"out.csv: unexpected key 'cpu' \(line 2\)"):
        RUNTIME_TABLE.write(
            tmp_path / "out.csv",
            [{**dict(zip(RUNTIME_TABLE.fields, ("rule", "score", None, 1, 1, 1.0, 1.0, 1.0, 100.0, None))), "cpu": 3}],
        )
    with pytest.raises(DataContractError, match=r"runtime.csv: line 2: expected 10 values"):
        RUNTIME_TABLE.parse(RUNTIME_HEADER + "\nrule,score,,1,1,1.0,1.0,1.0,100.0,,3\n", "runtime.csv")


@pytest.mark.parametrize(
    "record, text, key, found",
    [
        (
            METRIC_ROWS,
            "method,quantity,metric,value\nPtyChi,phase,psnr,abc\n",
            "value",
            "'abc' (line 2: method=PtyChi, quantity=phase, metric=psnr)",
        ),
        (METRIC_ROWS, "method,quantity,metric,value\nPtyChi,phase,psnr,nan\n", "value", "'nan'"),
        (METRIC_ROWS, "method,quantity,metric,value\nPtyChi,phase,psnr,\n", "value", "''"),
        (METRIC_ROWS, "method,quantity,metric,value\n,phase,psnr,1.0\n", "method", "''"),
        (
            STUDY_METRIC_ROWS,
            "dose,view,seed,method,quantity,metric,value\n3.0,dense,0.5,PtyChi,phase,psnr,1.0\n",
            "seed",
            "'0.5'",
        ),
        (INVENTORY, "path,bytes,sha256,in_study\na.csv,10,abc,yes\n", "sha256", "'abc'"),
        (INVENTORY, "path,bytes,sha256,in_study\na.csv,10," + "0" * 64 + ",maybe\n", "in_study", "'maybe'"),
        (RUNTIME_TABLE, RUNTIME_HEADER + "\nrule,score,,one,1,1.0,1.0,1.0,100.0,\n", "jobs", "'one'"),
        (RUNTIME_TABLE, RUNTIME_HEADER + "\ntotal,,,1,1,1.0,1.0,1.0,100.0,\n", "scope", "'total'"),
    ],
)
def test_csv_wrong_type_is_refused_naming_file_and_key(record, text, key, found):
    with pytest.raises(DataContractError) as exc:
        record.parse(text, "some/table.csv")
    msg = str(exc.value)
    assert msg.startswith(f"some/table.csv: key '{key}': expected ") and found in msg, msg


@pytest.mark.parametrize(
    "record, row, key",
    [
        (METRIC_ROWS, ("PtyChi", "phase", "psnr", float("nan")), "value"),
        (METRIC_ROWS, ("PtyChi", "phase", "psnr", "0.5"), "value"),
        (STUDY_METRIC_ROWS, (3.0, "dense", 0.5, "PtyChi", "phase", "psnr", 1.0), "seed"),
        (STUDY_METRIC_ROWS, (3.0, "dense", True, "PtyChi", "phase", "psnr", 1.0), "seed"),
        (RUNTIME_TABLE, ("rule", "score", None, 1, 1, 1.0, None, 1.0, 100.0, None), "mean_wall_s_per_job"),
    ],
)
def test_csv_writer_refuses_a_wrong_type_naming_file_and_key(tmp_path, record, row, key):
    with pytest.raises(DataContractError, match=rf"t.csv: key '{key}': expected "):
        record.write(tmp_path / "t.csv", [row])
    assert not (tmp_path / "t.csv").exists()


def test_csv_header_out_of_order_or_empty_file_is_refused():
    with pytest.raises(DataContractError, match="columns out of order"):
        FRC_ROWS.parse("quantity,method,frequency_cycles_per_pixel,frc\n", "frc.csv")
    with pytest.raises(DataContractError, match=r"frc.csv: empty FRC table: no header"):
        FRC_ROWS.parse("", "frc.csv")
    with pytest.raises(DataContractError, match=r"nowhere.csv: FRC table file not found"):
        FRC_ROWS.read("nowhere.csv")


# --------------------------------------------------------------------------
# JSON records
# --------------------------------------------------------------------------

JSON_EXAMPLES = {
    "alignment": (ALIGNMENT_RECORD, alignment_record),
    "overlap metrics": (OVERLAP_RECORD, overlap_record),
    "report summary": (SUMMARY_DOCUMENT, summary_document),
}


@pytest.mark.parametrize("name", sorted(JSON_EXAMPLES))
def test_json_record_round_trip(tmp_path, name):
    record, example = JSON_EXAMPLES[name]
    doc = example()
    path = tmp_path / "record.json"
    record.write(path, doc)
    assert record.read(path) == doc
    assert path.read_text() == json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"


@pytest.mark.parametrize(
    "record, example, edit, message",
    [
        # missing keys, top level and nested
        (OVERLAP_RECORD, overlap_record, lambda d: d.pop("probe_diameter_px"), "missing key 'probe_diameter_px'"),
        (
            OVERLAP_RECORD,
            overlap_record,
            lambda d: d["splits"]["test"].pop("neighbour_overlap"),
            "missing key 'splits.test.neighbour_overlap'",
        ),
        (
            ALIGNMENT_RECORD,
            alignment_record,
            lambda d: d["methods"]["PtyChi"].pop("region_pixels"),
            "missing key 'methods.PtyChi.region_pixels'",
        ),
        # extra keys
        (
            OVERLAP_RECORD,
            overlap_record,
            lambda d: d["splits"]["train"].update(metric_2_neighbours=0.5),
            "unexpected key 'splits.train.metric_2_neighbours'",
        ),
        (ALIGNMENT_RECORD, alignment_record, lambda d: d.update(schema=1), "unexpected key 'schema'"),
        # wrong types
        (
            OVERLAP_RECORD,
            overlap_record,
            lambda d: d.update(stride=1.5),
            "key 'stride': expected an integer, found float 1.5",
        ),
        (
            OVERLAP_RECORD,
            overlap_record,
            lambda d: d["splits"]["test"].update(neighbour_overlap=None),
            "key 'splits.test.neighbour_overlap': expected a finite number, found NoneType null",
        ),
        (
            OVERLAP_RECORD,
            overlap_record,
            lambda d: d["splits"]["test"].update(group_centre_pairs=True),
            "key 'splits.test.group_centre_pairs': expected an integer, found bool true",
        ),
        (
            ALIGNMENT_RECORD,
            alignment_record,
            lambda d: d["methods"]["PtyChi"].update(residual_shift_dy_dx_px=[0.1]),
            "key 'methods.PtyChi.residual_shift_dy_dx_px': expected a list of 2",
        ),
        (
            ALIGNMENT_RECORD,
            alignment_record,
            lambda d: d.update(policy=3),
            "key 'policy': expected a string, found int 3",
        ),
        # the report's summary document: its verdicts and crossovers, and its version
        (
            SUMMARY_DOCUMENT,
            summary_document,
            lambda d: d["verdicts"][0].pop("not_separable"),
            "missing key 'verdicts[0].not_separable'",
        ),
        (
            SUMMARY_DOCUMENT,
            summary_document,
            lambda d: d["crossovers"][0]["estimate"].update(dose="1e2"),
            "key 'crossovers[0].estimate.dose': expected a finite number, found str",
        ),
        (
            SUMMARY_DOCUMENT,
            summary_document,
            lambda d: d["summary"]["records"][0].pop("values"),
            "missing key 'summary.records[0].values'",
        ),
        (
            SUMMARY_DOCUMENT,
            summary_document,
            lambda d: d.update(schema_version=1),
            f"key 'schema_version': expected report summary version {SUMMARY_VERSION}, found 1",
        ),
        # an earlier version of the overlap record is named as such
        (
            OVERLAP_RECORD,
            overlap_record,
            lambda d: d.update(metrics_version=1),
            f"key 'metrics_version': expected overlap metrics record version {OVERLAP_METRICS_VERSION}, found 1",
        ),
    ],
)
def test_json_record_refusals_name_file_and_key(tmp_path, record, example, edit, message):
    doc = example()
    edit(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataContractError) as exc:
        record.read(path)
    assert str(exc.value).startswith(f"{path}: ") and message in str(exc.value), str(exc.value)
    with pytest.raises(DataContractError, match="out.json: "):
        record.write(tmp_path / "out.json", doc)
    assert not (tmp_path / "out.json").exists()


def test_json_record_refuses_nan_and_invalid_json(tmp_path):
    doc = overlap_record(test={"linear_overlap": float("nan")})
    with pytest.raises(DataContractError, match=r"key 'splits.test.linear_overlap': expected a finite number"):
        OVERLAP_RECORD.dumps(doc, "m.json")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(DataContractError, match=r"m.json: overlap metrics record is not valid JSON"):
        OVERLAP_RECORD.read(tmp_path / "m.json")


def test_the_group_overlap_may_be_null_for_single_position_groups():
    doc = overlap_record(gridsize=1, C=1, train={"group_overlap": None}, test={"group_overlap": None})
    assert OVERLAP_RECORD.loads(OVERLAP_RECORD.dumps(doc)) == doc


# --------------------------------------------------------------------------
# one home per name
# --------------------------------------------------------------------------


def test_the_overlap_table_and_record_share_the_overlap_names():
    assert set(OVERLAP_TABLE_COLUMNS[4:]) <= set(records.OVERLAP_SPLIT_FIELDS)
    assert set(records.OVERLAP_MEASURES) <= set(records.OVERLAP_SPLIT_FIELDS)
    assert not any(k.startswith("metric_") for k in records.OVERLAP_SPLIT_FIELDS)


def test_versions_have_distinct_names_and_one_home():
    import ptycho_core.evaluate.metrics as metrics
    import ptycho_core.evaluate.tables as tables
    import ptycho_core.sampling.overlap as overlap

    assert not hasattr(overlap, "METRICS_VERSION") and not hasattr(metrics, "METRICS_VERSION")
    assert not hasattr(tables, "SCHEMA_VERSION")
    assert records.METRIC_ROWS.version == records.METRIC_ROWS_VERSION == 3
    assert records.OVERLAP_RECORD.version == OVERLAP_METRICS_VERSION == 2
    assert records.SUMMARY_DOCUMENT.version == records.SUMMARY_VERSION == 3


def test_records_imports_nothing_of_ptycho_core_outside_io():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(records.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    outside = {m for m in imported if m.startswith("ptycho_core") and not m.startswith("ptycho_core.io")}
    assert not outside, outside


def test_examples_are_not_shared_between_calls():
    a, b = overlap_record(), overlap_record()
    a["splits"]["test"]["n_view"] = -1
    assert b["splits"]["test"]["n_view"] == 400
    assert copy.deepcopy(alignment_record()) == alignment_record()
