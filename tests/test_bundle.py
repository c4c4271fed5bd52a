"""Model bundles (docs/DESIGN.md section 5): Keras format plus JSON sidecar, safe-mode load, checked against the data.

A bundle must reload and reproduce its own predictions; a bundle that is
incomplete, tampered with, or made for other data must be refused with a
:class:`BundleError` naming the file and the key or check. Models are tiny
(filters (4, 8, 8), N = 16) so the file runs in a few seconds.
"""

from __future__ import annotations

import json
import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ptycho_core.nn import models  # noqa: E402
from ptycho_core.nn.bundle import (  # noqa: E402
    BUNDLE_VERSION,
    BundleError,
    load_bundle,
    probe_hash,
    read_sidecar,
    save_bundle,
)
from ptycho_core.physics.probe import disk_probe, focused_probe  # noqa: E402

# Keras' TensorFlow backend converts tensors with np.array(x), which NumPy 2 warns about; not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

N = 16
ARCH = models.ArchitectureConfig(filters=(4, 8, 8), amplitude_max=1.5)


def np_(x) -> np.ndarray:
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


@pytest.fixture(scope="module")
def probe():
    return focused_probe(N, pupil_diameter=6.0, defocus_waves=0.5).astype(np.complex64) * 30.0


def _sidecar(probe, channels: int, scale: float) -> dict:
    return {
        "method": "PtychoPINN" if channels > 1 else "Baseline",
        "N": N,
        "channels": channels,
        "gridsize": int(round(channels**0.5)),
        "input_scale": scale,
        "probe_sha256": probe_hash(probe),
        "architecture": {"filters": list(ARCH.filters), "amplitude_max": ARCH.amplitude_max},
        "training": {"epochs": 1, "seed": 123},
        "refused": [],
    }


def _inputs(channels: int) -> np.ndarray:
    return np.random.default_rng(channels).uniform(0, 8, size=(3, N, N, channels)).astype(np.float32)


@pytest.fixture(scope="module", params=[1, 4], ids=["channels1", "channels4"])
def saved(request, tmp_path_factory, probe):
    """A freshly built (untrained, seeded) object model saved as a bundle, with its in-memory predictions."""
    channels = request.param
    keras.utils.set_random_seed(channels)
    scale = 0.37
    model = models.build_object_model(N, channels, scale, ARCH, f"obj{channels}")
    x = _inputs(channels)
    amp, phase = (np_(a) for a in model.predict(x, verbose=0))
    d = tmp_path_factory.mktemp(f"bundle{channels}")
    model_path, side_path = d / "model.keras", d / "bundle.json"
    written = save_bundle(model_path, side_path, model, _sidecar(probe, channels, scale))
    return {
        "channels": channels,
        "model_path": model_path,
        "side_path": side_path,
        "written": written,
        "x": x,
        "amp": amp,
        "phase": phase,
        "dir": d,
    }


def _copy_bundle(saved, tmp_path):
    """A private copy of a saved bundle, to damage."""
    m, s = tmp_path / "model.keras", tmp_path / "bundle.json"
    m.write_bytes(saved["model_path"].read_bytes())
    s.write_text(saved["side_path"].read_text())
    return m, s


# --------------------------------------------------------------------------
# round trip
# --------------------------------------------------------------------------


def test_round_trip_reproduces_predictions(saved, probe):
    model, side = load_bundle(saved["model_path"], saved["side_path"], N=N, channels=saved["channels"], probe=probe)
    amp, phase = (np_(a) for a in model.predict(saved["x"], verbose=0))
    assert amp.shape == saved["amp"].shape == (3, N // 2, N // 2, saved["channels"])
    assert np.abs(amp - saved["amp"]).max() <= 1e-6
    assert np.abs(phase - saved["phase"]).max() <= 1e-6
    # the custom layers came back with their configuration (amplitude bound, input scale)
    assert model.get_layer("amplitude").amplitude_max == ARCH.amplitude_max
    assert model.get_layer("input_scale").scale == pytest.approx(0.37)
    assert side == saved["written"]


def test_sidecar_keys(saved, probe):
    side = json.loads(saved["side_path"].read_text())
    for key in (
        "N",
        "channels",
        "gridsize",
        "input_scale",
        "probe_sha256",
        "architecture",
        "training",
        "bundle_version",
        "model_file",
        "model_sha256",
    ):
        assert key in side, key
    assert side["bundle_version"] == BUNDLE_VERSION
    assert side["model_file"] == "model.keras"
    assert side["N"] == N and side["channels"] == saved["channels"]
    assert side["probe_sha256"] == probe_hash(probe)
    assert len(side["model_sha256"]) == 64
    assert side == read_sidecar(saved["side_path"])


def test_save_leaves_only_the_two_files(saved):
    assert sorted(p.name for p in saved["dir"].iterdir()) == ["bundle.json", "model.keras"]


def test_save_into_new_directory_and_overwrite(tmp_path, probe):
    keras.utils.set_random_seed(0)
    model = models.build_object_model(N, 1, 1.0, ARCH, "obj")
    m, s = tmp_path / "a" / "b" / "model.keras", tmp_path / "a" / "b" / "bundle.json"
    first = save_bundle(m, s, model, _sidecar(probe, 1, 1.0))
    second = save_bundle(m, s, model, _sidecar(probe, 1, 1.0))
    assert m.is_file() and s.is_file()
    load_bundle(m, s, N=N, channels=1, probe=probe)
    assert first["bundle_version"] == second["bundle_version"] == BUNDLE_VERSION


def test_mixed_bfloat16_bundle_reloads_with_its_policies(tmp_path, probe):
    """A model trained with the bfloat16 body reloads computing exactly as it was saved
    (the policy is in each layer's config)."""
    keras.utils.set_random_seed(2)
    arch = models.ArchitectureConfig(filters=(4, 8, 8), amplitude_max=1.5, precision="mixed_bfloat16")
    model = models.build_object_model(N, 4, 0.37, arch, "fast")
    x = _inputs(4)
    before = [np_(a) for a in model.predict(x, verbose=0)]
    m, s = tmp_path / "model.keras", tmp_path / "bundle.json"
    save_bundle(m, s, model, _sidecar(probe, 4, 0.37))
    reloaded, _ = load_bundle(m, s, N=N, channels=4, probe=probe)
    policies = {layer.name: layer.dtype_policy.name for layer in reloaded.layers if hasattr(layer, "dtype_policy")}
    assert policies["enc0_conv1"] == policies["amp_dec1_conv2"] == "mixed_bfloat16"
    assert policies["amp_out"] == policies["phase"] == policies["input_scale"] == "float32"
    after = [np_(a) for a in reloaded.predict(x, verbose=0)]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_safe_mode_refuses_lambda_layer(tmp_path, probe):
    """A bundle holding arbitrary Python code (a Lambda layer) is not deserialised: load_model runs in safe mode."""
    inp = keras.Input((N, N, 1))
    out = keras.layers.Lambda(lambda t: t * 2.0)(inp)
    model = keras.Model(inp, out)
    m, s = tmp_path / "model.keras", tmp_path / "bundle.json"
    save_bundle(m, s, model, _sidecar(probe, 1, 1.0))
    with pytest.raises(Exception, match="safe_mode"):
        load_bundle(m, s, N=N, channels=1, probe=probe)


# --------------------------------------------------------------------------
# refused bundles
# --------------------------------------------------------------------------


def test_missing_sidecar(saved, tmp_path, probe):
    m, s = _copy_bundle(saved, tmp_path)
    s.unlink()
    with pytest.raises(BundleError, match="bundle.json.*sidecar missing"):
        load_bundle(m, s, N=N, channels=saved["channels"], probe=probe)


def test_missing_model_file(saved, tmp_path, probe):
    m, s = _copy_bundle(saved, tmp_path)
    m.unlink()
    with pytest.raises(BundleError, match="model.keras.*missing"):
        load_bundle(m, s, N=N, channels=saved["channels"], probe=probe)


def test_wrong_N(saved, probe):
    with pytest.raises(BundleError, match="bundle.json.*'N'.*32.*16"):
        load_bundle(saved["model_path"], saved["side_path"], N=32, channels=saved["channels"], probe=probe)


def test_wrong_channels(saved, probe):
    other = 4 if saved["channels"] == 1 else 1
    with pytest.raises(BundleError, match="bundle.json.*'channels'"):
        load_bundle(saved["model_path"], saved["side_path"], N=N, channels=other, probe=probe)


def test_different_probe(saved, probe):
    with pytest.raises(BundleError, match="bundle.json.*'probe_sha256'"):
        load_bundle(saved["model_path"], saved["side_path"], N=N, channels=saved["channels"], probe=probe * 1.01)
    with pytest.raises(BundleError, match="probe_sha256"):
        load_bundle(saved["model_path"], saved["side_path"], N=N, channels=saved["channels"], probe=disk_probe(N, 6.0))


def test_tampered_model_file(saved, tmp_path, probe):
    m, s = _copy_bundle(saved, tmp_path)
    data = bytearray(m.read_bytes())
    data[len(data) // 2] ^= 0xFF
    m.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.keras.*sha256.*changed"):
        load_bundle(m, s, N=N, channels=saved["channels"], probe=probe)


def test_model_swapped_for_another_bundle(saved, tmp_path, probe):
    """A different (valid) model file behind an existing sidecar is caught by the hash."""
    m, s = _copy_bundle(saved, tmp_path)
    keras.utils.set_random_seed(99)
    models.build_object_model(N, saved["channels"], 0.37, ARCH, "other").save(m)
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(m, s, N=N, channels=saved["channels"], probe=probe)


def test_sidecar_not_json(saved, tmp_path, probe):
    m, s = _copy_bundle(saved, tmp_path)
    s.write_text("{not json")
    with pytest.raises(BundleError, match="bundle.json.*not valid JSON"):
        load_bundle(m, s, N=N, channels=saved["channels"], probe=probe)


@pytest.mark.parametrize("version", [BUNDLE_VERSION + 1, None, "1"])
def test_wrong_bundle_version(saved, tmp_path, probe, version):
    m, s = _copy_bundle(saved, tmp_path)
    side = json.loads(s.read_text())
    if version is None:
        del side["bundle_version"]
    else:
        side["bundle_version"] = version
    s.write_text(json.dumps(side))
    with pytest.raises(BundleError, match="bundle.json.*'bundle_version'"):
        load_bundle(m, s, N=N, channels=saved["channels"], probe=probe)


@pytest.mark.parametrize("refused", [None, "phase saturated", [1]])
def test_sidecar_without_its_list_of_refusals(saved, tmp_path, probe, refused):
    """Every bundle says which outcome checks of its network failed (an empty list when none did)."""
    m, s = _copy_bundle(saved, tmp_path)
    side = json.loads(s.read_text())
    if refused is None:
        del side["refused"]
    else:
        side["refused"] = refused
    s.write_text(json.dumps(side))
    with pytest.raises(BundleError, match="bundle.json: key 'refused': expected a list"):
        load_bundle(m, s, N=N, channels=saved["channels"], probe=probe)


def test_sidecar_that_lies_about_the_model_shape(tmp_path, probe):
    """The sidecar passes every key check but the model inside has another input shape: refused after loading."""
    keras.utils.set_random_seed(0)
    model = models.build_object_model(N, 1, 1.0, ARCH, "obj")
    m, s = tmp_path / "model.keras", tmp_path / "bundle.json"
    save_bundle(m, s, model, {**_sidecar(probe, 1, 1.0), "channels": 4})
    with pytest.raises(BundleError, match="model.keras.*input shape"):
        load_bundle(m, s, N=N, channels=4, probe=probe)


def test_bundle_error_is_a_value_error():
    assert issubclass(BundleError, ValueError)


# --------------------------------------------------------------------------
# probe hash
# --------------------------------------------------------------------------


def test_probe_hash_stable_and_discriminating():
    p = focused_probe(N, 6.0, defocus_waves=0.5)
    h = probe_hash(p)
    assert h == probe_hash(p.copy()) == probe_hash(p.astype(np.complex64))
    assert len(h) == 64 and int(h, 16) >= 0
    # layout does not matter (C order of the values), values do
    assert probe_hash(np.asfortranarray(p)) == h
    assert probe_hash(p * 2) != h
    ramp = np.exp(0.3j * np.arange(N))[None, :]  # the focused probe is symmetric; make one that is not
    assert probe_hash((p * ramp).T) != probe_hash(p * ramp)
    assert probe_hash(focused_probe(N, 6.0, defocus_waves=0.6)) != h
    assert probe_hash(disk_probe(N, 6.0)) != h
    q = p.astype(np.complex64)
    q[3, 4] += np.complex64(1e-3)
    assert probe_hash(q) != h
