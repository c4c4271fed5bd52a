"""Deterministic, atomic NPZ writing and safe (pickle-free) NPZ reading.

Why not ``np.savez``: it stamps every zip entry with the current time, so two
runs that compute identical arrays write different bytes, and checksums
(sentinels, Snakemake's small-file checksum comparison) then see a change
that is not there. :func:`write_npz` builds the archive itself with a fixed
timestamp, a fixed entry order (sorted keys) and C-ordered array data, so
equal content gives byte-identical files.

Every write goes to a temporary file in the destination directory (name
``.<target>.<random>.tmp``), is flushed and fsynced, then renamed over the
target with :func:`os.replace`. A failure at any point removes the temporary
file, so a reader sees either the old file, the complete new one, or none.

Reading never unpickles: :func:`read_npz` loads with ``allow_pickle=False``
and reports which file (and which key) could not be read as a
:class:`DataContractError`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable, Mapping

import numpy as np

__all__ = [
    "DataContractError",
    "atomic_write_bytes",
    "atomic_write_text",
    "read_npz",
    "write_npz",
]

#: Timestamp written on every zip entry (the earliest a zip file can hold).
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class DataContractError(ValueError):
    """A data file or in-memory dataset breaks the data contract.

    Defined here (and re-exported by :mod:`ptycho_core.io.datasets`) so
    that the reader can raise it without a circular import. Messages always
    name the file (or the in-memory source) and, where one is at fault, the
    key.
    """

    @classmethod
    def mismatch(cls, file: object, key: str, expected: object, found: object) -> "DataContractError":
        """Build the standard message ``"{file}: key '{key}': expected {expected}, found {found}"``."""
        return cls(f"{file}: key '{key}': expected {expected}, found {found}")


# --------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------


def _atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, then rename it to ``path``.

    The temporary file is created with ``O_EXCL`` and mode 0o666 filtered by
    the process umask (so the result has ordinary permissions, unlike
    :func:`tempfile.mkstemp`'s 0o600). It is removed if anything fails,
    including ``KeyboardInterrupt``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make a completed rename durable; best effort (not every OS allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename); create parent dirs."""
    _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8, atomically; create parent dirs."""
    atomic_write_bytes(path, text.encode("utf-8"))


# --------------------------------------------------------------------------
# NPZ
# --------------------------------------------------------------------------


def _checked_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Check keys and dtypes before anything is written; return C-ordered arrays."""
    out: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise ValueError(f"NPZ key {key!r} must be a non-empty string without '/'")
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise ValueError(f"key '{key}': object arrays need pickle and are refused")
        # Equal content must give equal bytes whatever the memory layout.
        out[key] = arr if arr.flags.c_contiguous else arr.copy(order="C")
    return out


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as a deterministic NPZ archive at ``path``, atomically.

    Entries are ``<key>.npy`` in sorted key order, stored uncompressed with
    the fixed timestamp :data:`ZIP_EPOCH`; arrays are written C-ordered with
    ``allow_pickle=False``. The result loads with :func:`numpy.load`.

    Raises:
        ValueError: a key is not a plain name, or an array has object dtype
            (nothing is written in either case).
    """
    checked = _checked_arrays(arrays)

    def write(f: BinaryIO) -> None:
        with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED) as zf:
            for key in sorted(checked):
                info = zipfile.ZipInfo(key + ".npy", date_time=ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_STORED
                info.create_system = 3  # Unix, whatever platform writes it
                info.external_attr = 0o644 << 16
                # force_zip64 as np.savez does: entries may exceed 2 GiB.
                with zf.open(info, mode="w", force_zip64=True) as entry:
                    np.lib.format.write_array(entry, checked[key], allow_pickle=False)

    _atomic_write(path, write)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load every array of the NPZ file at ``path`` eagerly, never unpickling.

    Raises:
        DataContractError: the file is missing, truncated or not an NPZ
            archive, or one of its entries cannot be read (an object array
            that needs pickle, a corrupt entry, an entry that is not ``.npy``).
            The message names the file and, where relevant, the key.
    """
    path = Path(path)
    if not path.is_file():
        raise DataContractError(f"{path}: file not found")
    try:
        npz = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise DataContractError(
            f"{path}: file is truncated or not an NPZ archive ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataContractError(f"{path}: file is truncated or not an NPZ archive (a single .npy array)")
    with npz:
        return {key: _read_entry(npz, key, path) for key in npz.files}


def _read_entry(npz: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    """Read one entry of an open NPZ file, mapping every failure to DataContractError."""
    try:
        value = npz[key]
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataContractError(
                f"{path}: key '{key}' is an object array that needs pickle; refused (allow_pickle=False)"
            ) from exc
        raise DataContractError(f"{path}: key '{key}': cannot be read ({exc})") from exc
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataContractError(
            f"{path}: key '{key}': file is truncated or not an NPZ archive ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(value, np.ndarray):
        raise DataContractError(f"{path}: key '{key}': entry is not a .npy array")
    return value
