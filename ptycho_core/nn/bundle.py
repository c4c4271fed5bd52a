"""Model bundles: Keras' own format plus a JSON sidecar, loaded in safe mode and checked.

A bundle is two files: ``model.keras`` (the object predictor, the exact
trained instance) and ``bundle.json`` (N, channels, the input normalisation
constant, the probe hash, architecture and training configuration, history
summary, the checks of the network's outcome that failed (``refused``: a
failed run, saved and scored as produced; empty for a network that works),
and the sha256 of ``model.keras``). Loading refuses a missing
sidecar, a model file whose hash differs from the sidecar's (tampered or
mixed up), and a bundle whose N, channels or probe differ from the data it
is applied to.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ptycho_core.io.npz import DataContractError, atomic_write_text
from ptycho_core.io.records import check_refusals
from ptycho_core.io.sentinel import ArtifactCheckError, sha256_file

#: 2: the sidecar's ``refused`` (list of str) names the failed outcome checks of the network and of any network
#: it was refined from.
BUNDLE_VERSION = 2

#: Reloaded-bundle predictions must match the in-memory model to this (absolute) tolerance.
RELOAD_TOLERANCE = 1e-5


class BundleError(ValueError):
    """A model bundle is missing, tampered with, or does not fit the data."""


def probe_hash(probe: np.ndarray) -> str:
    """sha256 of the probe as complex64 bytes (C order)."""
    return hashlib.sha256(np.ascontiguousarray(probe, dtype=np.complex64).tobytes()).hexdigest()


def save_bundle(model_path: str | os.PathLike, sidecar_path: str | os.PathLike, model, sidecar: dict) -> dict:
    """Save ``model`` (Keras format) and its sidecar; returns the sidecar written."""
    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = model_path.with_name(f".{model_path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, model_path)
    full = {
        **sidecar,
        "bundle_version": BUNDLE_VERSION,
        "model_file": model_path.name,
        "model_sha256": sha256_file(model_path),
    }
    atomic_write_text(sidecar_path, json.dumps(full, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return full


def read_sidecar(sidecar_path: str | os.PathLike) -> dict:
    sidecar_path = Path(sidecar_path)
    if not sidecar_path.is_file():
        raise BundleError(f"{sidecar_path}: bundle sidecar missing (expected the JSON written beside model.keras)")
    try:
        side = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{sidecar_path}: sidecar is not valid JSON ({exc})") from None
    if side.get("bundle_version") != BUNDLE_VERSION:
        raise BundleError(
            f"{sidecar_path}: key 'bundle_version': expected {BUNDLE_VERSION}, found {side.get('bundle_version')!r}"
        )
    try:
        check_refusals(side.get("refused"), str(sidecar_path), "refused")
    except DataContractError as exc:
        raise BundleError(str(exc)) from None
    return side


def load_bundle(
    model_path: str | os.PathLike, sidecar_path: str | os.PathLike, *, N: int, channels: int, probe: np.ndarray
):
    """Load a bundle in safe mode after checking it against the data; returns (model, sidecar)."""
    import keras

    from ptycho_core.nn import models  # noqa: F401  (registers the custom layers)

    model_path = Path(model_path)
    side = read_sidecar(sidecar_path)
    if not model_path.is_file():
        raise BundleError(f"{model_path}: model file missing")
    digest = sha256_file(model_path)
    if digest != side.get("model_sha256"):
        raise BundleError(
            f"{model_path}: sha256 {digest[:12]}... differs from the sidecar's "
            f"{str(side.get('model_sha256'))[:12]}...: file changed since it was saved"
        )
    expected = {"N": N, "channels": channels, "probe_sha256": probe_hash(probe)}
    for key, value in expected.items():
        if side.get(key) != value:
            raise BundleError(
                f"{sidecar_path}: key '{key}': the data need {value!r}, the bundle was trained with {side.get(key)!r}"
            )
    model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    shape = tuple(model.input.shape[1:])
    if shape != (N, N, channels):
        raise BundleError(f"{model_path}: model input shape {shape} does not match N={N}, channels={channels}")
    return model, side


def verify_reload(model, model_path, sidecar_path, x: np.ndarray, *, N: int, channels: int, probe: np.ndarray) -> float:
    """Reload a saved bundle in safe mode; its predictions on ``x`` must equal the in-memory model's."""
    amp, phase = (np.asarray(a) for a in model.predict(x, verbose=0))
    reloaded, _ = load_bundle(model_path, sidecar_path, N=N, channels=channels, probe=probe)
    amp_re, phase_re = (np.asarray(a) for a in reloaded.predict(x, verbose=0))
    diff = float(max(np.abs(amp_re - amp).max(), np.abs(phase_re - phase).max()))
    if not diff <= RELOAD_TOLERANCE:
        raise ArtifactCheckError(
            f"{model_path}: check 'reload reproduces predictions' failed: max difference {diff:.3g}"
        )
    return diff
