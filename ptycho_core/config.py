"""Study configuration: one YAML file, validated once, frozen dataclasses.

The JSON schema (``workflow/schemas/config.schema.yaml``, where a deployed
workflow finds it; ``config.schema.yaml`` beside this module links to it) is the single source
of keys, descriptions and defaults. :func:`study_from_dict` validates a raw
mapping against it, fills the defaults, applies the checks a schema cannot
express, and returns an immutable :class:`StudyConfig` that is passed
explicitly to every function that needs it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from ptycho_core.streams import replicate_object_seed
from ptycho_core.study_files import ConfigError, merge_studies, read_study_file, source_of

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


def _sources_of_raw(raw: Any, source: str) -> dict[str, str]:
    """Every value ``raw`` sets attributed to ``source`` (one study file, or one mapping)."""
    return merge_studies([(source, raw)])[1] if isinstance(raw, Mapping) else {}


@dataclass(frozen=True)
class ObjectConfig:
    family: str
    size: int
    seed: int
    amplitude_contrast: float
    phase_max: float
    feature_size: float
    n_lines: int
    train_seed: int | None
    file: str | None
    key: str
    amplitude_file: str | None
    phase_file: str | None
    file_pixel_size: float
    normalise: bool
    train_file: str | None
    train_amplitude_file: str | None
    train_phase_file: str | None

    def training_object(self) -> "ObjectConfig":
        """The object the training split is simulated on: a second draw with ``train_seed``, or this one.

        A family-``file`` object has no seed to redraw: its training object is
        read from ``train_file`` (see :meth:`source_files`), the configuration is this one.
        """
        return self if self.train_seed is None else replace(self, seed=self.train_seed)

    def for_replicate(self, seed: int) -> "ObjectConfig":
        """The objects of replicate ``seed``: a procedural family draws a new study object and training object
        (:func:`ptycho_core.streams.replicate_object_seed` of ``seed`` and ``train_seed``); a family-``file``
        object has nothing to redraw and is the same in every replicate."""
        if self.family == "file":
            return self
        train_seed = None if self.train_seed is None else replicate_object_seed(self.train_seed, seed)
        return replace(self, seed=replicate_object_seed(self.seed, seed), train_seed=train_seed)

    @property
    def separate_training(self) -> bool:
        """Whether the training split is simulated on a separate object (``train_seed``, or a training file)."""
        return self.train_seed is not None or bool(self.source_files(training=True))

    def source_files(self, *, training: bool = False) -> dict[str, str]:
        """The files a family-``file`` object (or, ``training``, its training object) is read from.

        ``{configuration key: path}``: ``{"object.file": ...}`` or the amplitude
        and phase images; ``{}`` for a procedural family (or no training file).
        Paths are as configured, relative to the working directory.
        """
        prefix = "train_" if training else ""
        names = ("file", "amplitude_file", "phase_file")
        return {
            f"object.{prefix}{n}": getattr(self, prefix + n) for n in names if getattr(self, prefix + n) is not None
        }


@dataclass(frozen=True)
class ProbeConfig:
    kind: str
    pupil_diameter: float
    central_stop: float
    defocus_waves: float
    apodisation: float
    disk_diameter: float
    file: str | None
    key: str

    def source_files(self) -> dict[str, str]:
        """``{"probe.file": path}`` for a probe read from a file, else ``{}``."""
        return {} if self.file is None else {"probe.file": self.file}


@dataclass(frozen=True)
class ScanConfig:
    pattern: str
    step_fraction: float
    jitter: float


@dataclass(frozen=True)
class SplitConfig:
    axis: str
    test_fraction: float
    guard_diameters: float


@dataclass(frozen=True)
class ViewConfig:
    name: str
    stride: int


@dataclass(frozen=True)
class GroupingConfig:
    gridsize: int
    K: int
    max_radius_diameters: float
    train_groups_per_position: int

    @property
    def C(self) -> int:
        """Members per group."""
        return self.gridsize**2


@dataclass(frozen=True)
class TrainingConfig:
    filters: tuple[int, ...]
    amplitude_max: float
    epochs: int
    batch_size: int
    learning_rate: float
    validation_fraction: float
    early_stopping_patience: int
    lr_patience: int
    schedule: str
    precision: str
    seed_draw: int
    warmup_epochs: float


@dataclass(frozen=True)
class PtyChiConfig:
    epochs: int
    batch_size: int
    probe_refinement: bool
    noise_model: str


@dataclass(frozen=True)
class RefinementConfig:
    max_steps: int
    steps_per_check: int
    check_groups: int
    batch_size: int
    learning_rate: float
    lr_patience: int
    warmup_steps: int


@dataclass(frozen=True)
class StoppingConfig:
    """The one data-only stopping rule of both refiners (PtyChi, PtychoPINN_TTR): free pixels held out of both fits."""

    free_pixel_fraction: float
    standard_errors: float
    patience: int
    check_every: int


@dataclass(frozen=True)
class StudyConfig:
    name: str
    N: int
    doses: tuple[float, ...]
    seeds: tuple[int, ...]
    object: ObjectConfig
    probe: ProbeConfig
    scan: ScanConfig
    split: SplitConfig
    views: tuple[ViewConfig, ...]
    grouping: GroupingConfig
    training: TrainingConfig
    ptychi: PtyChiConfig
    refinement: RefinementConfig
    stopping: StoppingConfig

    def view(self, name: str) -> ViewConfig:
        for v in self.views:
            if v.name == name:
                return v
        raise KeyError(f"view {name!r} is not defined; views: {[v.name for v in self.views]}")

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(rows, columns) of the object's pixel frame: the ground truth's, and every reconstruction's."""
        return (self.object.size, self.object.size)

    def stride_chain(self, view_name: str) -> tuple[int, ...]:
        """Strides of the views from the densest up to ``view_name`` (views are sorted by stride)."""
        chain = []
        for v in self.views:
            chain.append(v.stride)
            if v.name == view_name:
                return tuple(chain)
        raise KeyError(f"view {view_name!r} is not defined; views: {[v.name for v in self.views]}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable mapping in the configuration file's own shape.

        ``study_from_dict(study.to_dict()) == study``.
        """
        d = json.loads(json.dumps(asdict(self)))
        d["views"] = {v["name"]: {"stride": v["stride"]} for v in d["views"]}
        return d

    def config_hash(self) -> str:
        """sha256 of the canonical JSON of the validated configuration."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def section_hash(self, *sections: str) -> str:
        """sha256 of some top-level sections only: what one phase depends on.

        Rules pass it as a parameter, so that Snakemake reruns a job exactly
        when a section it depends on changes.
        """
        d = self.to_dict()
        text = json.dumps({k: d[k] for k in sections}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def section_hashes(self, *groups: str) -> dict[str, str]:
        """``{group: section_hash(*SECTION_GROUPS[group])}`` for the named groups of sections."""
        unknown = [g for g in groups if g not in SECTION_GROUPS]
        if unknown:
            raise KeyError(f"section groups {unknown} are not defined; groups: {list(SECTION_GROUPS)}")
        return {g: self.section_hash(*SECTION_GROUPS[g]) for g in groups}

    def dose_labels(self) -> dict[str, float]:
        """Map of path label (e.g. ``"1e4"``) to dose, in ladder order."""
        return {dose_label(d): d for d in self.doses}


#: The configuration's top-level sections, grouped by what depends on them: a step records the
#: hashes of the groups it reads in its sentinel, and its rule reruns when one of them changes.
SECTION_GROUPS: dict[str, tuple[str, ...]] = {
    "physics": ("name", "N", "object", "probe", "scan", "split"),
    "views": ("views", "grouping"),
    "training": ("training",),
    "refinement": ("refinement",),
    "ptychi": ("ptychi",),
    "stopping": ("stopping",),
}


def dose_label(dose: float) -> str:
    """Compact, path-safe label of a dose: 1000 -> '1e3', 25000 -> '2.5e4'."""
    mantissa, exponent = f"{float(dose):.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def load_schema() -> dict[str, Any]:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _validator_filling_defaults(schema: Mapping[str, Any]):
    """A Draft 2020-12 validator (the draft Snakemake uses) that also writes each property's default.

    This is the extension pattern documented by python-jsonschema: defaults
    are inserted before the properties are validated, so nested objects with
    ``default: {}`` are created and then filled in turn.
    """
    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    extended = jsonschema.validators.extend(base, {"properties": set_defaults})
    return extended(schema)


def _error_lines(err) -> list[tuple[str, str]]:
    """``(dotted key, message)`` of one schema error; an unknown key is named itself."""
    key = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "additionalProperties" and err.validator_value is False and isinstance(err.instance, dict):
        known = list(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in known]
        if extra:
            hint = f"unknown key (known keys: {', '.join(known)})" if known else "unknown key"
            return [(f"{key}.{k}" if key else str(k), hint) for k in extra]
    return [(key or "<top level>", err.message)]


def validate_raw(raw: Any, source: str = "<config>", sources: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Validate a raw mapping against the schema; return a filled deep copy.

    Each error names the study file that set the key (``sources``, see :func:`study_from_dict`).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, found {type(raw).__name__}")
    if sources is None:
        sources = _sources_of_raw(raw, source)
    filled = copy.deepcopy(raw)
    validator = _validator_filling_defaults(load_schema())
    errors = sorted(validator.iter_errors(filled), key=lambda e: [str(p) for p in e.absolute_path])
    lines = []
    for err in errors:
        for key, message in _error_lines(err):
            line = f"{source_of(sources, key)}: key '{key}': {message}"
            if line not in lines:
                lines.append(line)
    if len(lines) == 1:
        raise ConfigError(lines[0])
    if lines:
        raise ConfigError(f"invalid study configuration, {len(lines)} errors:\n  " + "\n  ".join(lines))
    return filled


def _cross_checks(study: StudyConfig, source: str) -> None:
    """Checks that need several keys at once (the schema checks single keys)."""

    def fail(key: str, msg: str) -> None:
        raise ConfigError(f"{source}: key '{key}': {msg}")

    if study.N % 16:
        fail("N", f"expected a multiple of 16, found {study.N}")
    if any(not (d > 0) for d in study.doses):
        fail("doses", f"expected positive doses, found {list(study.doses)}")
    labels = [dose_label(d) for d in study.doses]
    if len(set(labels)) != len(labels):
        fail("doses", f"doses must have distinct labels, found {labels}")
    _object_file_checks(study.object, fail)
    if study.probe.kind == "file" and study.probe.file is None:
        fail("probe.file", "expected the NPZ file of the probe (probe.kind is file), found null")
    if study.probe.kind != "file" and study.probe.file is not None:
        fail(
            "probe.file",
            f"expected null unless probe.kind is file (kind {study.probe.kind!r}), found {study.probe.file!r}",
        )
    if study.object.train_seed is not None and study.object.train_seed == study.object.seed:
        fail(
            "object.train_seed",
            f"expected a seed other than object.seed ({study.object.seed}): "
            "the training object must be a different draw",
        )
    margin = 2 * study.N
    if study.object.size < margin:
        fail("object.size", f"expected at least 2*N = {margin} pixels, found {study.object.size}")
    g = study.grouping
    if g.K < g.C:
        fail("grouping.K", f"expected K >= C = gridsize^2 = {g.C}, found {g.K}")
    t = study.training
    if t.warmup_epochs > 0 and t.schedule != "cosine":
        fail(
            "training.warmup_epochs",
            f"expected 0 with schedule {t.schedule!r} (a warm-up leads into the cosine), found {t.warmup_epochs}",
        )
    if t.warmup_epochs >= t.epochs:
        fail("training.warmup_epochs", f"expected fewer than training.epochs = {t.epochs}, found {t.warmup_epochs}")
    strides = [v.stride for v in study.views]
    if study.scan.pattern == "raster":
        for a, b in zip(strides, strides[1:]):
            if b % a:
                fail("views", f"raster views must be nested: stride {b} is not a multiple of stride {a}")
    if study.probe.kind == "focused" and study.probe.pupil_diameter >= study.N / 2:
        fail(
            "probe.pupil_diameter",
            f"expected below N/2 = {study.N / 2} pixels (the diffraction of the "
            f"object must fit on the detector), found {study.probe.pupil_diameter}",
        )
    if study.probe.kind == "disk" and study.probe.disk_diameter > study.N / 2:
        fail(
            "probe.disk_diameter",
            f"expected at most N/2 = {study.N / 2} pixels, found {study.probe.disk_diameter}",
        )


def _object_file_checks(obj: ObjectConfig, fail) -> None:
    """The source keys of family ``file``: one source each (an NPZ, or amplitude and phase images), no seeds."""
    if obj.family != "file":
        given = {**obj.source_files(), **obj.source_files(training=True)}
        if given:
            fail(
                next(iter(given)),
                f"expected null unless object.family is file (family {obj.family!r}), "
                f"found {next(iter(given.values()))!r}",
            )
        return
    if obj.train_seed is not None:
        fail(
            "object.train_seed",
            f"expected null for family file (a file has no seed to redraw), found {obj.train_seed}; "
            "set object.train_file (or train_amplitude_file and train_phase_file) for a separate training object",
        )
    for prefix, required in (("", True), ("train_", False)):
        file, amp, phase = (getattr(obj, prefix + n) for n in ("file", "amplitude_file", "phase_file"))
        if file is not None and (amp is not None or phase is not None):
            fail(
                f"object.{prefix}file",
                f"expected either object.{prefix}file or object.{prefix}amplitude_file and "
                f"object.{prefix}phase_file, found both ({file!r}, {amp!r}, {phase!r})",
            )
        if (amp is None) != (phase is None):
            missing = "phase_file" if phase is None else "amplitude_file"
            present = "amplitude_file" if phase is None else "phase_file"
            fail(
                f"object.{prefix}{missing}",
                f"expected an image to go with object.{prefix}{present}, found null",
            )
        if required and file is None and amp is None:
            fail(
                "object.file",
                "expected the NPZ file of the object (or object.amplitude_file and object.phase_file) "
                "for family file, found null",
            )
        if file is not None and not file.lower().endswith(".npz"):
            fail(f"object.{prefix}file", f"expected an NPZ file (name ending .npz), found {file!r}")
        for name, path in (("amplitude_file", amp), ("phase_file", phase)):
            if path is not None and not path.lower().endswith((".tif", ".tiff")):
                fail(f"object.{prefix}{name}", f"expected a TIFF image (name ending .tif or .tiff), found {path!r}")


_CASTS = {"int": int, "float": float, "str": str, "bool": bool}


def _build(cls, values: Mapping[str, Any]):
    """Construct a section dataclass, casting numbers to the declared field type.

    JSON Schema accepts 256.0 as an integer and 16 as a number; casting makes
    equal studies equal in type and in :meth:`StudyConfig.config_hash`.
    """
    kwargs = {}
    for f in fields(cls):
        cast = _CASTS.get(f.type if isinstance(f.type, str) else f.type.__name__)
        kwargs[f.name] = cast(values[f.name]) if cast else values[f.name]
    return cls(**kwargs)


#: Stands for the source in the messages of :func:`_cross_checks`, then replaced by the file that set the key.
_SOURCE_PLACEHOLDER = "\x00source\x00"
_PLACEHOLDER_KEY = re.compile(re.escape(_SOURCE_PLACEHOLDER) + r": key '([^']*)'")


def study_from_dict(raw: Any, source: str = "<config>", sources: Mapping[str, str] | None = None) -> StudyConfig:
    """Validate ``raw`` (schema + cross-field checks) into a :class:`StudyConfig`.

    Every error names the study file that set the key at fault, or :data:`DEFAULT_SOURCE` for a
    key no file sets (the schema's default). ``sources``: ``{dotted key: file}`` for every value
    set (:func:`merge_studies` returns it for a merged study); without it, every value ``raw``
    sets is attributed to ``source``.
    """
    if sources is None:
        sources = _sources_of_raw(raw, source)
    cfg = validate_raw(raw, source, sources)
    study = StudyConfig(
        name=cfg["name"],
        N=int(cfg["N"]),
        doses=tuple(float(d) for d in cfg["doses"]),
        seeds=tuple(int(s) for s in cfg["seeds"]),
        object=_build(ObjectConfig, cfg["object"]),
        probe=_build(ProbeConfig, cfg["probe"]),
        scan=_build(ScanConfig, cfg["scan"]),
        split=_build(SplitConfig, cfg["split"]),
        views=tuple(
            sorted(
                (ViewConfig(name, int(v["stride"])) for name, v in cfg["views"].items()),
                key=lambda v: (v.stride, v.name),
            )
        ),
        grouping=_build(GroupingConfig, cfg["grouping"]),
        training=_build(
            TrainingConfig, {**cfg["training"], "filters": tuple(int(f) for f in cfg["training"]["filters"])}
        ),
        ptychi=_build(PtyChiConfig, cfg["ptychi"]),
        refinement=_build(RefinementConfig, cfg["refinement"]),
        stopping=_build(StoppingConfig, cfg["stopping"]),
    )
    try:
        _cross_checks(study, _SOURCE_PLACEHOLDER)
    except ConfigError as exc:
        message = _PLACEHOLDER_KEY.sub(lambda m: f"{source_of(sources, m.group(1))}: key '{m.group(1)}'", str(exc))
        raise ConfigError(message.replace(_SOURCE_PLACEHOLDER, source)) from None
    return study


def load_study(path: str | Path) -> StudyConfig:
    """Read a study YAML file strictly (:func:`read_study_file`) and validate it; errors name the file.

    A key the file does not set takes the schema's default, and an error about it names ``default``.
    """
    return study_from_dict(read_study_file(path), source=str(path))
