"""Study files: read strictly, merged as the workflow merges them, and which file set each key.

A study is config/config.yaml with ``--configfile`` files merged over it. Each file is read with
:class:`StrictLoader` (a key named twice is refused, naming the file, the key and its lines);
:func:`merge_studies` merges them (deep, except the sections a file replaces whole) and records
which file set each key, so that every configuration error names it (:func:`source_of`, or
:data:`DEFAULT_SOURCE` for a key no file sets). Validation is :mod:`ptycho_core.config`'s.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

__all__ = [
    "DEFAULT_SOURCE",
    "REPLACED_SECTIONS",
    "REPLACED_WHEN_CHANGED",
    "ConfigError",
    "DuplicateKeyError",
    "StrictLoader",
    "merge_studies",
    "read_study_file",
    "source_of",
]


class ConfigError(ValueError):
    """A study configuration is invalid; the message names the source and key."""


#: The source named for a key that no study file sets: the schema's default applies.
DEFAULT_SOURCE = "default"

#: Sections that a study file replaces whole when it is merged over another (a ``--configfile`` over
#: config/config.yaml): the user names their entries, so a study of one view has one view.
REPLACED_SECTIONS: tuple[str, ...] = ("views",)
#: Sections that a study file replaces whole when it changes the key given: a file that changes
#: ``object.family`` describes its whole object (a file object gets no train_seed of a lines object),
#: one that changes ``probe.kind`` its whole probe (a probe file gets no pupil of a focused probe).
REPLACED_WHEN_CHANGED: dict[str, str] = {"object": "family", "probe": "kind"}


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A YAML mapping names a key twice (``key``: dotted path; ``line``, ``first_line``: 1-based)."""

    def __init__(self, key: str, line: int, first_line: int, mark) -> None:
        self.key, self.line, self.first_line = key, line, first_line
        super().__init__(None, None, f"key '{key}' {self.where}", mark)

    @property
    def where(self) -> str:
        if self.line == self.first_line:
            return f"named twice on line {self.line}"
        return f"named twice, on lines {self.first_line} and {self.line}"


class StrictLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, refusing a mapping that names a key twice, at any depth.

    ``yaml.safe_load`` keeps the last of two equal keys silently. Before a document is
    constructed, every mapping of it is checked (merge keys ``<<`` excepted: their keys
    may be overridden) and :class:`DuplicateKeyError` names the key's dotted path and lines.
    """

    def construct_document(self, node):
        self._refuse_duplicate_keys(node, "", set())
        return super().construct_document(node)

    def _refuse_duplicate_keys(self, node, path: str, visited: set[int]) -> None:
        if id(node) in visited:  # an alias of a node checked already
            return
        visited.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._refuse_duplicate_keys(item, f"{path}{i}.", visited)
        elif isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # an unhashable key: SafeConstructor refuses it
                    continue
                if first is not key_node:
                    line, first_line = key_node.start_mark.line + 1, first.start_mark.line + 1
                    raise DuplicateKeyError(f"{path}{key}", line, first_line, key_node.start_mark)
                self._refuse_duplicate_keys(value_node, f"{path}{key}.", visited)


def read_study_file(path: str | Path, label: str | None = None) -> dict[str, Any]:
    """The raw mapping of a study YAML file, read with :class:`StrictLoader`; an empty file is ``{}``.

    Errors (file not found, not YAML, a key named twice, not a mapping) are :class:`ConfigError`
    naming the file as ``label`` (default: the path as given).
    """
    label = str(path) if label is None else label
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.load(fh, Loader=StrictLoader)  # a SafeLoader: no arbitrary objects
    except FileNotFoundError:
        raise ConfigError(f"{label}: configuration file not found") from None
    except DuplicateKeyError as exc:
        raise ConfigError(f"{label}: key '{exc.key}': {exc.where} (a study file names each key once)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: expected a mapping at the top level, found {type(raw).__name__}")
    return raw


def _forget(sources: dict[str, str], path: str) -> None:
    for key in [k for k in sources if k == path or k.startswith(path + ".")]:
        del sources[key]


def _record(sources: dict[str, str], path: str, value: Any, label: str) -> None:
    """Attribute ``value`` set at ``path`` (every leaf of it, or the path of an empty mapping) to ``label``."""
    if isinstance(value, Mapping) and value:
        for key, sub in value.items():
            _record(sources, f"{path}.{key}", sub, label)
    else:
        _forget(sources, path)
        sources[path] = label


def _merge_into(target: dict[str, Any], raw: Mapping[str, Any], label: str, sources: dict[str, str], prefix: str):
    """Deep merge (Snakemake's ``update_config``): mappings merged key by key, any other value replaced."""
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if not isinstance(target.get(key), dict):
                target[key] = {}
                _forget(sources, path)
            _merge_into(target[key], value, label, sources, path + ".")
            if not value and not any(k.startswith(path + ".") for k in sources):
                sources[path] = label  # an empty mapping, set here
        else:
            target[key] = copy.deepcopy(value)
            _record(sources, path, value, label)


def merge_studies(layers: Iterable[tuple[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge study mappings, lowest first, as the workflow does; return the mapping and its sources.

    ``layers``: ``(label, raw mapping)`` pairs, e.g. config/config.yaml, then each ``--configfile``
    file. Each is deep-merged over the ones before it (a mapping key by key, a list or any other
    value replaced), except that it replaces whole a section of :data:`REPLACED_SECTIONS` it sets
    and a section of :data:`REPLACED_WHEN_CHANGED` whose named key it sets to another value than the
    layers below (a study file that changes ``object.family`` brings its whole object section: the
    keys it leaves out take the schema's defaults, not the lower file's values for another family).

    The sources are ``{dotted key: label of the last layer that set it}`` for every value set,
    the ``sources`` argument of :func:`study_from_dict`.
    """
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for label, raw in layers:
        if raw is None:
            continue
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{label}: expected a mapping at the top level, found {type(raw).__name__}")
        for key, value in raw.items():
            named = REPLACED_WHEN_CHANGED.get(key)
            below = merged.get(key)
            changed = (
                named is not None
                and isinstance(value, Mapping)
                and named in value
                and (not isinstance(below, Mapping) or below.get(named) != value[named])
            )
            whole = key in REPLACED_SECTIONS or changed
            if whole or not isinstance(value, Mapping):
                merged[key] = copy.deepcopy(value)
                _forget(sources, key)
                _record(sources, key, value, label)
            else:
                _merge_into(merged, {key: value}, label, sources, "")
    return merged, sources


def source_of(sources: Mapping[str, str], key: str) -> str:
    """The label of the study file that set ``key`` (dotted), or :data:`DEFAULT_SOURCE` if none did.

    A key inside a value set whole (``doses.0``) is the value's; a section is the last file's
    that set a key in it.
    """
    path = key
    while True:
        if path in sources:
            return sources[path]
        if "." not in path:
            break
        path = path.rsplit(".", 1)[0]
    within = [label for set_key, label in sources.items() if set_key.startswith(key + ".")]
    return within[-1] if within else DEFAULT_SOURCE  # sources are in the order they were set
