"""The dataset contract (docs/DESIGN.md section 4): NPZ files, validated, never pickled.

A **diffraction set** (one split of one simulated dataset) is an NPZ file with
exactly these keys:

============== ========= ============ ===========================================
key            dtype     shape        meaning
============== ========= ============ ===========================================
``diffraction`` float32  (n, N, N)    sqrt(counts), amplitude in sqrt(photons)
``xcoords``     float64  (n,)         patch-centre column, in object pixels
``ycoords``     float64  (n,)         patch-centre row, in object pixels
``probe``       complex64 (N, N)      probe in sqrt(photons) per pixel
``scan_index``  int64    (n,)         index of each pattern in the base scan
``metadata``    unicode  ()           JSON object; ``schema_version``, ``N``,
                                      ``dose``, ``seed`` at least
============== ========= ============ ===========================================

The **ground truth** is its own file with keys ``object`` (H, W) complex64 and
``metadata`` (JSON holding ``schema_version`` and ``pixel_frame``).

Validation checks keys, dtypes (exactly, no silent casts), shapes, finiteness,
non-negative counts, N consistency, and refuses the legacy (H, W, n) layout
with an explicit message rather than transposing it. Every error is a
:class:`DataContractError` whose message names the file and the key.
Metadata JSON is written with sorted keys so equal content gives
byte-identical files (see :mod:`ptycho_core.io.npz`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ptycho_core.io.envelope import (
    SCHEMA_VERSION,
    check_dtype,
    check_finite,
    check_ndim,
    metadata_to_array,
    open_envelope,
)
from ptycho_core.io.npz import DataContractError, read_npz, write_npz

__all__ = [
    "SCHEMA_VERSION",
    "DIFFRACTION_KEYS",
    "GROUND_TRUTH_KEYS",
    "REQUIRED_METADATA",
    "DataContractError",
    "DiffractionSet",
    "GroundTruth",
    "standard_pixel_frame",
    "validate_diffraction_arrays",
    "validate_ground_truth_arrays",
    "save_diffraction_set",
    "load_diffraction_set",
    "save_ground_truth",
    "load_ground_truth",
]


#: Keys of a diffraction-set NPZ file (no more, no fewer).
DIFFRACTION_KEYS = ("diffraction", "xcoords", "ycoords", "probe", "scan_index", "metadata")
#: Keys of a ground-truth NPZ file.
GROUND_TRUTH_KEYS = ("object", "metadata")
#: Metadata entries every diffraction set must carry.
REQUIRED_METADATA = ("schema_version", "N", "dose", "seed")

_IN_MEMORY = "<in-memory>"


# --------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DiffractionSet:
    """One split of a simulated dataset (see the module docstring for the contract).

    Construction does not validate (so a caller can assemble and then check);
    :meth:`validate`, :func:`save_diffraction_set` and
    :func:`load_diffraction_set` do. ``eq=False``: arrays have no single
    truth value, compare fields with numpy instead.
    """

    diffraction: np.ndarray
    xcoords: np.ndarray
    ycoords: np.ndarray
    probe: np.ndarray
    scan_index: np.ndarray
    metadata: dict

    @property
    def n(self) -> int:
        """Number of diffraction patterns."""
        return int(self.diffraction.shape[0])

    @property
    def N(self) -> int:  # noqa: N802 (the physics symbol)
        """Pattern (and probe) side length in pixels."""
        return int(self.diffraction.shape[-1])

    def counts(self) -> np.ndarray:
        """Photon counts per pixel, recovered exactly as ``rint(diffraction**2)`` (float64)."""
        return np.rint(self.diffraction.astype(np.float64) ** 2)

    def to_arrays(self, source: str = _IN_MEMORY) -> dict[str, np.ndarray]:
        """The NPZ entries of this set (metadata as sorted-key JSON); no dtype conversion."""
        return {
            "diffraction": np.asarray(self.diffraction),
            "xcoords": np.asarray(self.xcoords),
            "ycoords": np.asarray(self.ycoords),
            "probe": np.asarray(self.probe),
            "scan_index": np.asarray(self.scan_index),
            "metadata": metadata_to_array(self.metadata, source),
        }

    def validate(self, source: str = _IN_MEMORY) -> dict:
        """Check this set against the contract; return its metadata as parsed from JSON."""
        return validate_diffraction_arrays(self.to_arrays(source), source)


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """The ground-truth object: ``obj`` (H, W) complex64 transmission.

    ``metadata`` must hold ``schema_version`` and ``pixel_frame`` (see
    :func:`standard_pixel_frame`): pixel (row r, column c) has coordinates
    x = c, y = r, in object pixels, the same frame as ``xcoords``/``ycoords``.
    """

    obj: np.ndarray
    metadata: dict

    def to_arrays(self, source: str = _IN_MEMORY) -> dict[str, np.ndarray]:
        """The NPZ entries of this object (metadata as sorted-key JSON); no dtype conversion."""
        return {"object": np.asarray(self.obj), "metadata": metadata_to_array(self.metadata, source)}

    def validate(self, source: str = _IN_MEMORY) -> dict:
        """Check this object against the contract; return its metadata as parsed from JSON."""
        return validate_ground_truth_arrays(self.to_arrays(source), source)


def standard_pixel_frame() -> dict:
    """The coordinate convention of the study, for ``GroundTruth.metadata['pixel_frame']``."""
    return {
        "x": "column index c",
        "y": "row index r",
        "units": "object pixels",
        "origin": "centre of pixel (row 0, column 0) is (x, y) = (0, 0)",
        "convention": "pixel (row r, column c) has coordinates x = c, y = r",
    }


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def validate_diffraction_arrays(arrays: Mapping[str, np.ndarray], source: str) -> dict:
    """Check the NPZ entries of a diffraction set; return the parsed metadata dict.

    ``source`` names the file (or in-memory origin) in every error message.

    Raises:
        DataContractError: the first violation found (keys, metadata, layout,
            dtypes, shapes, n and N consistency, finiteness, negative counts).
    """
    arrays, meta = open_envelope(arrays, DIFFRACTION_KEYS, REQUIRED_METADATA, source)

    diff, xs, ys = arrays["diffraction"], arrays["xcoords"], arrays["ycoords"]
    probe, index = arrays["probe"], arrays["scan_index"]

    check_ndim(diff, "diffraction", 3, source)
    check_ndim(xs, "xcoords", 1, source)
    n_coords = xs.shape[0]
    h, w, last = diff.shape
    if h == w and last == n_coords and h != n_coords:
        raise DataContractError(
            f"{source}: key 'diffraction': legacy (H, W, n) layout; expected (n, N, N); "
            f"transpose explicitly at the source (found shape {diff.shape} with {n_coords} positions)"
        )
    check_dtype(diff, "diffraction", np.float32, source)
    n, N = diff.shape[0], diff.shape[1]
    if diff.shape[1] != diff.shape[2]:
        raise DataContractError.mismatch(source, "diffraction", "shape (n, N, N) with square patterns", diff.shape)
    if n < 1 or N < 1:
        raise DataContractError.mismatch(source, "diffraction", "n >= 1 patterns of size N >= 1", diff.shape)

    for key, arr, dtype in (("xcoords", xs, np.float64), ("ycoords", ys, np.float64), ("scan_index", index, np.int64)):
        check_dtype(arr, key, dtype, source)
        if arr.shape != (n,):
            raise DataContractError.mismatch(source, key, f"shape ({n},) (one per pattern)", f"shape {arr.shape}")

    check_dtype(probe, "probe", np.complex64, source)
    if probe.shape != (N, N):
        raise DataContractError.mismatch(
            source, "probe", f"shape ({N}, {N}) matching the pattern size N={N}", f"shape {probe.shape}"
        )

    for key in ("diffraction", "xcoords", "ycoords", "probe"):
        check_finite(arrays[key], key, source)
    negative = diff < 0
    if negative.any():
        raise DataContractError.mismatch(
            source, "diffraction", "sqrt(counts) >= 0", f"negative counts ({int(negative.sum())} value(s) < 0)"
        )
    if (index < 0).any():
        raise DataContractError.mismatch(source, "scan_index", "indices >= 0", f"minimum {int(index.min())}")

    meta_n = meta["N"]
    if not isinstance(meta_n, int) or isinstance(meta_n, bool) or meta_n != N:
        raise DataContractError.mismatch(source, "metadata", f"N = {N} (the pattern size)", f"N = {meta_n!r}")
    return meta


def validate_ground_truth_arrays(arrays: Mapping[str, np.ndarray], source: str) -> dict:
    """Check the NPZ entries of a ground-truth object; return the parsed metadata dict.

    Raises:
        DataContractError: keys, metadata (schema version, ``pixel_frame``),
            dtype complex64, 2-d non-empty shape, finiteness.
    """
    arrays, meta = open_envelope(arrays, GROUND_TRUTH_KEYS, (), source)
    if not meta.get("pixel_frame"):
        raise DataContractError(f"{source}: key 'metadata': missing entry 'pixel_frame'")
    obj = arrays["object"]
    check_dtype(obj, "object", np.complex64, source)
    check_ndim(obj, "object", 2, source)
    if obj.size == 0:
        raise DataContractError.mismatch(source, "object", "a non-empty (H, W) array", f"shape {obj.shape}")
    check_finite(obj, "object", source)
    return meta


# --------------------------------------------------------------------------
# Save / load
# --------------------------------------------------------------------------


def save_diffraction_set(path: str | os.PathLike, ds: DiffractionSet) -> None:
    """Validate ``ds`` and write it to ``path`` (deterministic, atomic NPZ).

    A set that fails validation raises :class:`DataContractError` before
    anything is written; an existing file at ``path`` is left untouched.
    """
    source = os.fspath(path)
    arrays = ds.to_arrays(source)
    validate_diffraction_arrays(arrays, source)
    write_npz(path, arrays)


def load_diffraction_set(path: str | os.PathLike) -> DiffractionSet:
    """Read and validate the diffraction set at ``path`` (errors name the file)."""
    source = os.fspath(path)
    arrays = read_npz(path)
    meta = validate_diffraction_arrays(arrays, source)
    return DiffractionSet(
        diffraction=arrays["diffraction"],
        xcoords=arrays["xcoords"],
        ycoords=arrays["ycoords"],
        probe=arrays["probe"],
        scan_index=arrays["scan_index"],
        metadata=meta,
    )


def save_ground_truth(path: str | os.PathLike, gt: GroundTruth) -> None:
    """Validate ``gt`` and write it to ``path``; nothing is written if it is invalid."""
    source = os.fspath(path)
    arrays = gt.to_arrays(source)
    validate_ground_truth_arrays(arrays, source)
    write_npz(path, arrays)


def load_ground_truth(path: str | os.PathLike) -> GroundTruth:
    """Read and validate the ground-truth object at ``path`` (errors name the file)."""
    source = os.fspath(path)
    arrays = read_npz(path)
    meta = validate_ground_truth_arrays(arrays, source)
    return GroundTruth(obj=arrays["object"], metadata=meta)
