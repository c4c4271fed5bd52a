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
from ptycho_core.study_files import StrictLoader, merge_studies, read_study_file, source_of

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
DOCUMENTED_CONFIGS = ("config.yaml", "ladder.yaml", "full.yaml", "test.yaml")


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


# The ladder and full studies must span the regime where the methods break
# down (issue: "a default study that spans the breakdown regime"; the default study
# was cut to two doses and two views to fit 30 min, see the next test): at least four
# doses reaching below 0.2 photons per illuminated object pixel (PtyChi's dense
# phase MS-SSIM fell below 0.8 at 0.14 on the default geometry) and above 100
# (the dense view near saturation), and at least three nested views from at least 75 %
# down to at most 20 % linear overlap (linear overlap = 1 - step_fraction x stride,
# the step being a fraction of the probe's measured FWHM diameter).
def as_run(name: str):
    """The study ``snakemake --configfile config/<name>`` runs: the file merged over config/config.yaml."""
    default = read_study_file(REPO / "config" / "config.yaml")
    raw, sources = merge_studies(
        [("config/config.yaml", default), (f"config/{name}", read_study_file(REPO / "config" / name))]
    )
    return study_from_dict(raw, sources=sources)


@pytest.mark.parametrize("name", ["ladder.yaml", "full.yaml"])
def test_the_study_files_span_dose_and_overlap(name):
    from ptycho_core.physics.probe import make_probe, measure_fwhm_diameter, photons_per_illuminated_pixel

    study = as_run(name)
    assert len(study.doses) >= 4, f"{name}: {study.doses}"
    D = measure_fwhm_diameter(make_probe(study.N, study.probe))
    per_pixel = sorted(photons_per_illuminated_pixel(d, D) for d in study.doses)
    assert per_pixel[0] <= 0.2, f"{name}: lowest dose is {per_pixel[0]:.3g} photons per illuminated pixel"
    assert per_pixel[-1] >= 100.0, f"{name}: highest dose is {per_pixel[-1]:.3g} photons per illuminated pixel"
    overlaps = [1.0 - study.scan.step_fraction * v.stride for v in study.views]
    assert len(overlaps) >= 3, f"{name}: views {[v.name for v in study.views]}"
    assert max(overlaps) >= 0.75 - 1e-9 and min(overlaps) <= 0.2 + 1e-9, f"{name}: linear overlaps {overlaps}"


def test_the_default_study_keeps_both_ends_of_overlap_two_decades_of_dose_and_three_replicates():
    """config/config.yaml is the ladder cut for time (issue: cut doses or views before replicates): it keeps the
    densest and sparsest view, doses two decades apart, and at least three replicates; its geometry is the ladder's."""
    study = load_study(REPO / "config" / "config.yaml")
    ladder = as_run("ladder.yaml")
    overlaps = [1.0 - study.scan.step_fraction * v.stride for v in study.views]
    assert max(overlaps) >= 0.75 - 1e-9 and min(overlaps) <= 0.2 + 1e-9, overlaps
    assert max(study.doses) / min(study.doses) >= 100.0 - 1e-9, study.doses
    assert set(study.doses) <= set(ladder.doses) and {v.name for v in study.views} <= {v.name for v in ladder.views}
    assert len(study.seeds) >= 3, study.seeds
    assert ladder.seeds == study.seeds and ladder.N == study.N and ladder.object == study.object
    # the replication test's second set: the same study on disjoint seeds, as many
    second = as_run("second_replicates.yaml")
    assert not set(second.seeds) & set(study.seeds) and len(second.seeds) == len(study.seeds)
    assert dataclasses.replace(second, name=study.name, seeds=study.seeds) == study


# --------------------------------------------------------------------------
# Study files read strictly; errors name the study file that set the key
# --------------------------------------------------------------------------


def _load_refused(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_study(path)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("N: 32\ndoses: [100.0]\nN: 48\n", "N", "lines 1 and 3"),  # top level
        ("N: 32\nobject:\n  size: 96\n  seed: 1\n  size: 80\n", "object.size", "lines 3 and 5"),  # nested
        ("views:\n  dense: {stride: 1, stride: 2}\n", "views.dense.stride", "line 2"),  # flow mapping, one line
        ("views:\n  dense: {stride: 1}\n  dense: {stride: 2}\n", "views.dense", "lines 2 and 3"),
    ],
)
def test_a_key_named_twice_is_refused_naming_the_file_the_key_and_the_lines(tmp_path, text, key, lines):
    """PyYAML's safe_load would keep the last value silently."""
    path = tmp_path / "dup.yaml"
    path.write_text(text, encoding="utf-8")
    message = _load_refused(path)
    assert message.startswith(f"{path}: key '{key}': named twice"), message
    assert lines in message, message
    with pytest.raises(ConfigError, match=rf"key '{key}': named twice"):
        read_study_file(path)


def test_yaml_merge_keys_may_be_overridden(tmp_path):
    """A merge key (``<<``) brings keys that the mapping may set again: not a duplicate."""
    path = tmp_path / "merge.yaml"
    path.write_text("probe: &p {pupil_diameter: 12.0, defocus_waves: 0.5}\nprobe: {<<: *p}\n", encoding="utf-8")
    assert "named twice" in _load_refused(path)  # a real duplicate is still refused
    path.write_text(
        "N: 32\nobject: {size: 96}\nprobe:\n  <<: {pupil_diameter: 12.0, defocus_waves: 0.5}\n  defocus_waves: 0.7\n",
        encoding="utf-8",
    )
    assert load_study(path).probe.defocus_waves == 0.7


def test_strict_loader_reads_what_safe_load_reads():
    for path in sorted((REPO / "config").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert yaml.load(text, Loader=StrictLoader) == yaml.safe_load(text), path.name


def test_an_error_names_the_file_that_set_the_key(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("N: 32\nobject: {size: 96}\ngrouping: {K: 3}\n", encoding="utf-8")
    assert _load_refused(path) == f"{path}: key 'grouping.K': expected K >= C = gridsize^2 = 4, found 3"


def test_an_error_about_an_unset_key_names_default(tmp_path):
    """N = 160 needs an object of 320 pixels; the file leaves object.size at its default of 256."""
    path = tmp_path / "study.yaml"
    path.write_text("N: 160\n", encoding="utf-8")
    assert _load_refused(path) == "default: key 'object.size': expected at least 2*N = 320 pixels, found 256"
    assert _refused_from({"N": 160}).startswith("default: key 'object.size'")


def _refused_from(raw, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        study_from_dict(raw, **kwargs)
    return str(info.value)


def test_an_unknown_key_is_named_itself_with_its_file(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("dosez: [100.0]\n", encoding="utf-8")
    message = _load_refused(path)
    assert message.startswith(f"{path}: key 'dosez': unknown key (known keys: name, N, doses,"), message
    assert "\n" not in message  # one error, one line
    message = _refused_from({"object": {"size": 96, "colour": 1}}, source="s.yaml")
    assert message.startswith("s.yaml: key 'object.colour': unknown key (known keys: family, size,"), message


def test_several_errors_each_name_their_file():
    raw, sources = merge_studies([("base.yaml", {"N": 40}), ("mine.yaml", {"doses": [], "object": {"size": 96}})])
    message = _refused_from(raw, sources=sources)
    assert message.startswith("invalid study configuration, 2 errors:\n"), message
    assert "\n  base.yaml: key 'N': 40 is not a multiple of 16" in message
    assert "\n  mine.yaml: key 'doses': " in message


def test_merged_studies_name_the_last_file_that_set_the_key():
    """config/config.yaml sets N and object.size, a study file overrides N only: the error names each."""
    base = {"N": 32, "object": {"size": 96}, "probe": {"pupil_diameter": 12.0}, "grouping": {"gridsize": 2}}
    raw, sources = merge_studies([("config/config.yaml", base), ("config/mine.yaml", {"N": 64})])
    assert _refused_from(raw, sources=sources) == (
        "config/config.yaml: key 'object.size': expected at least 2*N = 128 pixels, found 96"
    )
    raw, sources = merge_studies([("config/config.yaml", base), ("config/mine.yaml", {"grouping": {"K": 3}})])
    assert _refused_from(raw, sources=sources).startswith("config/mine.yaml: key 'grouping.K': ")
    raw, sources = merge_studies([("config/config.yaml", base), ("config/mine.yaml", {"doses": [100.0, "x"]})])
    assert _refused_from(raw, sources=sources).startswith("config/mine.yaml: key 'doses.1': ")
    raw, sources = merge_studies([("config/config.yaml", {"doses": [100.0, "x"]}), ("config/mine.yaml", {"N": 32})])
    assert _refused_from(raw, sources=sources).startswith("config/config.yaml: key 'doses.1': ")


def test_source_of():
    _, sources = merge_studies(
        [("a.yaml", {"N": 32, "doses": [1.0, 2.0], "object": {"size": 96}}), ("b.yaml", {"object": {"seed": 3}})]
    )
    assert sources == {"N": "a.yaml", "doses": "a.yaml", "object.size": "a.yaml", "object.seed": "b.yaml"}
    assert source_of(sources, "N") == "a.yaml"
    assert source_of(sources, "doses.1") == "a.yaml"  # inside a value set whole
    assert source_of(sources, "object.seed") == "b.yaml"
    assert source_of(sources, "object") == "b.yaml"  # a section: the last file that set a key in it
    assert source_of(sources, "object.n_lines") == "default"
    assert source_of(sources, "grouping.K") == "default"
    # a value replaced by a mapping, and a mapping by a value: the keys set before are forgotten
    _, sources = merge_studies([("a.yaml", {"object": None}), ("b.yaml", {"object": {"seed": 3}})])
    assert sources == {"object.seed": "b.yaml"}
    _, sources = merge_studies([("a.yaml", {"object": {"seed": 3, "size": 96}}), ("b.yaml", {"object": "big"})])
    assert sources == {"object": "b.yaml"} and source_of(sources, "object.size") == "b.yaml"


def test_merge_is_deep_and_replaces_lists_and_views():
    base = {"doses": [1.0, 2.0, 3.0], "object": {"size": 96, "seed": 1}, "views": {"a": {"stride": 1}}}
    given = {"doses": [5.0], "object": {"seed": 2}, "views": {"b": {"stride": 2}}}
    raw, sources = merge_studies([("base.yaml", base), ("given.yaml", given)])
    assert raw == {"doses": [5.0], "object": {"size": 96, "seed": 2}, "views": {"b": {"stride": 2}}}
    assert sources["object.size"] == "base.yaml" and sources["object.seed"] == "given.yaml"
    assert source_of(sources, "views.a") == "default" and sources["views.b.stride"] == "given.yaml"
    assert base["object"] == {"size": 96, "seed": 1} and given["object"] == {"seed": 2}  # inputs untouched


def test_a_study_file_that_changes_the_object_family_replaces_the_object_section():
    """config/config.yaml's lines object has a train_seed, which a file object refuses: not merged in."""
    base = {"object": {"family": "lines", "size": 96, "seed": 1, "n_lines": 23, "train_seed": 4}}
    given = {"object": {"family": "file", "size": 72, "file": "object.npz"}}
    raw, sources = merge_studies([("config/config.yaml", base), ("config/mine.yaml", given)])
    assert raw["object"] == given["object"]
    assert source_of(sources, "object.train_seed") == "default"
    # the same family named again changes nothing: merged key by key, as without the family
    raw, _ = merge_studies([("config/config.yaml", base), ("config/mine.yaml", {"object": {"family": "lines"}})])
    assert raw["object"] == base["object"]
    # a probe of another kind brings its whole probe section too
    probe = {"probe": {"kind": "focused", "pupil_diameter": 10.0}}
    raw, _ = merge_studies([("config/config.yaml", probe), ("config/mine.yaml", {"probe": {"kind": "file"}})])
    assert raw["probe"] == {"kind": "file"}
    # without the family, the object section is merged key by key
    raw, _ = merge_studies([("config/config.yaml", base), ("config/mine.yaml", {"object": {"seed": 5}})])
    assert raw["object"] == {**base["object"], "seed": 5}


def test_the_shipped_study_files_merge_over_the_default_study():
    """Every file in config/ as `--configfile` over config/config.yaml (the workflow's merge) validates."""
    default = read_study_file(REPO / "config" / "config.yaml")
    for path in sorted((REPO / "config").glob("*.yaml")):
        raw, sources = merge_studies([("config/config.yaml", default), (f"config/{path.name}", read_study_file(path))])
        study = study_from_dict(raw, sources=sources)
        if path.name == "config.yaml":
            assert study == load_study(path)
    given = read_study_file(REPO / "config" / "test_file_object.yaml")
    raw, sources = merge_studies([("config/config.yaml", default), ("config/test_file_object.yaml", given)])
    assert study_from_dict(raw, sources=sources).object == load_study(REPO / "config" / "test_file_object.yaml").object


def test_a_non_mapping_study_file_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- N: 32\n", encoding="utf-8")
    assert _load_refused(path) == f"{path}: expected a mapping at the top level, found list"
    with pytest.raises(ConfigError, match="mine.yaml: expected a mapping"):
        merge_studies([("mine.yaml", [1])])


def test_an_empty_study_file_is_the_default_study(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing set\n", encoding="utf-8")
    assert read_study_file(path) == {}
    assert load_study(path) == study_from_dict({})


def test_a_training_seed_draw_changes_every_training_seed_and_draw_0_keeps_the_study_s():
    """training.seed_draw retrains on the same data with new seeds; draw 0 is the seed every study had."""
    import numpy as np

    from ptycho_core.streams import TRAINING, training_seed

    legacy = int(np.random.SeedSequence([3, TRAINING, *b"PtychoPINN", 0, *b"dense"]).generate_state(1)[0])
    assert training_seed(3, "PtychoPINN", "dense") == training_seed(3, "PtychoPINN", "dense", 0) == legacy
    draws = {training_seed(3, "PtychoPINN", "dense", d) for d in range(4)}
    assert len(draws) == 4
    assert training_seed(3, "Baseline", "", 1) != training_seed(3, "Baseline", "", 0)


@pytest.mark.parametrize(
    "training, expected",
    [
        ({"schedule": "plateau", "warmup_epochs": 1}, "expected 0 with schedule 'plateau'"),
        ({"schedule": "cosine", "epochs": 4, "warmup_epochs": 4}, "expected fewer than training.epochs = 4"),
    ],
)
def test_a_warmup_needs_the_cosine_schedule_and_leaves_epochs_to_decay(training, expected):
    message = _refused(small(training=training))
    assert "key 'training.warmup_epochs'" in message and expected in message


def test_a_warmup_of_a_fraction_of_an_epoch_is_accepted():
    study = study_from_dict(small(training={"schedule": "cosine", "warmup_epochs": 0.5}))
    assert study.training.warmup_epochs == 0.5
