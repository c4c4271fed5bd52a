"""Data contract of a view file (views step) (NPZ, never pickle).

A view file refers to the simulated split files by row:

- ``train_index``, ``test_index`` (n,) int64: rows of the simulated ``train.npz``
  / ``test.npz`` that belong to the view (unique);
- ``train_groups``, ``test_groups`` (G, C) int64: groups of rows, every member
  a row of the view; the test groups cover every test row of the view;
- ``metadata``: JSON text (schema version, view name and stride, C, K,
  neighbour radius, random-stream entropy, source files with sha256).

These indices are the only grouping that training, inference and evaluation use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ptycho_core.io.envelope import SCHEMA_VERSION, check_dtype, check_ndim, metadata_to_array, open_envelope
from ptycho_core.io.npz import DataContractError, read_npz, write_npz

VIEW_KEYS = ("train_index", "test_index", "train_groups", "test_groups", "metadata")
REQUIRED_VIEW_METADATA = ("schema_version", "view", "stride", "C", "K")


@dataclass(frozen=True, eq=False)
class ViewIndex:
    train_index: np.ndarray
    test_index: np.ndarray
    train_groups: np.ndarray
    test_groups: np.ndarray
    metadata: dict

    def to_arrays(self, source: str) -> dict[str, np.ndarray]:
        return {
            "train_index": np.asarray(self.train_index),
            "test_index": np.asarray(self.test_index),
            "train_groups": np.asarray(self.train_groups),
            "test_groups": np.asarray(self.test_groups),
            "metadata": metadata_to_array(self.metadata, source),
        }


def validate_view_arrays(
    arrays: Mapping[str, np.ndarray], source: str, n_train: int | None = None, n_test: int | None = None
) -> dict:
    """Check a view's entries (and, given the split sizes, that every row exists); return the metadata."""
    arrays, meta = open_envelope(arrays, VIEW_KEYS, REQUIRED_VIEW_METADATA, source)
    C = meta["C"]
    for split, n_rows in (("train", n_train), ("test", n_test)):
        index, groups = arrays[f"{split}_index"], arrays[f"{split}_groups"]
        check_dtype(index, f"{split}_index", np.int64, source)
        check_ndim(index, f"{split}_index", 1, source)
        check_dtype(groups, f"{split}_groups", np.int64, source)
        check_ndim(groups, f"{split}_groups", 2, source)
        if index.size == 0 or groups.shape[0] == 0:
            raise DataContractError.mismatch(
                source, f"{split}_index", "a non-empty view with groups", f"{index.size} rows, {groups.shape[0]} groups"
            )
        if groups.shape[1] != C:
            raise DataContractError.mismatch(
                source, f"{split}_groups", f"C = {C} members per group", f"shape {groups.shape}"
            )
        if np.unique(index).size != index.size:
            raise DataContractError.mismatch(source, f"{split}_index", "unique rows", "repeated rows")
        if index.min() < 0 or (n_rows is not None and index.max() >= n_rows):
            raise DataContractError.mismatch(
                source, f"{split}_index", f"rows in [0, {n_rows})", f"range [{index.min()}, {index.max()}]"
            )
        outside = ~np.isin(groups, index)
        if outside.any():
            raise DataContractError.mismatch(
                source,
                f"{split}_groups",
                "members that are rows of the view",
                f"{int(outside.sum())} member(s) outside it",
            )
    missing = ~np.isin(arrays["test_index"], arrays["test_groups"])
    if missing.any():
        raise DataContractError.mismatch(
            source, "test_groups", "every test row covered by a group", f"{int(missing.sum())} row(s) uncovered"
        )
    return meta


def save_view(path: str | os.PathLike, view: ViewIndex, n_train: int | None = None, n_test: int | None = None) -> None:
    """Validate and write a view file (deterministic, atomic); nothing is written if invalid."""
    source = os.fspath(path)
    arrays = view.to_arrays(source)
    validate_view_arrays(arrays, source, n_train, n_test)
    write_npz(path, arrays)


def load_view(path: str | os.PathLike, n_train: int | None = None, n_test: int | None = None) -> ViewIndex:
    """Read and validate a view file; pass the split sizes to check the rows exist."""
    source = os.fspath(path)
    arrays = read_npz(path)
    meta = validate_view_arrays(arrays, source, n_train, n_test)
    return ViewIndex(arrays["train_index"], arrays["test_index"], arrays["train_groups"], arrays["test_groups"], meta)


__all__ = ["SCHEMA_VERSION", "ViewIndex", "VIEW_KEYS", "load_view", "save_view", "validate_view_arrays"]
