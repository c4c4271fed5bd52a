"""Tests of the study configuration (docs/DESIGN.md section 3 and lesson 1).

One YAML file, validated once against the schema plus cross-field checks,
frozen dataclasses, a stable config hash, and errors that name the file and
the key at fault.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml

from ptycho_core.config import (
    ConfigError,
    StudyConfig,
    dose_label,
    load_schema,
    load_study,
    study_from_dict,
)
from ptycho_core.physics.objects import make_object

REPO = Path(__file__).resolve().parents[1]


def small(**extra):
    """A valid small study, nested sections merged (a fresh dict every call).

    N = 32 needs a pupil below N/2 = 16 and an object of at least 2N pixels.
    """
    raw = {"N": 32, "object": {"size": 96}, "probe": {"pupil_diameter": 12.0}}
    for key, value in extra.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and key in raw else value
    return raw


def _schema_defaults(schema: dict) -> dict:
    """Every default the schema declares, nested objects filled recursively."""
    out = {}
    for name, sub in schema["properties"].items():
        if sub.get("type") == "object" and "properties" in sub:
            out[name] = _schema_defaults(sub)
        else:
            out[name] = sub["default"]
    return out


# --------------------------------------------------------------------------
# Defaults and the repository's own config files
# --------------------------------------------------------------------------


def test_empty_config_validates_and_fills_every_default():
    study = study_from_dict({})
    assert isinstance(study, StudyConfig)
    schema = load_schema()
    defaults = _schema_defaults(schema)
    got = study.to_dict()
    assert set(got) == set(schema["properties"])
    for section in ("object", "probe", "scan", "split", "grouping"):
        assert set(got[section]) == set(schema["properties"][section]["properties"]), section
    # Every value is the schema's default (doses/seeds normalised to lists of numbers).
    assert got == defaults
    assert study.N % 16 == 0
    assert study.doses == tuple(float(d) for d in defaults["doses"])
    assert all(isinstance(d, float) for d in study.doses)
    assert all(isinstance(s, int) for s in study.seeds)


def test_none_is_the_empty_config():
    assert study_from_dict(None) == study_from_dict({})


def test_every_schema_property_has_default_and_description():
    def walk(schema, path):
        for name, sub in schema["properties"].items():
            key = f"{path}{name}"
            assert "default" in sub, f"{key} has no default"
            assert sub.get("description"), f"{key} has no description"
            if sub.get("type") == "object" and "properties" in sub:
                assert sub.get("additionalProperties") is False, f"{key} accepts unknown keys"
                walk(sub, key + ".")
            elif sub.get("type") == "object":  # a mapping of named entries (views)
                entry = sub["additionalProperties"]
                assert entry.get("additionalProperties") is False, f"{key} entries accept unknown keys"
                for name, prop in entry["properties"].items():
                    assert prop.get("description"), f"{key}.*.{name} has no description"

    schema = load_schema()
    assert schema.get("additionalProperties") is False
    walk(schema, "")


def test_study_from_dict_does_not_mutate_its_input():
    raw = small()
    study_from_dict(raw)
    assert raw == small()


#: The study files the README documents; each must exist and validate.
DOCUMENTED_CONFIGS = ("config.yaml", "full.yaml", "test.yaml")


def test_the_documented_config_files_exist():
    present = {p.name for p in (REPO / "config").glob("*.yaml")}
    missing = set(DOCUMENTED_CONFIGS) - present
    assert not missing, f"config/ lacks {sorted(missing)}"


@pytest.mark.parametrize("name", sorted({p.name for p in (REPO / "config").glob("*.yaml")} | set(DOCUMENTED_CONFIGS)))
def test_repository_config_files_load(name):
    path = REPO / "config" / name
    assert path.is_file(), f"{path} is missing"
    study = load_study(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    assert study.N == raw.get("N", study.N)
    if "doses" in raw:
        assert study.doses == tuple(float(d) for d in raw["doses"])
    # The file's explicit values survive validation unchanged.
    got = study.to_dict()
    for key, value in raw.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                assert got[key][sub] == v, f"{name}: {key}.{sub}"
        elif key not in ("doses", "seeds"):
            assert got[key] == value, f"{name}: {key}"


def test_load_study_round_trips_a_written_file(tmp_path):
    path = tmp_path / "study.yaml"
    study = study_from_dict(small(name="round-trip", doses=[100.0, 2.5e4]))
    path.write_text(yaml.safe_dump(study.to_dict()), encoding="utf-8")
    back = load_study(path)
    assert back == study
    assert back.config_hash() == study.config_hash()


# --------------------------------------------------------------------------
# Refusals: ConfigError naming the key (and the file)
# --------------------------------------------------------------------------


def _refused(raw) -> str:
    with pytest.raises(ConfigError) as info:
        study_from_dict(raw, source="study.yaml")
    message = str(info.value)
    assert "study.yaml" in message, message
    return message


@pytest.mark.parametrize("N", [40, 24, 8, 100])
def test_N_not_multiple_of_16_is_refused(N):
    message = _refused({"N": N})
    assert "'N'" in message


@pytest.mark.parametrize("dose", [0, -5, 0.0])
def test_non_positive_dose_is_refused(dose):
    message = _refused({"doses": [1000.0, dose]})
    assert "doses" in message


def test_unknown_top_level_key_is_refused():
    message = _refused({"dosez": [1000.0]})
    assert "dosez" in message


@pytest.mark.parametrize("section", ["object", "probe", "scan", "split"])
def test_unknown_nested_key_is_refused(section):
    message = _refused({section: {"foo": 1}})
    assert section in message and "foo" in message


def test_empty_dose_list_is_refused():
    assert "doses" in _refused({"doses": []})


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"doses": "abc"}, "doses"),
        ({"doses": ["abc"]}, "doses"),
        ({"N": "64"}, "N"),
        ({"N": 64.5}, "N"),
        ({"seeds": [0.5]}, "seeds"),
        ({"object": {"family": "squares"}}, "object.family"),
        ({"probe": {"kind": "vortex"}}, "probe.kind"),
        ({"scan": {"pattern": "spiral"}}, "scan.pattern"),
        ({"split": {"axis": "z"}}, "split.axis"),
        ({"training": {"precision": "float16"}}, "training.precision"),
        ({"object": "big"}, "object"),
    ],
)
def test_wrong_type_or_value_is_refused(raw, key):
    assert f"'{key}" in _refused(raw)


@pytest.mark.parametrize("doses", [[1000.0, 1000.0], [1000, 1000.0], [1000.0, 1000.0000001]])
def test_duplicate_doses_are_refused(doses):
    """Equal doses, or doses that share a path label, cannot both be in the ladder."""
    assert "doses" in _refused({"doses": doses})


def test_duplicate_seeds_are_refused():
    assert "seeds" in _refused({"seeds": [0, 0]})


@pytest.mark.parametrize(("N", "size"), [(64, 127), (32, 63), (64, 100)])
def test_object_smaller_than_2N_is_refused(N, size):
    assert "object.size" in _refused({"N": N, "object": {"size": size}})


def test_object_of_exactly_2N_is_accepted():
    assert study_from_dict(small(object={"size": 64})).object.size == 64


@pytest.mark.parametrize(("N", "pupil"), [(64, 32.0), (64, 40.0), (32, 16.0)])
def test_pupil_at_or_above_half_N_is_refused(N, pupil):
    message = _refused({"N": N, "object": {"size": 2 * N}, "probe": {"pupil_diameter": pupil}})
    assert "probe.pupil_diameter" in message


def test_pupil_just_below_half_N_is_accepted():
    assert study_from_dict({"N": 64, "probe": {"pupil_diameter": 31.9}}).probe.pupil_diameter == 31.9


def test_disk_larger_than_half_N_is_refused():
    message = _refused({"N": 32, "object": {"size": 64}, "probe": {"kind": "disk", "disk_diameter": 17.0}})
    assert "probe.disk_diameter" in message


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"object": {"amplitude_contrast": 1.0}}, "object.amplitude_contrast"),
        ({"object": {"phase_max": 4.0}}, "object.phase_max"),
        ({"split": {"guard_diameters": 0.5}}, "split.guard_diameters"),
        ({"split": {"test_fraction": 1.0}}, "split.test_fraction"),
        ({"scan": {"jitter": 0.6}}, "scan.jitter"),
        ({"scan": {"step_fraction": 0}}, "scan.step_fraction"),
    ],
)
def test_out_of_range_physics_is_refused(raw, key):
    assert f"'{key}'" in _refused(raw)


def test_all_errors_are_reported_together():
    message = _refused({"N": 40, "doses": []})
    assert "'N'" in message and "'doses'" in message


def test_yaml_exponent_without_dot_is_refused_naming_the_key(tmp_path):
    """PyYAML (YAML 1.1) reads ``1e3`` as a string, not a number: refused, naming the key."""
    path = tmp_path / "study.yaml"
    path.write_text("doses: [1e3, 1.0e4]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_study(path)
    assert str(path) in str(info.value) and "'doses.0'" in str(info.value)


def test_non_mapping_top_level_is_refused():
    with pytest.raises(ConfigError, match="mapping"):
        study_from_dict([1, 2, 3], source="study.yaml")


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nowhere" / "study.yaml"
    with pytest.raises(ConfigError) as info:
        load_study(path)
    assert str(path) in str(info.value)
    assert "not found" in str(info.value)


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("N: [64\ndoses: {", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_study(path)
    assert str(path) in str(info.value)
    assert "YAML" in str(info.value)


def test_invalid_values_in_a_file_name_the_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("N: 40\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_study(path)
    assert str(path) in str(info.value) and "'N'" in str(info.value)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# --------------------------------------------------------------------------
# Frozen, hashed, typed
# --------------------------------------------------------------------------


def test_study_config_is_frozen():
    study = study_from_dict({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.N = 32  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.probe.pupil_diameter = 8.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.object.seed = 1  # type: ignore[misc]
    assert isinstance(study.doses, tuple) and isinstance(study.seeds, tuple)


def test_config_hash_is_stable():
    a = study_from_dict(small())
    b = study_from_dict(small())
    assert a.config_hash() == a.config_hash() == b.config_hash()
    assert len(a.config_hash()) == 64 and int(a.config_hash(), 16) >= 0
    # Key order in the input does not matter.
    c = study_from_dict({"probe": {"pupil_diameter": 12.0}, "object": {"size": 96}, "N": 32})
    assert c.config_hash() == a.config_hash()


@pytest.mark.parametrize(
    "change",
    [
        {"N": 48},
        {"name": "other"},
        {"doses": [1000.0, 10000.0]},
        {"seeds": [0, 1]},
        {"object": {"seed": 1235}},
        {"probe": {"defocus_waves": 0.5}},
        {"scan": {"step_fraction": 0.5}},
        {"split": {"axis": "y"}},
    ],
)
def test_config_hash_changes_with_any_value(change):
    assert study_from_dict(change).config_hash() != study_from_dict({}).config_hash()


def test_integer_valued_spellings_give_a_usable_config():
    """YAML writes 256 and 256.0 for the same size; both must give the same study.

    The schema accepts 256.0 as an integer (JSON Schema: a number with zero
    fractional part), so the config must normalise it: the object generator
    needs an int, and the config hash must not depend on the spelling.
    """
    a = study_from_dict(small(object={"size": 96, "n_lines": 20}))
    b = study_from_dict(small(object={"size": 96.0, "n_lines": 20.0}))
    assert make_object(b.object).shape == (96, 96)  # TypeError if size stays a float
    assert isinstance(b.object.size, int) and isinstance(b.object.n_lines, int)
    assert b.config_hash() == a.config_hash()


def test_equal_configs_have_equal_hashes():
    """A float key written as an integer (pupil_diameter: 16) is the same study as 16.0."""
    a = study_from_dict({"probe": {"pupil_diameter": 16}})
    b = study_from_dict({"probe": {"pupil_diameter": 16.0}})
    assert a == b
    assert a.config_hash() == b.config_hash()


# --------------------------------------------------------------------------
# Dose labels
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dose", "label"),
    [
        (1000, "1e3"),
        (25000, "2.5e4"),
        (1e4, "1e4"),
        (100000.0, "1e5"),
        (10, "1e1"),
        (1, "1e0"),
        (0.5, "5e-1"),
        (123456, "1.23456e5"),
    ],
)
def test_dose_label(dose, label):
    assert dose_label(dose) == label


@pytest.mark.parametrize("dose", [1.0, 10.0, 1e3, 2.5e4, 1e5, 3.3e6, 7.5e-2, 123456.0, 1234567.0])
def test_dose_label_round_trips_through_float(dose):
    label = dose_label(dose)
    assert float(label) == dose
    assert all(ch.isalnum() or ch in ".-" for ch in label)  # path-safe


def test_dose_labels_in_ladder_order():
    study = study_from_dict({"doses": [1e5, 1e3, 2.5e4]})
    labels = study.dose_labels()
    assert list(labels) == ["1e5", "1e3", "2.5e4"]
    assert all(math.isclose(float(k), v) for k, v in labels.items())


def test_config_readme_is_the_rendered_schema():
    from ptycho_core.config_reference import render

    text = (REPO / "config" / "README.md").read_text(encoding="utf-8")
    assert text == render(), (
        "config/README.md is stale: run `python -m ptycho_core.config_reference > config/README.md`"
    )
    schema = load_schema()
    for section, spec in schema["properties"].items():
        assert f"## `{section}`" in text
        for key in spec.get("properties", {}):
            assert f"`{section}.{key}`" in text


# The default and full studies must span the regime where the methods break
# down (issue: "a default study that spans the breakdown regime"): at least four
# doses reaching below 0.2 photons per illuminated object pixel (PtyChi's dense
# phase MS-SSIM fell below 0.8 at 0.14 on the default geometry) and above 100
# (the dense view near saturation), and at least three nested views from at least 75 %
# down to at most 20 % linear overlap (linear overlap = 1 - step_fraction x stride,
# the step being a fraction of the probe's measured FWHM diameter).
@pytest.mark.parametrize("name", ["config.yaml", "full.yaml"])
def test_the_study_files_span_dose_and_overlap(name):
    from ptycho_core.physics.probe import make_probe, measure_fwhm_diameter, photons_per_illuminated_pixel

    study = load_study(REPO / "config" / name)
    assert len(study.doses) >= 4, f"{name}: {study.doses}"
    D = measure_fwhm_diameter(make_probe(study.N, study.probe))
    per_pixel = sorted(photons_per_illuminated_pixel(d, D) for d in study.doses)
    assert per_pixel[0] <= 0.2, f"{name}: lowest dose is {per_pixel[0]:.3g} photons per illuminated pixel"
    assert per_pixel[-1] >= 100.0, f"{name}: highest dose is {per_pixel[-1]:.3g} photons per illuminated pixel"
    overlaps = [1.0 - study.scan.step_fraction * v.stride for v in study.views]
    assert len(overlaps) >= 3, f"{name}: views {[v.name for v in study.views]}"
    assert max(overlaps) >= 0.75 - 1e-9 and min(overlaps) <= 0.2 + 1e-9, f"{name}: linear overlaps {overlaps}"
