"""The envelope every NPZ contract of the study shares (docs/DESIGN.md section 4).

An artifact is an NPZ of named arrays plus ``metadata``: a 0-d unicode
string holding a JSON object with sorted keys and a ``schema_version``.
:func:`open_envelope` is the first step of every contract's validation
(exact keys, metadata parsed, required entries present); the ``check_*``
helpers state one expectation each and raise :class:`DataContractError`
as ``<file>: key '<key>': expected ..., found ...``.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np

from ptycho_core.io.npz import DataContractError
from ptycho_core.io.records import check_keys

#: Version of every contract's layout (diffraction sets, ground truth, views, reconstructions).
SCHEMA_VERSION = 1


def open_envelope(
    arrays: Mapping[str, Any], keys: tuple[str, ...], required_metadata: tuple[str, ...], source: str
) -> tuple[dict, dict]:
    """Exactly ``keys`` present, metadata parsed with every ``required_metadata`` entry; returns (arrays, metadata)."""
    check_keys(arrays, keys, source)
    arrays = {key: np.asarray(value) for key, value in arrays.items()}
    meta = parse_metadata(arrays["metadata"], source)
    for key in required_metadata:
        if key not in meta:
            raise DataContractError(f"{source}: key 'metadata': missing entry '{key}'")
    return arrays, meta


def describe(arr: np.ndarray) -> str:
    return f"{arr.dtype} array of shape {arr.shape}"


def check_dtype(arr: np.ndarray, key: str, dtype: type, source: str) -> None:
    if arr.dtype != np.dtype(dtype):
        raise DataContractError.mismatch(source, key, f"dtype {np.dtype(dtype)}", f"dtype {arr.dtype}")


def check_ndim(arr: np.ndarray, key: str, ndim: int, source: str) -> None:
    if arr.ndim != ndim:
        raise DataContractError.mismatch(source, key, f"a {ndim}-d array", describe(arr))


def check_finite(arr: np.ndarray, key: str, source: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataContractError.mismatch(
            source, key, "finite values", f"{int(bad.sum())} non-finite value(s), first at index {first}"
        )


def metadata_to_array(metadata: Mapping, source: str) -> np.ndarray:
    """Metadata dict -> 0-d unicode array of sorted-key JSON (NaN refused)."""
    if not isinstance(metadata, Mapping):
        raise DataContractError.mismatch(source, "metadata", "a dict", type(metadata).__name__)
    try:
        text = json.dumps(dict(metadata), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DataContractError(f"{source}: key 'metadata': not JSON-serialisable ({exc})") from exc
    return np.array(text)


def parse_metadata(arr: np.ndarray, source: str) -> dict:
    """0-d unicode JSON array -> dict with the current schema version."""
    if arr.dtype.kind != "U" or arr.ndim != 0:
        raise DataContractError.mismatch(source, "metadata", "a 0-d unicode string holding JSON", describe(arr))
    try:
        meta = json.loads(str(arr[()]))
    except json.JSONDecodeError as exc:
        raise DataContractError(f"{source}: key 'metadata': not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise DataContractError.mismatch(source, "metadata", "a JSON object", type(meta).__name__)
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise DataContractError.mismatch(
            source, "metadata", f"schema_version {SCHEMA_VERSION}", f"schema_version {version!r}"
        )
    return meta
