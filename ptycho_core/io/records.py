"""The study's JSON and CSV records: each record's field names, types and version, its writer and its reader.

The NPZ artifacts have their contracts (:mod:`ptycho_core.io.datasets`,
:mod:`~ptycho_core.io.view_index`, :mod:`~ptycho_core.io.reconstruction`);
this module is the contract of every other table and record a step writes
and another step (or a test, or a script) reads. One record, one home: its
writer validates what it is given before writing, its reader validates what
it finds, and both refuse a missing key, an extra key and a value of the
wrong type with a :class:`~ptycho_core.io.npz.DataContractError` naming the
file and the key, in the contracts' style (docs/DESIGN.md section 4)::

    <file>: missing key '<key>' (expected keys: ...)
    <file>: unexpected key '<key>' (expected keys: ...)
    <file>: key '<key>': expected ..., found ...

A nested JSON key is named by its path (``splits.test.neighbour_overlap``);
a CSV value by its column and line (``key 'value': expected a finite number,
found 'abc' (line 7: method=PtyChi, quantity=phase, metric=psnr)``).

- :data:`METRIC_ROWS`: a cell's tidy ``metrics.csv`` (``steps.score``);
  :data:`STUDY_METRIC_ROWS`: the report's tidy ``metrics.csv`` (``evaluate.tables``);
- :data:`FRC_ROWS`: a cell's ``frc.csv`` (``steps.score``);
- :data:`ALIGNMENT_RECORD`: a cell's ``alignment.json`` (``steps.score``);
- :data:`OVERLAP_RECORD`: a view's ``overlap_metrics.json`` (``steps.views``), and
  :data:`OVERLAP_TABLE`, the report's ``overlap.csv`` (``evaluate.overlap_table``);
- :data:`HEADLINE_TABLE`: the report's wide ``headline.csv`` (``evaluate.headline``);
- :data:`SUMMARY_DOCUMENT`: the report's ``summary.json`` (``evaluate.tables``: statistics over seeds, deltas,
  verdicts and crossover doses);
- :data:`RUNTIME_TABLE`: the report's ``runtime.csv``, job time per rule, per rule and method and per cell
  replicate (``evaluate.runtime``);
- :data:`INVENTORY`: the study's ``inventory.csv`` (``steps.report``).

Each record is a frozen :class:`CsvRecord` or :class:`JsonRecord` with
``format``/``dumps`` (text), ``write`` (atomic), ``parse``/``loads`` (from
text) and ``read`` (from a file). CSV floats are written as ``repr`` (round
trip exact) unless the column gives a format (the wide headline table's
rounded means); an empty cell is a missing value where the column allows
one. JSON records are written with sorted keys, two-space indent and NaN
refused. A CSV has no room for its version: the ``*_VERSION`` constants of
the CSV records (and of ``alignment.json``, whose keys predate them) name the
layout in code; ``overlap_metrics.json`` carries its version in the file.

This module imports nothing of ``ptycho_core`` outside :mod:`ptycho_core.io`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ptycho_core.io.npz import DataContractError, atomic_write_text

__all__ = [
    "check_keys",
    "check_refusals",
    "ALIGNMENT_METHOD_FIELDS",
    "ALIGNMENT_RECORD",
    "ALIGNMENT_VERSION",
    "REFUSALS",
    "CROSSOVER_FIELDS",
    "DELTA_FIELDS",
    "FRC_COLUMNS",
    "FRC_ROWS",
    "FRC_VERSION",
    "GROUP_CENTRE_OVERLAP",
    "GROUP_CENTRE_PAIRS",
    "GROUP_OVERLAP",
    "HEADLINE_COLUMNS",
    "HEADLINE_ID_COLUMNS",
    "HEADLINE_LABELS",
    "HEADLINE_METRICS",
    "HEADLINE_TABLE",
    "HEADLINE_VERSION",
    "INVENTORY",
    "INVENTORY_COLUMNS",
    "INVENTORY_VERSION",
    "LINEAR_OVERLAP",
    "METRIC_ROWS",
    "METRIC_ROWS_VERSION",
    "METRIC_ROW_COLUMNS",
    "NEIGHBOUR_OVERLAP",
    "OVERLAP_MEASURES",
    "OVERLAP_METRICS_VERSION",
    "OVERLAP_RECORD",
    "OVERLAP_SPLIT_FIELDS",
    "OVERLAP_TABLE",
    "OVERLAP_TABLE_COLUMNS",
    "RUNTIME_COLUMNS",
    "RUNTIME_SCOPES",
    "RUNTIME_TABLE",
    "RUNTIME_VERSION",
    "STUDY_METRIC_COLUMNS",
    "STUDY_METRIC_ROWS",
    "SUMMARY_DOCUMENT",
    "SUMMARY_RECORD_FIELDS",
    "SUMMARY_VERSION",
    "VERDICT_FIELDS",
    "WIDE_METRICS",
    "Column",
    "CsvRecord",
    "JsonRecord",
    "ListOf",
    "MapOf",
    "Nullable",
    "headline_mean_column",
    "headline_std_column",
    "metric_unit",
]


# --------------------------------------------------------------------------
# CSV records
# --------------------------------------------------------------------------

_INT = re.compile(r"[+-]?\d+")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Column:
    """One column of a CSV record: its name, its type (``str``, ``int`` or ``float``) and how it is written.

    ``nullable``: an empty cell is a missing value (``None``). ``fmt``: the
    format spec of a float (None: ``repr``, exact). ``choices``: the values a
    ``str`` column may take; ``pattern``: a regular expression it must match.
    """

    name: str
    type: type
    nullable: bool = False
    fmt: str | None = None
    choices: tuple[str, ...] | None = None
    pattern: str | None = None

    def expected(self) -> str:
        what = {str: "a non-empty string", int: "an integer", float: "a finite number"}[self.type]
        if self.choices:
            what = f"one of {list(self.choices)}"
        elif self.pattern:
            what = f"a string matching {self.pattern}"
        return what + (" or empty" if self.nullable else "")

    def _text_ok(self, text: str) -> bool:
        if self.choices:
            return text in self.choices
        return text != "" and (self.pattern is None or re.fullmatch(self.pattern, text) is not None)

    def format(self, value: Any, source: str, where: str) -> str:
        """The cell text of ``value``; a value of the wrong type raises naming the column."""
        if value is None and self.nullable:
            return ""
        ok = (
            (self.type is str and isinstance(value, str) and self._text_ok(value))
            or (self.type is int and _is_int(value))
            or (self.type is float and _is_number(value) and math.isfinite(value))
        )
        if not ok:
            raise DataContractError.mismatch(source, self.name, self.expected(), f"{value!r} ({where})")
        if self.type is float:
            return repr(float(value)) if self.fmt is None else format(float(value), self.fmt)
        return str(int(value)) if self.type is int else value

    def parse(self, text: str, source: str, where: str) -> Any:
        """The value of the cell ``text``; text that is not of the column's type raises naming the column."""
        if text == "" and self.nullable:
            return None
        value: Any = None
        if self.type is str:
            value = text if self._text_ok(text) else None
        elif self.type is int:
            value = int(text) if _INT.fullmatch(text) else None
        else:
            try:
                value = float(text)
            except ValueError:
                value = None
            if value is not None and not math.isfinite(value):
                value = None
        if value is None:
            raise DataContractError.mismatch(source, self.name, self.expected(), f"{text!r} ({where})")
        return value


@dataclass(frozen=True)
class CsvRecord:
    """A CSV table with a header of exactly :attr:`fields`, in order, and one typed value per column and row."""

    name: str
    version: int
    columns: tuple[Column, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def _where(self, values: Mapping[str, Any], line: int) -> str:
        labels = ", ".join(
            f"{c.name}={values[c.name]}" for c in self.columns if c.type is str and values.get(c.name) not in (None, "")
        )
        return f"line {line}" + (f": {labels}" if labels else "")

    def _as_mapping(self, row: Mapping | Sequence, source: str, line: int) -> Mapping[str, Any]:
        if isinstance(row, Mapping):
            check_keys(row.keys(), self.fields, source, suffix=f" (line {line})")
            return row
        row = tuple(row)
        if len(row) != len(self.columns):
            raise DataContractError(
                f"{source}: line {line}: expected {len(self.columns)} values ({', '.join(self.fields)}), "
                f"found {len(row)}"
            )
        return dict(zip(self.fields, row))

    def format(self, rows: Iterable[Mapping | Sequence], source: str = "<rows>") -> str:
        """CSV text: the header, then one line per row (a mapping with exactly :attr:`fields` or a sequence in
        their order)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.fields)
        for i, row in enumerate(rows):
            line = i + 2
            values = self._as_mapping(row, source, line)
            w.writerow([c.format(values[c.name], source, self._where(values, line)) for c in self.columns])
        return buf.getvalue()

    def write(self, path: str | os.PathLike, rows: Iterable[Mapping | Sequence]) -> None:
        """Validate ``rows`` and write them to ``path`` (atomically)."""
        atomic_write_text(path, self.format(rows, source=os.fspath(path)))

    def parse(self, text: str, source: str = "<text>") -> list[dict[str, Any]]:
        """The rows of CSV ``text`` as dicts with typed values; a wrong header or value raises naming ``source``
        and the key."""
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None:
            raise DataContractError(f"{source}: empty {self.name}: no header (expected keys: {', '.join(self.fields)})")
        check_keys(header, self.fields, source)
        if tuple(header) != self.fields:
            raise DataContractError(
                f"{source}: columns out of order: expected {', '.join(self.fields)}; found {', '.join(header)}"
            )
        rows = []
        for line, cells in enumerate(reader, start=2):
            if len(cells) != len(self.columns):
                raise DataContractError(
                    f"{source}: line {line}: expected {len(self.columns)} values ({', '.join(self.fields)}), "
                    f"found {len(cells)}"
                )
            raw = dict(zip(self.fields, cells))
            rows.append({c.name: c.parse(raw[c.name], source, self._where(raw, line)) for c in self.columns})
        return rows

    def read(self, path: str | os.PathLike, *, source: str | None = None) -> list[dict[str, Any]]:
        """:meth:`parse` the file at ``path``; ``source`` (default the path) starts every message."""
        source = os.fspath(path) if source is None else source
        return self.parse(_read_text(path, source, self.name), source)


def check_keys(
    found: Iterable[str], expected: Sequence[str], source: str, *, prefix: str = "", suffix: str = ""
) -> None:
    """Refuse a missing, unexpected or repeated key of ``found``, naming ``source`` and the key (``prefix`` + key)."""
    found = list(found)
    for key in expected:
        if key not in found:
            raise DataContractError(
                f"{source}: missing key '{prefix}{key}'{suffix} (expected keys: {', '.join(expected)})"
            )
    seen = set()
    for key in found:
        if key not in expected:
            raise DataContractError(
                f"{source}: unexpected key '{prefix}{key}'{suffix} (expected keys: {', '.join(expected)})"
            )
        if key in seen:
            raise DataContractError(f"{source}: key '{prefix}{key}' repeated{suffix}")
        seen.add(key)


def _read_text(path: str | os.PathLike, source: str, name: str) -> str:
    """The text of a record file; a missing or unreadable file is refused naming ``source`` and the record ``name``."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataContractError(f"{source}: {name} file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataContractError(f"{source}: {name} cannot be read ({exc})") from None


# --------------------------------------------------------------------------
# JSON records
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Nullable:
    """A JSON value of type ``spec`` or ``null``."""

    spec: Any


@dataclass(frozen=True)
class ListOf:
    """A JSON list of values of type ``spec`` (exactly ``length`` of them when given)."""

    spec: Any
    length: int | None = None


@dataclass(frozen=True)
class MapOf:
    """A JSON object with any (non-empty) keys, each value of type ``spec``."""

    spec: Any


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a finite number", bool: "true or false"}


def _describe(spec: Any) -> str:
    if isinstance(spec, Nullable):
        return f"{_describe(spec.spec)} or null"
    if isinstance(spec, ListOf):
        return f"a list of {spec.length if spec.length is not None else 'any number of'} ({_describe(spec.spec)})"
    if isinstance(spec, (MapOf, dict)):
        return "an object"
    return _TYPE_NAMES[spec]


def _found(value: Any) -> str:
    text = json.dumps(value, default=repr)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _check_value(value: Any, spec: Any, source: str, key: str) -> None:
    """Raise :class:`DataContractError` naming ``source`` and ``key`` unless ``value`` is of ``spec``."""
    if isinstance(spec, Nullable):
        if value is not None:
            _check_value(value, spec.spec, source, key)
        return
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise DataContractError.mismatch(source, key, "an object", _found(value))
        _check_object(value, spec, source, f"{key}.")
        return
    if isinstance(spec, MapOf):
        if not isinstance(value, dict) or not value:
            raise DataContractError.mismatch(source, key, "a non-empty object", _found(value))
        for k, v in value.items():
            if not isinstance(k, str) or not k:
                raise DataContractError.mismatch(source, key, "non-empty string keys", repr(k))
            _check_value(v, spec.spec, source, f"{key}.{k}")
        return
    if isinstance(spec, ListOf):
        if not isinstance(value, list) or (spec.length is not None and len(value) != spec.length):
            raise DataContractError.mismatch(source, key, _describe(spec), _found(value))
        for i, v in enumerate(value):
            _check_value(v, spec.spec, source, f"{key}[{i}]")
        return
    ok = {
        str: lambda v: isinstance(v, str),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
        bool: lambda v: isinstance(v, bool),
    }[spec](value)
    if not ok:
        raise DataContractError.mismatch(source, key, _describe(spec), _found(value))


#: The failed outcome checks of one run, each in words (empty when every check passed): a bundle sidecar's,
#: a reconstruction's and an alignment record's ``refused`` (``ptycho_core.steps.train.outcome_refusals``).
REFUSALS = ListOf(str)


def check_refusals(value: Any, source: str, key: str) -> list[str]:
    """``value`` as a :data:`REFUSALS` list; :class:`DataContractError` naming ``source`` and ``key`` otherwise."""
    if not (isinstance(value, list) and all(isinstance(r, str) for r in value)):
        raise DataContractError.mismatch(source, key, "a list of the failed outcome checks (strings)", _found(value))
    return list(value)


def _check_object(value: Mapping, spec: Mapping[str, Any], source: str, prefix: str = "") -> None:
    expected = tuple(spec)
    check_keys(value, expected, source, prefix=prefix)
    for k in expected:
        _check_value(value[k], spec[k], source, prefix + k)


@dataclass(frozen=True)
class JsonRecord:
    """A JSON object with exactly the keys of :attr:`spec` (nested objects likewise), each of its type.

    ``spec`` maps a key to ``str``, ``int``, ``float`` (any finite number),
    ``bool``, a nested spec (a dict), :class:`Nullable`, :class:`ListOf` or
    :class:`MapOf`. ``version_key``: the key holding :attr:`version` in the
    file (None: the version is not written).
    """

    name: str
    version: int
    spec: Mapping[str, Any]
    version_key: str | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.spec)

    def validate(self, doc: Any, source: str = "<record>") -> dict:
        """``doc`` if it holds exactly the record's keys with values of their types; else :class:`DataContractError`."""
        if not isinstance(doc, dict):
            raise DataContractError(f"{source}: expected a JSON object ({self.name}), found {type(doc).__name__}")
        if self.version_key is not None and self.version_key in doc:
            found = doc[self.version_key]
            if found != self.version or isinstance(found, bool):
                raise DataContractError.mismatch(
                    source, self.version_key, f"{self.name} version {self.version}", repr(found)
                )
        _check_object(doc, self.spec, source)
        return doc

    def dumps(self, doc: Mapping, source: str = "<record>") -> str:
        """The validated ``doc`` as JSON text (sorted keys, two-space indent, NaN refused, final newline)."""
        self.validate(dict(doc), source)
        return json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"

    def write(self, path: str | os.PathLike, doc: Mapping) -> None:
        """Validate ``doc`` and write it to ``path`` (atomically)."""
        atomic_write_text(path, self.dumps(doc, source=os.fspath(path)))

    def loads(self, text: str, source: str = "<text>") -> dict:
        """The record in JSON ``text``, validated."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataContractError(f"{source}: {self.name} is not valid JSON ({exc})") from None
        return self.validate(doc, source)

    def read(self, path: str | os.PathLike, *, source: str | None = None) -> dict:
        """The record in the file at ``path``, validated; ``source`` (default the path) starts every message."""
        source = os.fspath(path) if source is None else source
        return self.loads(_read_text(path, source, self.name), source)


# --------------------------------------------------------------------------
# The records
# --------------------------------------------------------------------------

#: Version of the report's summary document (``summary.json``, :func:`ptycho_core.evaluate.tables.report_document`),
#: written in it as ``schema_version``. 2: the summary records carry their per-seed ``values`` (and
#: ``photons_per_illuminated_pixel``, null where unknown); the per-cell ``verdicts`` and the ``crossovers`` joined
#: the document (:mod:`ptycho_core.evaluate.verdicts`), which has one contract, :data:`SUMMARY_DOCUMENT`.
#: 3: each record's ``failed_seeds`` (failed runs, scored as produced) and each verdict's methods' ``failed``.
SUMMARY_VERSION = 3

#: Version of the tidy metric rows. 2: the secondary, paper-style rows
#: (quantities ``amplitude_paper``, ``phase_paper``) joined the strict ones.
METRIC_ROWS_VERSION = 3
#: Columns of a cell's tidy ``metrics.csv``; the quantities and metrics they name are
#: :mod:`ptycho_core.evaluate.rows`'s.
METRIC_ROW_COLUMNS = ("method", "quantity", "metric", "value")
#: Columns of the study's tidy ``metrics.csv`` (report): the cell, then a cell's row.
STUDY_METRIC_COLUMNS = ("dose", "view", "seed", *METRIC_ROW_COLUMNS)
_METRIC_ROW = (Column("method", str), Column("quantity", str), Column("metric", str), Column("value", float))
METRIC_ROWS = CsvRecord("metrics table", METRIC_ROWS_VERSION, _METRIC_ROW)
STUDY_METRIC_ROWS = CsvRecord(
    "study metrics table",
    METRIC_ROWS_VERSION,
    (Column("dose", float), Column("view", str), Column("seed", int), *_METRIC_ROW),
)

#: Version of ``frc.csv``.
FRC_VERSION = 1
#: Columns of a cell's ``frc.csv``: one row per method, quantity and ring frequency.
FRC_COLUMNS = ("method", "quantity", "frequency_cycles_per_pixel", "frc")
FRC_ROWS = CsvRecord(
    "FRC table",
    FRC_VERSION,
    (Column("method", str), Column("quantity", str), Column("frequency_cycles_per_pixel", float), Column("frc", float)),
)

#: Version of ``alignment.json`` (not written in the file). 3: each method's ``refused`` (the failed outcome checks
#: of the network it came from, a failed run scored as produced; empty for a run that passed them).
ALIGNMENT_VERSION = 3
#: What the common gauge policy did to one method (``alignment.json``'s ``methods.<method>``); the residual
#: shift is the cross-correlation's diagnostic, never applied (every method is scored in the known frame).
ALIGNMENT_METHOD_FIELDS = {
    "residual_shift_dy_dx_px": ListOf(float, 2),
    "phase_offset_rad": float,
    "phase_ramp": Nullable({"offset": float, "slope_y": float, "slope_x": float}),
    "amplitude_scale_reported_not_applied": float,
    "region_pixels": int,
    "refused": REFUSALS,
}
#: ``alignment.json`` of a cell: the evaluation region (rows and columns as [start, stop)), its border,
#: the policy in words, and per method what the alignment did.
ALIGNMENT_RECORD = JsonRecord(
    "alignment record",
    ALIGNMENT_VERSION,
    {
        "region_rows": ListOf(int, 2),
        "region_cols": ListOf(int, 2),
        "border_px": float,
        "policy": str,
        "methods": MapOf(ALIGNMENT_METHOD_FIELDS),
    },
)

#: Version of ``overlap_metrics.json`` (its ``metrics_version``). 2: the overlap metrics are named by
#: meaning (were ``metric_1_group``, ``metric_2_neighbours``, ``metric_3_group_centres``, ``metric_3_pairs``).
OVERLAP_METRICS_VERSION = 2
#: Mean overlap of each group member with the other members of its group (None for single-position groups).
GROUP_OVERLAP = "group_overlap"
#: Mean overlap of each position of the view with its K - 1 nearest other positions.
NEIGHBOUR_OVERLAP = "neighbour_overlap"
#: Mean overlap between group centres closer than the probe diameter, over such pairs ...
GROUP_CENTRE_OVERLAP = "group_centre_overlap"
#: ... and the number of such pairs.
GROUP_CENTRE_PAIRS = "group_centre_pairs"
#: The nominal linear overlap 1 - step / D of the view.
LINEAR_OVERLAP = "linear_overlap"
#: The overlap measures of a view, in the order the report gives them.
OVERLAP_MEASURES = (LINEAR_OVERLAP, GROUP_OVERLAP, NEIGHBOUR_OVERLAP, GROUP_CENTRE_OVERLAP)
#: One split of one view (``overlap_metrics.json``'s ``splits.train`` and ``splits.test``): its
#: positions and groups, then the overlap measured on them (:func:`ptycho_core.sampling.overlap.overlap_metrics`).
OVERLAP_SPLIT_FIELDS = {
    "n_before_view": int,
    "n_view": int,
    "n_groups": int,
    "n_seeds_without_group": int,
    "fraction_covered_by_groups": float,
    "max_member_distance_px": float,
    GROUP_OVERLAP: Nullable(float),
    NEIGHBOUR_OVERLAP: float,
    GROUP_CENTRE_OVERLAP: float,
    GROUP_CENTRE_PAIRS: int,
    LINEAR_OVERLAP: float,
    "nominal_step_px": float,
    "scanned_area_px2": float,
    "max_non_overlapping_footprints": int,
}
#: ``overlap_metrics.json`` of a view of one dose x seed (views step).
OVERLAP_RECORD = JsonRecord(
    "overlap metrics record",
    OVERLAP_METRICS_VERSION,
    {
        "metrics_version": int,
        "view": str,
        "stride": int,
        "dose": float,
        "seed": int,
        "probe_diameter_px": float,
        "base_step_px": float,
        "gridsize": int,
        "C": int,
        "K": int,
        "neighbour_radius_px": float,
        "n_base_scan": int,
        "splits": {"train": OVERLAP_SPLIT_FIELDS, "test": OVERLAP_SPLIT_FIELDS},
    },
    version_key="metrics_version",
)

#: Columns of the report's ``overlap.csv``: the cell and split, then what the overlap record measured.
OVERLAP_TABLE_COLUMNS = (
    "view",
    "dose",
    "seed",
    "split",
    "n_before_view",
    "n_view",
    "n_groups",
    LINEAR_OVERLAP,
    GROUP_OVERLAP,
    NEIGHBOUR_OVERLAP,
    GROUP_CENTRE_OVERLAP,
    GROUP_CENTRE_PAIRS,
)
OVERLAP_TABLE = CsvRecord(
    "overlap table",
    OVERLAP_METRICS_VERSION,
    (
        Column("view", str),
        Column("dose", float),
        Column("seed", int),
        Column("split", str, choices=("train", "test")),
        Column("n_before_view", int),
        Column("n_view", int),
        Column("n_groups", int),
        Column(LINEAR_OVERLAP, float),
        Column(GROUP_OVERLAP, float, nullable=True),
        Column(NEIGHBOUR_OVERLAP, float),
        Column(GROUP_CENTRE_OVERLAP, float),
        Column(GROUP_CENTRE_PAIRS, int),
    ),
)

#: Version of the wide ``headline.csv``.
#: 2: the ``failed runs`` column.
HEADLINE_VERSION = 2
#: (quantity, metric) of the headline: the landing page's tables, and the spread columns of the wide CSV.
HEADLINE_METRICS = (("phase", "ms_ssim"), ("amplitude", "ms_ssim"))
#: (quantity, metric) of the wide CSV's mean columns, in order.
WIDE_METRICS = (
    ("phase", "ms_ssim"),
    ("phase", "psnr"),
    ("phase", "mae"),
    ("phase", "frc50"),
    ("amplitude", "ms_ssim"),
    ("amplitude", "psnr"),
    ("amplitude", "mae"),
)
#: How the wide CSV and the landing page name a metric.
HEADLINE_LABELS = {"ms_ssim": "MS-SSIM", "psnr": "PSNR", "mae": "MAE", "frc50": "FRC 0.5 resolution", "ssim": "SSIM"}
_UNITS = {"psnr": "dB", "ssim": "1", "ms_ssim": "1", "frc50": "cycles/pixel", "frc1_7": "cycles/pixel"}
#: The wide CSV's first columns: the cell and method, then the number of seeds and how many of them are failed
#: runs (scored as produced, counted in the means).
HEADLINE_ID_COLUMNS = (
    "dose (photons per pattern)",
    "dose (photons per illuminated pixel)",
    "view",
    "linear overlap (1)",
    "method",
    "n seeds",
    "failed runs",
)


def metric_unit(quantity: str, metric: str) -> str:
    """Unit of a metric in the wide CSV's header (MAE and RMSE: rad for phase, 1 for amplitude)."""
    if metric in ("mae", "rmse"):
        return "rad" if quantity == "phase" else "1"
    return _UNITS[metric]


def headline_mean_column(quantity: str, metric: str) -> str:
    """The wide CSV's column of the mean over seeds of (quantity, metric), e.g. ``"phase MAE (rad)"``."""
    return f"{quantity} {HEADLINE_LABELS[metric]} ({metric_unit(quantity, metric)})"


def headline_std_column(quantity: str, metric: str) -> str:
    """The wide CSV's column of the standard deviation over seeds of (quantity, metric)."""
    return f"{quantity} {HEADLINE_LABELS[metric]} std over seeds ({metric_unit(quantity, metric)})"


#: Every column of the wide CSV, in order.
HEADLINE_COLUMNS = (
    *HEADLINE_ID_COLUMNS,
    *(headline_mean_column(q, m) for q, m in WIDE_METRICS),
    *(headline_std_column(q, m) for q, m in HEADLINE_METRICS),
)
#: The wide ``headline.csv``: one row per dose x view x method, means over seeds rounded to 6 significant
#: digits (the linear overlap to 4); the std is empty with one seed, the photons per illuminated pixel and
#: the linear overlap where unknown.
HEADLINE_TABLE = CsvRecord(
    "headline table",
    HEADLINE_VERSION,
    (
        Column(HEADLINE_ID_COLUMNS[0], float),
        Column(HEADLINE_ID_COLUMNS[1], float, nullable=True, fmt=".6g"),
        Column(HEADLINE_ID_COLUMNS[2], str),
        Column(HEADLINE_ID_COLUMNS[3], float, nullable=True, fmt=".4g"),
        Column(HEADLINE_ID_COLUMNS[4], str),
        Column(HEADLINE_ID_COLUMNS[5], int),
        Column(HEADLINE_ID_COLUMNS[6], int),
        *(Column(headline_mean_column(q, m), float, fmt=".6g") for q, m in WIDE_METRICS),
        *(Column(headline_std_column(q, m), float, nullable=True, fmt=".6g") for q, m in HEADLINE_METRICS),
    ),
)

#: One record of the summary (``summary.records``): statistics over the replicate seeds of one dose x view x
#: method x quantity x metric; ``values`` are the per-seed values in the order of ``seeds``.
SUMMARY_RECORD_FIELDS = {
    "dose": float,
    "dose_label": str,
    "photons_per_illuminated_pixel": Nullable(float),
    "view": str,
    "method": str,
    "quantity": str,
    "metric": str,
    "mean": float,
    "std": Nullable(float),
    "n": int,
    "min": float,
    "max": float,
    "seeds": ListOf(int),
    "values": ListOf(float),
    "failed_seeds": ListOf(int),
}
#: One delta (``deltas``): the reference method minus another, paired by seed, for one cell and metric.
DELTA_FIELDS = {
    "reference": str,
    "other": str,
    "dose": float,
    "dose_label": str,
    "view": str,
    "quantity": str,
    "metric": str,
    "direction": str,
    "seeds": ListOf(int),
    "differences": ListOf(float),
    "mean": float,
    "std": Nullable(float),
    "n": int,
    "confidence": float,
    "interval": Nullable(ListOf(float, 2)),
    "note": Nullable(str),
    "better": bool,
    "interval_excludes_zero": Nullable(bool),
}
_INTERVAL = Nullable(ListOf(float, 2))
#: One verdict (``verdicts``): one cell and metric, every method's statistics, the best method's paired
#: differences with the others and the verdict (``winner``, ``tie`` or ``no verdict``).
VERDICT_FIELDS = {
    "dose": float,
    "dose_label": str,
    "view": str,
    "quantity": str,
    "metric": str,
    "direction": str,
    "confidence": float,
    "methods": MapOf(
        {
            "n": int,
            "seeds": ListOf(int),
            "mean": Nullable(float),
            "half_width": Nullable(float),
            "interval": _INTERVAL,
            "failed": int,
        }
    ),
    "best": Nullable(str),
    "pairs": ListOf(
        {
            "other": str,
            "n": int,
            "seeds": ListOf(int),
            "mean": Nullable(float),
            "std": Nullable(float),
            "interval": _INTERVAL,
            "separated": Nullable(bool),
        }
    ),
    "verdict": str,
    "winner": Nullable(str),
    "not_separable": ListOf(str),
    "text": str,
}
_DOSE_POINT = {"dose": float, "relation": str}
#: One crossover dose (``crossovers``): one view and method, the estimate and the bounds of its interval, each
#: a dose with its relation (``=`` interpolated, ``<`` below the ladder's lowest dose, ``>`` above its highest).
CROSSOVER_FIELDS = {
    "view": str,
    "method": str,
    "quantity": str,
    "metric": str,
    "threshold": float,
    "confidence": float,
    "doses": ListOf(float),
    "n": int,
    "estimate": _DOSE_POINT,
    "lower": Nullable(_DOSE_POINT),
    "upper": Nullable(_DOSE_POINT),
    "determined": bool,
    "note": Nullable(str),
    "text": str,
}
#: The report's ``summary.json``: the statistics over seeds, the deltas, the verdicts, the crossover doses and
#: the conventions in words.
SUMMARY_DOCUMENT = JsonRecord(
    "report summary",
    SUMMARY_VERSION,
    {
        "schema_version": int,
        "summary": {
            "layout": str,
            "group_by": ListOf(str),
            "std_ddof": int,
            "records": ListOf(SUMMARY_RECORD_FIELDS),
        },
        "deltas": ListOf(DELTA_FIELDS),
        "verdicts": ListOf(VERDICT_FIELDS),
        "crossovers": ListOf(CROSSOVER_FIELDS),
        "conventions": {
            "difference": str,
            "interval": str,
            "std_ddof": int,
            "higher_is_better": ListOf(str),
            "lower_is_better": ListOf(str),
            "primary_quantities": ListOf(str),
            "secondary_paper_quantities": ListOf(str),
            "paper_style": str,
            "frc_resolution": str,
            "verdict": str,
            "crossover": str,
        },
    },
    version_key="schema_version",
)

#: Version of ``runtime.csv`` (2: every job of the study, per rule and per rule and method, with the
#: per-cell-replicate figure; 1 was one row per rule of the cells' jobs).
RUNTIME_VERSION = 2
#: The rows of ``runtime.csv``: the whole study (one row, rule and method empty), each rule, each rule and
#: method (the jobs of a rule that take a method: ``train``, ``train_per_dose``, ``refine``,
#: ``reconstruct_ptychi``).
RUNTIME_SCOPES = ("study", "rule", "rule_method")
#: Columns of ``runtime.csv``. Times are wall seconds of Snakemake's ``benchmark:`` files (column ``s``); every
#: rule runs with ``threads: 1``, so they are core-seconds too. ``wall_s_per_cell_replicate``: ``total_wall_s``
#: divided by ``cell_replicates``, the number of dose x view x seed cells; ``percent_of_study``: the share of the
#: study row's ``total_wall_s``; ``max_rss_mb``: the largest peak resident memory of the jobs (empty where none
#: measured it).
RUNTIME_COLUMNS = (
    "scope",
    "rule",
    "method",
    "jobs",
    "cell_replicates",
    "total_wall_s",
    "mean_wall_s_per_job",
    "wall_s_per_cell_replicate",
    "percent_of_study",
    "max_rss_mb",
)
RUNTIME_TABLE = CsvRecord(
    "runtime table",
    RUNTIME_VERSION,
    (
        Column("scope", str, choices=RUNTIME_SCOPES),
        Column("rule", str, nullable=True),
        Column("method", str, nullable=True),
        Column("jobs", int),
        Column("cell_replicates", int),
        Column("total_wall_s", float),
        Column("mean_wall_s_per_job", float),
        Column("wall_s_per_cell_replicate", float),
        Column("percent_of_study", float),
        Column("max_rss_mb", float, nullable=True),
    ),
)

#: Version of ``inventory.csv``.
INVENTORY_VERSION = 1
#: Columns of ``inventory.csv``: one row per file of the study's directories.
INVENTORY_COLUMNS = ("path", "bytes", "sha256", "in_study")
INVENTORY = CsvRecord(
    "inventory",
    INVENTORY_VERSION,
    (
        Column("path", str),
        Column("bytes", int),
        Column("sha256", str, pattern="[0-9a-f]{64}"),
        Column("in_study", str, choices=("yes", "no")),
    ),
)
