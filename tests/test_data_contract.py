"""Tests of the NPZ data contract (docs/DESIGN.md section 4) and the NPZ reader/writer."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import numpy as np
import pytest

from ptycho_core.io.datasets import (
    SCHEMA_VERSION,
    DataContractError,
    DiffractionSet,
    GroundTruth,
    load_diffraction_set,
    load_ground_truth,
    save_diffraction_set,
    save_ground_truth,
    standard_pixel_frame,
    validate_diffraction_arrays,
)
from ptycho_core.io.npz import atomic_write_text, read_npz, write_npz


def make_set(n: int = 5, N: int = 16, seed: int = 0) -> DiffractionSet:
    """A small valid diffraction set: sqrt of seeded Poisson counts."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(20.0, size=(n, N, N))
    probe = (rng.normal(size=(N, N)) + 1j * rng.normal(size=(N, N))).astype(np.complex64)
    return DiffractionSet(
        diffraction=np.sqrt(counts).astype(np.float32),
        xcoords=rng.uniform(20, 40, size=n),
        ycoords=rng.uniform(20, 40, size=n),
        probe=probe,
        scan_index=np.arange(n, dtype=np.int64) * 2,
        metadata={"schema_version": SCHEMA_VERSION, "N": N, "dose": 1e4, "seed": seed, "split": "train"},
    )


def arrays_of(ds: DiffractionSet) -> dict:
    return ds.to_arrays()


def leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------
# Round trip and determinism
# --------------------------------------------------------------------------


def test_round_trip_preserves_arrays_and_metadata(tmp_path):
    ds = make_set()
    path = tmp_path / "sub" / "train.npz"
    save_diffraction_set(path, ds)
    back = load_diffraction_set(path)
    for field in ("diffraction", "xcoords", "ycoords", "probe", "scan_index"):
        a, b = getattr(ds, field), getattr(back, field)
        assert b.dtype == a.dtype
        np.testing.assert_array_equal(b, a)
    assert back.metadata == ds.metadata
    assert (back.n, back.N) == (5, 16)
    assert leftovers(path.parent) == ["train.npz"]


def test_counts_are_recovered_exactly(tmp_path):
    rng = np.random.default_rng(3)
    counts = rng.poisson(5e3, size=(4, 16, 16))
    ds = dataclasses.replace(make_set(n=4), diffraction=np.sqrt(counts).astype(np.float32))
    save_diffraction_set(tmp_path / "a.npz", ds)
    back = load_diffraction_set(tmp_path / "a.npz").counts()
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, counts)


def test_saving_twice_gives_identical_bytes(tmp_path):
    save_diffraction_set(tmp_path / "a.npz", make_set())
    save_diffraction_set(tmp_path / "b.npz", make_set())
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.npz") as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)


def test_metadata_json_is_key_order_independent(tmp_path):
    ds = make_set()
    reordered = dataclasses.replace(ds, metadata=dict(reversed(list(ds.metadata.items()))))
    save_diffraction_set(tmp_path / "a.npz", ds)
    save_diffraction_set(tmp_path / "b.npz", reordered)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_write_npz_is_layout_independent_and_loadable_by_numpy(tmp_path):
    a = np.arange(12.0).reshape(3, 4)
    write_npz(tmp_path / "c.npz", {"a": a, "s": np.array("text")})
    write_npz(tmp_path / "f.npz", {"s": np.array("text"), "a": np.asfortranarray(a)})
    assert (tmp_path / "c.npz").read_bytes() == (tmp_path / "f.npz").read_bytes()
    with np.load(tmp_path / "c.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["a"], a)
        assert npz["s"].shape == () and str(npz["s"]) == "text"


def test_write_npz_refuses_object_arrays_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="object"):
        write_npz(tmp_path / "o.npz", {"x": np.array([1, None], dtype=object)})
    assert leftovers(tmp_path) == []


def test_atomic_write_cleans_up_temp_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "t.txt"
    atomic_write_text(target, "old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr("ptycho_core.io.npz.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == ["t.txt"]


# --------------------------------------------------------------------------
# Bad inputs, checked on files
# --------------------------------------------------------------------------


def _drop(key):
    def edit(arrays):
        del arrays[key]

    return edit


def _set(key, value_fn):
    def edit(arrays):
        arrays[key] = value_fn(arrays)

    return edit


def _with_nan(arrays):
    d = arrays["diffraction"].copy()
    d[1, 2, 3] = np.nan
    return d


def _with_negative(arrays):
    d = arrays["diffraction"].copy()
    d[0, 0, 0] = -1.0
    return d


BAD_ARRAYS = {
    "missing key": (_drop("probe"), "probe", "missing key"),
    "unexpected key": (_set("extra", lambda a: np.zeros(3)), "extra", "unexpected key"),
    "float64 diffraction": (
        _set("diffraction", lambda a: a["diffraction"].astype(np.float64)),
        "diffraction",
        "float32",
    ),
    "float32 coords": (_set("xcoords", lambda a: a["xcoords"].astype(np.float32)), "xcoords", "float64"),
    "int32 scan index": (_set("scan_index", lambda a: a["scan_index"].astype(np.int32)), "scan_index", "int64"),
    "complex128 probe": (_set("probe", lambda a: a["probe"].astype(np.complex128)), "probe", "complex64"),
    "NaN in diffraction": (_set("diffraction", _with_nan), "diffraction", "non-finite"),
    "inf in probe": (_set("probe", lambda a: np.full_like(a["probe"], np.inf)), "probe", "non-finite"),
    "negative counts": (_set("diffraction", _with_negative), "diffraction", "negative counts"),
    "legacy layout": (
        _set("diffraction", lambda a: np.ascontiguousarray(np.moveaxis(a["diffraction"], 0, -1))),
        "diffraction",
        r"legacy \(H, W, n\) layout; expected \(n, N, N\); transpose explicitly at the source",
    ),
    "probe N mismatch": (_set("probe", lambda a: np.ones((32, 32), np.complex64)), "probe", "N=16"),
    "non-square patterns": (_set("diffraction", lambda a: np.ones((5, 16, 8), np.float32)), "diffraction", "square"),
    "xcoords length": (_set("xcoords", lambda a: a["xcoords"][:-1]), "xcoords", r"shape \(5,\)"),
    "scan_index length": (_set("scan_index", lambda a: a["scan_index"][:3]), "scan_index", r"shape \(5,\)"),
    "negative scan index": (_set("scan_index", lambda a: a["scan_index"] - 1), "scan_index", ">= 0"),
    "no patterns": (
        lambda a: a.update(
            diffraction=np.zeros((0, 16, 16), np.float32),
            xcoords=np.zeros(0),
            ycoords=np.zeros(0),
            scan_index=np.zeros(0, np.int64),
        ),
        "diffraction",
        "n >= 1",
    ),
    "metadata not JSON": (_set("metadata", lambda a: np.array("{not json")), "metadata", "not valid JSON"),
    "metadata not an object": (_set("metadata", lambda a: np.array("[1, 2]")), "metadata", "JSON object"),
    "metadata not a string": (_set("metadata", lambda a: np.zeros(3)), "metadata", "unicode"),
    "wrong schema version": (
        _set("metadata", lambda a: np.array(json.dumps({"schema_version": 99, "N": 16, "dose": 1, "seed": 0}))),
        "metadata",
        "schema_version",
    ),
    "metadata missing dose": (
        _set("metadata", lambda a: np.array(json.dumps({"schema_version": SCHEMA_VERSION, "N": 16, "seed": 0}))),
        "metadata",
        "dose",
    ),
    "metadata N mismatch": (
        _set(
            "metadata",
            lambda a: np.array(json.dumps({"schema_version": SCHEMA_VERSION, "N": 32, "dose": 1, "seed": 0})),
        ),
        "metadata",
        "N = 16",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ARRAYS), ids=list(BAD_ARRAYS))
def test_bad_file_is_refused_naming_file_and_key(tmp_path, case):
    edit, key, pattern = BAD_ARRAYS[case]
    arrays = arrays_of(make_set())
    edit(arrays)
    path = tmp_path / "bad_split.npz"
    write_npz(path, arrays)  # bypasses validation: simulates a file from elsewhere
    with pytest.raises(DataContractError, match=pattern) as info:
        load_diffraction_set(path)
    message = str(info.value)
    assert "bad_split.npz" in message
    assert f"'{key}'" in message


@pytest.mark.parametrize("case", list(BAD_ARRAYS), ids=list(BAD_ARRAYS))
def test_bad_arrays_are_refused_in_memory_too(case):
    edit, key, pattern = BAD_ARRAYS[case]
    arrays = arrays_of(make_set())
    edit(arrays)
    with pytest.raises(DataContractError, match=pattern):
        validate_diffraction_arrays(arrays, "memory")


def test_legacy_layout_is_never_transposed_silently(tmp_path):
    arrays = arrays_of(make_set(n=5, N=16))
    arrays["diffraction"] = np.ascontiguousarray(np.moveaxis(arrays["diffraction"], 0, -1))
    assert arrays["diffraction"].shape == (16, 16, 5)
    with pytest.raises(DataContractError, match="legacy"):
        validate_diffraction_arrays(arrays, "x.npz")


def test_object_array_needing_pickle_is_refused(tmp_path):
    arrays = arrays_of(make_set())
    arrays["metadata"] = np.array([{"schema_version": 1}], dtype=object)
    path = tmp_path / "pickled.npz"
    np.savez(path, allow_pickle=True, **arrays)
    with pytest.raises(DataContractError, match="needs pickle") as info:
        load_diffraction_set(path)
    assert "pickled.npz" in str(info.value) and "'metadata'" in str(info.value)


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "cut.npz"
    save_diffraction_set(path, make_set())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataContractError, match="truncated or not an NPZ archive") as info:
        load_diffraction_set(path)
    assert "cut.npz" in str(info.value)


def test_corrupt_entry_is_refused(tmp_path):
    path = tmp_path / "corrupt.npz"
    save_diffraction_set(path, make_set())
    data = bytearray(path.read_bytes())
    start = data.index(b"diffraction.npy")
    data[start + 400 : start + 420] = b"\xff" * 20  # inside the stored array bytes
    path.write_bytes(bytes(data))
    with pytest.raises(DataContractError, match="corrupt.npz"):
        load_diffraction_set(path)


def test_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "plain.npz"
    path.write_text("hello, not an archive")
    with pytest.raises(DataContractError, match="plain.npz: file is truncated or not an NPZ archive"):
        read_npz(path)


def test_single_npy_is_refused(tmp_path):
    path = tmp_path / "single.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(DataContractError, match="not an NPZ archive"):
        read_npz(path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(DataContractError, match="nowhere.npz: file not found"):
        load_diffraction_set(tmp_path / "nowhere.npz")


def test_error_is_a_value_error_with_standard_message():
    err = DataContractError.mismatch("f.npz", "probe", "dtype complex64", "dtype float64")
    assert isinstance(err, ValueError)
    assert str(err) == "f.npz: key 'probe': expected dtype complex64, found dtype float64"


# --------------------------------------------------------------------------
# Nothing written on failure
# --------------------------------------------------------------------------


def test_invalid_set_writes_nothing(tmp_path):
    bad = dataclasses.replace(make_set(), diffraction=make_set().diffraction.astype(np.float64))
    with pytest.raises(DataContractError, match="float32"):
        save_diffraction_set(tmp_path / "out" / "train.npz", bad)
    assert leftovers(tmp_path) == []  # not even the parent directory


def test_unserialisable_metadata_writes_nothing(tmp_path):
    ds = make_set()
    bad = dataclasses.replace(ds, metadata={**ds.metadata, "dose": float("nan")})
    with pytest.raises(DataContractError, match="metadata"):
        save_diffraction_set(tmp_path / "train.npz", bad)
    assert leftovers(tmp_path) == []


def test_failed_save_keeps_existing_good_file(tmp_path):
    path = tmp_path / "train.npz"
    save_diffraction_set(path, make_set())
    before = path.read_bytes()
    bad = dataclasses.replace(make_set(), probe=np.ones((8, 8), np.complex64))
    with pytest.raises(DataContractError, match="probe"):
        save_diffraction_set(path, bad)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == ["train.npz"]


def test_write_failure_midway_keeps_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "train.npz"
    save_diffraction_set(path, make_set())
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(RuntimeError, match="interrupted"):
        save_diffraction_set(path, make_set(seed=1))
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == ["train.npz"]


# --------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------


def make_truth() -> GroundTruth:
    rng = np.random.default_rng(7)
    obj = (rng.uniform(0.5, 1.0, (24, 32)) * np.exp(1j * rng.uniform(-1, 1, (24, 32)))).astype(np.complex64)
    return GroundTruth(obj=obj, metadata={"schema_version": SCHEMA_VERSION, "pixel_frame": standard_pixel_frame()})


def test_ground_truth_round_trip_is_deterministic(tmp_path):
    gt = make_truth()
    save_ground_truth(tmp_path / "a.npz", gt)
    save_ground_truth(tmp_path / "b.npz", make_truth())
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = load_ground_truth(tmp_path / "a.npz")
    assert back.obj.dtype == np.complex64
    np.testing.assert_array_equal(back.obj, gt.obj)
    assert back.metadata == gt.metadata
    assert back.metadata["pixel_frame"]["x"].startswith("column")


@pytest.mark.parametrize(
    "change, key, pattern",
    [
        (lambda gt: dataclasses.replace(gt, obj=gt.obj.astype(np.complex128)), "object", "complex64"),
        (lambda gt: dataclasses.replace(gt, obj=gt.obj[None]), "object", "2-d"),
        (
            lambda gt: dataclasses.replace(
                gt, obj=np.where(gt.obj == gt.obj[0, 0], np.nan, gt.obj).astype(np.complex64)
            ),
            "object",
            "non-finite",
        ),
        (lambda gt: dataclasses.replace(gt, metadata={"schema_version": SCHEMA_VERSION}), "metadata", "pixel_frame"),
    ],
    ids=["complex128", "3-d", "nan", "no pixel frame"],
)
def test_bad_ground_truth_is_refused_and_not_written(tmp_path, change, key, pattern):
    path = tmp_path / "truth.npz"
    with pytest.raises(DataContractError, match=pattern) as info:
        save_ground_truth(path, change(make_truth()))
    assert "truth.npz" in str(info.value) and f"'{key}'" in str(info.value)
    assert leftovers(tmp_path) == []


def test_ground_truth_file_with_wrong_keys_is_refused(tmp_path):
    path = tmp_path / "truth.npz"
    write_npz(path, {"obj": make_truth().obj, "metadata": np.array("{}")})
    with pytest.raises(DataContractError, match="truth.npz: missing key 'object'"):
        load_ground_truth(path)
