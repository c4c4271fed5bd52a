"""Data contract of a reconstruction: one method's object on the ground-truth frame.

``recon.npz`` holds:

- ``object`` (H, W) complex64: the reconstructed transmission on the pixel
  frame of the ground-truth object (pixel [r, c] at x = c, y = r), zero
  where nothing was reconstructed;
- ``covered`` (H, W) bool: pixels the method reconstructed;
- ``metadata``: JSON text with at least ``schema_version``, ``method`` (a
  canonical id), ``dose``, ``view``, ``seed`` and ``refused``: the failed
  outcome checks of the network it came from (a failed run, reconstructed and
  scored as produced, :func:`ptycho_core.steps.train.outcome_refusals`;
  empty for a method run that passed them, and always for PtyChi).

Every method writes this same format, so scoring treats them identically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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
from ptycho_core.io.records import check_refusals
from ptycho_core.methods import Method

RECON_KEYS = ("object", "covered", "metadata")
REQUIRED_RECON_METADATA = ("schema_version", "method", "dose", "view", "seed", "refused")


@dataclass(frozen=True, eq=False)
class Reconstruction:
    obj: np.ndarray
    covered: np.ndarray
    metadata: dict

    def to_arrays(self, source: str) -> dict[str, np.ndarray]:
        return {
            "object": np.asarray(self.obj),
            "covered": np.asarray(self.covered),
            "metadata": metadata_to_array(self.metadata, source),
        }


def validate_recon_arrays(arrays, source: str, shape: tuple[int, int] | None = None) -> dict:
    """Check a reconstruction's entries (and its frame's shape, if given); return the metadata."""
    arrays, meta = open_envelope(arrays, RECON_KEYS, REQUIRED_RECON_METADATA, source)
    try:
        Method.parse(meta["method"])
    except ValueError as exc:
        raise DataContractError(f"{source}: key 'metadata': {exc}") from None
    check_refusals(meta["refused"], source, "metadata.refused")
    obj, covered = arrays["object"], arrays["covered"]
    check_dtype(obj, "object", np.complex64, source)
    check_ndim(obj, "object", 2, source)
    check_dtype(covered, "covered", np.bool_, source)
    if covered.shape != obj.shape:
        raise DataContractError.mismatch(source, "covered", f"shape {obj.shape} (as object)", f"shape {covered.shape}")
    if shape is not None and obj.shape != tuple(shape):
        raise DataContractError.mismatch(
            source, "object", f"the ground-truth frame {tuple(shape)}", f"shape {obj.shape}"
        )
    check_finite(obj, "object", source)
    if not covered.any():
        raise DataContractError.mismatch(source, "covered", "at least one reconstructed pixel", "none")
    outside = int(np.count_nonzero(obj[~covered]))
    if outside:
        raise DataContractError.mismatch(
            source, "object", "0 outside covered", f"{outside} non-zero pixel(s) outside covered"
        )
    return meta


def save_recon(path: str | os.PathLike, recon: Reconstruction) -> None:
    """Validate and write a reconstruction (deterministic, atomic); nothing is written if invalid."""
    source = os.fspath(path)
    arrays = recon.to_arrays(source)
    validate_recon_arrays(arrays, source)
    write_npz(path, arrays)


def load_recon(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> Reconstruction:
    source = os.fspath(path)
    arrays = read_npz(path)
    meta = validate_recon_arrays(arrays, source, shape)
    return Reconstruction(arrays["object"], arrays["covered"], meta)


__all__ = ["Reconstruction", "SCHEMA_VERSION", "load_recon", "save_recon", "validate_recon_arrays"]
