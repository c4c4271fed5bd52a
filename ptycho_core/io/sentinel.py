"""JSON sentinels: the record that a rule validated what it wrote (docs/DESIGN.md section 2).

A rule writes its outputs, checks them, and only then calls
:func:`write_sentinel`, which records every input and output with its sha256
and size, the checks performed with their values, the config hash, the code
and library versions and the wall time. Downstream rules take the sentinel as
input and may call :func:`verify_sentinel` to confirm that the outputs are
still exactly the ones that were checked.

Paths are recorded as given (relative paths, so results can move); they are
resolved against the current directory, or ``root`` in :func:`verify_sentinel`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ptycho_core.io.npz import atomic_write_text

__all__ = [
    "DEFAULT_LIBRARIES",
    "SentinelError",
    "code_version",
    "library_versions",
    "provenance",
    "sha256_file",
    "verify_sentinel",
    "write_sentinel",
]

#: Distributions whose versions a sentinel records (those installed).
DEFAULT_LIBRARIES = (
    "numpy",
    "scipy",
    "matplotlib",
    "pyyaml",
    "jsonschema",
    "snakemake",
    "tensorflow",
    "keras",
    "torch",
    "ptychi",
)

_CHUNK = 1 << 20


class ArtifactCheckError(RuntimeError):
    """A written artifact failed a verification check (the message names both)."""


class SentinelError(ValueError):
    """A sentinel cannot be written or does not match the files it lists."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def code_version() -> str:
    """``git describe --always --dirty`` of the repository holding this package.

    Used only when the package's own ``__init__.py`` is tracked by that
    repository (so an installed copy inside some other checkout, e.g. a
    virtual environment in the project folder, does not report that
    checkout). Otherwise, or if git is unavailable or slow, falls back to
    ``ptycho_core.__version__``. Never raises.
    """
    from ptycho_core import __version__

    package_dir = Path(__file__).resolve().parents[1]  # ptycho_core/
    try:
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", "__init__.py"],
            cwd=package_dir,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if tracked.returncode == 0:
            described = subprocess.run(
                ["git", "describe", "--always", "--dirty"],
                cwd=package_dir,
                capture_output=True,
                text=True,
                timeout=10,
            )
            version = described.stdout.strip()
            if described.returncode == 0 and version:
                return version
    except Exception:  # noqa: BLE001 (provenance must never break a job)
        pass
    return str(__version__)


def provenance(study) -> dict:
    """What every data artifact records of its origin: the whole study's config hash and the code version."""
    return {"config_hash": study.config_hash(), "code_version": code_version()}


def library_versions(names: Iterable[str] = DEFAULT_LIBRARIES) -> dict[str, str]:
    """Installed versions of the distributions ``names`` (missing ones skipped); the sentinel records Python's
    beside them."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _json_default(value: Any) -> Any:
    """Let numpy scalars and arrays into the JSON (NaN is still refused afterwards)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _file_records(paths: Sequence[str | os.PathLike], role: str, sentinel: str) -> list[dict]:
    records = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise SentinelError(f"{sentinel}: {role} '{os.fspath(path)}' does not exist or is not a file")
        records.append({"path": os.fspath(path), "sha256": sha256_file(p), "bytes": p.stat().st_size})
    return records


def write_sentinel(
    path: str | os.PathLike,
    *,
    step: str,
    inputs: Sequence[str | os.PathLike],
    outputs: Sequence[str | os.PathLike],
    checks: dict,
    config_hash: str,
    wall_time_s: float,
    extra: dict | None = None,
    section_hashes: dict[str, str] | None = None,
) -> dict:
    """Write the sentinel JSON at ``path`` (atomically) and return what was written.

    Every input and output must exist; each is recorded as
    ``{path, sha256, bytes}``. ``section_hashes``: the hashes of the
    configuration sections the step depends on (by group name). ``checks`` (and ``extra``) must be
    JSON-serialisable; numpy scalars and arrays are converted, NaN and
    infinity are refused.

    Raises:
        SentinelError: no outputs, a listed file is missing, a check value
            is NaN/infinite or not serialisable, or the wall time is invalid.
    """
    where = os.fspath(path)
    if not outputs:
        raise SentinelError(f"{where}: a sentinel must list at least one output")
    if not isinstance(wall_time_s, (int, float)) or not math.isfinite(wall_time_s) or wall_time_s < 0:
        raise SentinelError(f"{where}: wall_time_s must be a finite number >= 0, found {wall_time_s!r}")
    record = {
        "step": str(step),
        "inputs": _file_records(inputs, "input", where),
        "outputs": _file_records(outputs, "output", where),
        "checks": checks,
        "config_hash": str(config_hash),
        "section_hashes": dict(section_hashes or {}),
        "code_version": code_version(),
        "library_versions": library_versions(),
        "python": platform.python_version(),
        "wall_time_s": float(wall_time_s),
        "extra": extra if extra is not None else {},
    }
    try:
        text = json.dumps(record, indent=2, allow_nan=False, default=_json_default)
    except ValueError as exc:
        raise SentinelError(f"{where}: checks/extra contain NaN or infinity, which a sentinel refuses ({exc})") from exc
    except TypeError as exc:
        raise SentinelError(f"{where}: checks/extra are not JSON-serialisable ({exc})") from exc
    atomic_write_text(path, text + "\n")
    return json.loads(text)


def verify_sentinel(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> dict:
    """Check that every output listed in the sentinel at ``path`` is unchanged.

    Relative output paths are resolved against ``root`` (default: the
    current directory). Returns the parsed sentinel.

    Raises:
        SentinelError: the sentinel is missing or malformed, or an output is
            missing or its size or sha256 differs from the record.
    """
    where = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except FileNotFoundError as exc:
        raise SentinelError(f"{where}: sentinel not found") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise SentinelError(f"{where}: sentinel is not readable JSON ({exc})") from exc
    outputs = record.get("outputs") if isinstance(record, dict) else None
    if not isinstance(outputs, list) or not outputs:
        raise SentinelError(f"{where}: sentinel lists no outputs")
    base = Path(root) if root is not None else Path.cwd()
    step = record.get("step", "the step that wrote it")
    what_next = (
        f"; the file is not the one step '{step}' checked: run that step again and what follows it "
        f"(snakemake -R {step}), or put the original file back"
    )
    for entry in outputs:
        try:
            rel, expected_sha, expected_bytes = entry["path"], entry["sha256"], entry["bytes"]
        except (TypeError, KeyError) as exc:
            raise SentinelError(f"{where}: malformed output record {entry!r}") from exc
        target = base / rel
        if not target.is_file():
            raise SentinelError(f"{where}: output '{rel}' is missing{what_next}")
        size = target.stat().st_size
        if size != expected_bytes:
            raise SentinelError(
                f"{where}: output '{rel}' changed (size {size} bytes, recorded {expected_bytes}){what_next}"
            )
        actual_sha = sha256_file(target)
        if actual_sha != expected_sha:
            raise SentinelError(
                f"{where}: output '{rel}' changed (sha256 {actual_sha}, recorded {expected_sha}){what_next}"
            )
    return record
