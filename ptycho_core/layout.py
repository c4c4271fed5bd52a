"""Where every artifact of a study lives: the :class:`Cell` and one path template per artifact.

This module is the only place that spells a path. The workflow's rules,
input functions and adapters, the report and the scripts take their paths
from it, and nothing parses a path back into a cell.

The results tree is named for what it holds, with the cell keys in one
order (dose, view, seed, then method)::

    results/simulate/seed_<s>/                  ground_truth.npz, training_object.npz (+ .sentinel.json)
    results/simulate/dose_<d>/seed_<s>/         train.npz, test.npz, preview.png, sentinel.json
    results/views/dose_<d>/view_<v>/seed_<s>/   view.npz, overlap_metrics.json, positions.png, sentinel.json
    results/networks/<cell>/<method>/           model.keras, bundle.json, history.csv, loss.png, sentinel.json
                                                (trained and refined bundles alike; a method trained once
                                                per dose: results/networks/dose_<d>/seed_<s>/<method>/)
    results/reconstruct/<cell>/<method>/        recon.npz, sentinel.json
    results/score/<cell>/                       metrics.csv, frc.csv, alignment.json, comparison.png, sentinel.json
    results/report/                             the study's tables, figures and sentinel
    logs/<rule>/<cell>[/<method>].log, benchmarks/<rule>/<cell>[/<method>].tsv

A template is a path of a :class:`Cell` whose fields are Snakemake wildcards
(:meth:`Cell.pattern`); the same functions give a concrete cell's paths.
"""

from __future__ import annotations

import os
from dataclasses import astuple, dataclass, fields, replace
from typing import Iterator

from ptycho_core.config import StudyConfig
from ptycho_core.evaluate.rows import DOSE_RESPONSE
from ptycho_core.methods import Method

__all__ = [
    "BENCHMARKS",
    "LOGS",
    "RESULTS",
    "STUDY_CONFIG",
    "BundleFiles",
    "Cell",
    "GroundTruthFiles",
    "ReconFiles",
    "ReportFiles",
    "ScoreFiles",
    "SimulatedFiles",
    "ViewFiles",
    "benchmark",
    "bundle",
    "cells",
    "ground_truth",
    "log",
    "network_bundles",
    "network_cell",
    "network_reconstructions",
    "reconstruction",
    "reconstructions",
    "refined_from",
    "region_views",
    "report",
    "scores",
    "simulated",
    "study_files",
    "view",
]

RESULTS = "results"
LOGS = "logs"
BENCHMARKS = "benchmarks"
#: The validated configuration as JSON, read by the PtyChi rule's own process.
STUDY_CONFIG = f"{RESULTS}/study_config.json"


@dataclass(frozen=True)
class Cell:
    """One cell of the study grid: dose label, view, replicate seed, and the method where it applies.

    ``dose`` is the path label of the dose (``config.dose_label``: ``"1e4"``);
    :meth:`photons` gives its value; ``None`` for what is per replicate only (its objects,
    :meth:`replicate`). ``view`` is ``None`` for a simulation (the splits do not depend on
    the view), ``method`` for what is per cell.
    """

    dose: str | None
    seed: int | str
    view: str | None = None
    method: str | None = None

    @classmethod
    def pattern(cls, *, view: bool = True, method: bool = False) -> "Cell":
        """The cell whose fields are the Snakemake wildcards ``{dose}``, ``{view}``, ``{seed}``, ``{method}``."""
        return cls("{dose}", "{seed}", "{view}" if view else None, "{method}" if method else None)

    @classmethod
    def replicate(cls, seed: int | str) -> "Cell":
        """Replicate ``seed`` alone (no dose, view or method): its objects."""
        return cls(None, seed)

    @classmethod
    def from_wildcards(cls, wildcards) -> "Cell":
        """The cell of a job's wildcards (a mapping with ``seed`` and optionally ``dose``, ``view``, ``method``)."""
        w = dict(wildcards.items()) if hasattr(wildcards, "items") else dict(wildcards)
        return cls(w.get("dose"), int(w["seed"]), w.get("view"), w.get("method"))

    def with_method(self, method: Method | str) -> "Cell":
        """The same cell for ``method`` (a :class:`Method`, its id, or a wildcard)."""
        return replace(self, method=method.value if isinstance(method, Method) else str(method))

    def without_method(self) -> "Cell":
        return replace(self, method=None)

    def photons(self, study: StudyConfig) -> float:
        """The dose in photons per pattern."""
        if self.dose is None:
            raise ValueError(f"cell {self.key}: a replicate's objects have no dose")
        return study.dose_labels()[self.dose]

    @property
    def key(self) -> str:
        """The cell's directories: ``[dose_<d>/][view_<v>/]seed_<s>[/<method>]``."""
        parts = [f"dose_{self.dose}"] if self.dose is not None else []
        parts += [f"view_{self.view}"] if self.view is not None else []
        parts += [f"seed_{self.seed}"] + ([self.method] if self.method is not None else [])
        return "/".join(parts)

    def record(self, study: StudyConfig) -> dict:
        """The cell as a step's sentinel records it: the method, the dose in photons per pattern, the view and the
        seed (a field that is ``None`` is left out)."""
        dose = None if self.dose is None else self.photons(study)
        out = {"method": self.method, "dose": dose, "view": self.view, "seed": int(self.seed)}
        return {k: v for k, v in out.items() if v is not None}


def cells(study: StudyConfig, *, view: bool = True) -> list[Cell]:
    """Every cell of the study (dose, then view, then seed), or every dose x seed with ``view=False``."""
    views = [v.name for v in study.views] if view else [None]
    return [Cell(d, s, v) for d in study.dose_labels() for v in views for s in study.seeds]


@dataclass(frozen=True)
class _Files:
    """A group of artifact paths written by one job; iterates over its paths."""

    def __iter__(self) -> Iterator[str]:
        for value in astuple(self):
            yield from (value if isinstance(value, tuple) else (value,))

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def under(self, root: str | os.PathLike) -> "_Files":
        """The same files below ``root`` (a study directory other than the working directory;
        ``"."`` changes nothing)."""
        root = os.fspath(root)
        if root in ("", "."):
            return self

        def moved(value):
            return tuple(moved(v) for v in value) if isinstance(value, tuple) else os.path.join(root, value)

        return type(self)(**{k: moved(v) for k, v in self.as_dict().items()})


@dataclass(frozen=True)
class GroundTruthFiles(_Files):
    obj: str
    sentinel: str


@dataclass(frozen=True)
class SimulatedFiles(_Files):
    train: str
    test: str
    preview: str
    sentinel: str


@dataclass(frozen=True)
class ViewFiles(_Files):
    view: str
    overlap: str
    figure: str
    sentinel: str


@dataclass(frozen=True)
class BundleFiles(_Files):
    model: str
    sidecar: str
    history: str
    figure: str
    sentinel: str


@dataclass(frozen=True)
class ReconFiles(_Files):
    recon: str
    sentinel: str


@dataclass(frozen=True)
class ScoreFiles(_Files):
    metrics: str
    frc: str
    alignment: str
    figure: str
    sentinel: str


@dataclass(frozen=True)
class ReportFiles(_Files):
    metrics: str
    summary: str
    highlights: str
    headline: str
    deltas: str
    landing: str
    dose_response: tuple[str, ...]
    frc: str
    montages: tuple[str, ...]
    overlap: str
    runtime: str
    sentinel: str
    inventory: str


def ground_truth(seed: int | str, *, training: bool = False) -> GroundTruthFiles:
    """The study object of replicate ``seed`` (or, ``training=True``, its separate training object) and its
    sentinel: each replicate draws its own objects (:meth:`ptycho_core.config.ObjectConfig.for_replicate`)."""
    name = "training_object" if training else "ground_truth"
    d = f"{RESULTS}/simulate/{Cell.replicate(seed).key}"
    return GroundTruthFiles(f"{d}/{name}.npz", f"{d}/{name}.sentinel.json")


def simulated(cell: Cell) -> SimulatedFiles:
    """The two splits of one dose x seed (the cell's view and method are ignored)."""
    d = f"{RESULTS}/simulate/{replace(cell, view=None, method=None).key}"
    return SimulatedFiles(f"{d}/train.npz", f"{d}/test.npz", f"{d}/preview.png", f"{d}/sentinel.json")


def view(cell: Cell) -> ViewFiles:
    """The view index (rows and groups) of one cell and its overlap record."""
    d = f"{RESULTS}/views/{cell.without_method().key}"
    return ViewFiles(f"{d}/view.npz", f"{d}/overlap_metrics.json", f"{d}/positions.png", f"{d}/sentinel.json")


def region_views(study: StudyConfig, cell: Cell) -> dict[str, ViewFiles]:
    """Every view of the cell's dose and seed, by name: the score step's evaluation region is common to them."""
    return {v.name: view(replace(cell, view=v.name, method=None)) for v in study.views}


def network_cell(cell: Cell) -> Cell:
    """The cell a method's bundle belongs to: the cell itself, or, for a method trained once per dose
    (``MethodSpec.per_view`` false), the cell without its view."""
    if cell.method in {m.value for m in Method if not m.spec.per_view}:
        return replace(cell, view=None)
    return cell


def bundle(cell: Cell) -> BundleFiles:
    """The network bundle of one cell and method, trained or refined (the dose's bundle of a method trained
    once per dose, :func:`network_cell`)."""
    d = f"{RESULTS}/networks/{network_cell(cell).key}"
    return BundleFiles(
        f"{d}/model.keras", f"{d}/bundle.json", f"{d}/history.csv", f"{d}/loss.png", f"{d}/sentinel.json"
    )


def refined_from(cell: Cell) -> BundleFiles:
    """The trained bundle that the cell's (refined) method fine-tunes (``methods.MethodSpec.refines``)."""
    source = Method(cell.method).spec.refines
    if source is None:
        raise ValueError(f"method {cell.method} refines no other method")
    return bundle(cell.with_method(source))


def reconstruction(cell: Cell) -> ReconFiles:
    """One method's reconstruction of one cell's test region."""
    d = f"{RESULTS}/reconstruct/{cell.key}"
    return ReconFiles(f"{d}/recon.npz", f"{d}/sentinel.json")


def reconstructions(cell: Cell) -> dict[str, ReconFiles]:
    """Every method's reconstruction of one cell, by method id (registry order)."""
    return {m.value: reconstruction(cell.with_method(m)) for m in Method}


def network_bundles(cell: Cell) -> dict[str, BundleFiles]:
    """The bundle of every network method of one cell, by method id (what its reconstruction job reads)."""
    return {m.value: bundle(cell.with_method(m)) for m in Method if m.spec.network}


def network_reconstructions(cell: Cell) -> dict[str, ReconFiles]:
    """The reconstruction of every network method of one cell, by method id (one job writes them all)."""
    return {m.value: reconstruction(cell.with_method(m)) for m in Method if m.spec.network}


def scores(cell: Cell) -> ScoreFiles:
    """The scores of every method of one cell."""
    d = f"{RESULTS}/score/{cell.without_method().key}"
    return ScoreFiles(
        f"{d}/metrics.csv", f"{d}/frc.csv", f"{d}/alignment.json", f"{d}/comparison.png", f"{d}/sentinel.json"
    )


def report(views: list[str]) -> ReportFiles:
    """The study's report: tables, the landing page, figures (a montage per view) and the inventory."""
    d = f"{RESULTS}/report"
    return ReportFiles(
        metrics=f"{d}/metrics.csv",
        summary=f"{d}/summary.json",
        highlights=f"{d}/highlights.txt",
        headline=f"{d}/headline.csv",
        deltas=f"{d}/deltas.txt",
        landing=f"{d}/landing.rst",
        dose_response=tuple(f"{d}/figures/dose_response/{q}_{m}.png" for q, m in DOSE_RESPONSE),
        frc=f"{d}/figures/frc.png",
        montages=tuple(f"{d}/figures/montage_{v}.png" for v in views),
        overlap=f"{d}/overlap.csv",
        runtime=f"{d}/runtime.csv",
        sentinel=f"{d}/sentinel.json",
        inventory=f"{d}/inventory.csv",
    )


def log(rule: str, cell: Cell | None = None) -> str:
    """The log file of one job of ``rule``."""
    return f"{LOGS}/{rule}/{cell.key}.log" if cell is not None else f"{LOGS}/{rule}.log"


def benchmark(rule: str, cell: Cell | None = None) -> str:
    """The benchmark (run-time) file of one job of ``rule``."""
    return f"{BENCHMARKS}/{rule}/{cell.key}.tsv" if cell is not None else f"{BENCHMARKS}/{rule}.tsv"


def _jobs(study: StudyConfig) -> Iterator[tuple[str, Cell | None, tuple[str, ...]]]:
    """Every job of the study as (rule, cell, output paths)."""
    for seed in study.seeds:
        yield "ground_truth", Cell.replicate(seed), tuple(ground_truth(seed))
        if study.object.separate_training:
            yield "training_object", Cell.replicate(seed), tuple(ground_truth(seed, training=True))
    for c in cells(study, view=False):
        yield "simulate", c, tuple(simulated(c))
        for m in Method:
            if not m.spec.per_view:
                yield "train_per_dose", c.with_method(m), tuple(bundle(c.with_method(m)))
    yield "study_config", None, (STUDY_CONFIG,)
    for c in cells(study):
        yield "views", c, tuple(view(c))
        for m in Method:
            mc = c.with_method(m)
            if m.spec.produced_by in ("trained", "refined") and m.spec.per_view:
                rule = "train" if m.spec.produced_by == "trained" else "refine"
                yield rule, mc, tuple(bundle(mc))
            if not m.spec.network:
                yield m.spec.reconstruct_step, mc, tuple(reconstruction(mc))
        yield "reconstruct_network", c, tuple(p for f in network_reconstructions(c).values() for p in f)
        yield "score", c, tuple(scores(c))
    files = report([v.name for v in study.views])
    yield "report", None, tuple(p for p in files if p != files.inventory)
    yield "inventory", None, (files.inventory,)


def benchmark_jobs(study: StudyConfig) -> list[tuple[str, Cell | None, str]]:
    """Every job of ``study`` as (rule, cell, benchmark file), in the workflow's order: the jobs that a dry
    run (``snakemake -n``) of a fresh directory lists besides the target rules, the study-wide ones (cell
    None) included (the cost table, ``scripts/estimate_cost.py``)."""
    return [(rule, cell, benchmark(rule, cell)) for rule, cell, _ in _jobs(study)]


def study_files(study: StudyConfig) -> set[str]:
    """Every file a finished run of ``study`` writes under results/, logs/ and benchmarks/ (relative paths).

    The inventory marks any other file (a cell since removed from the
    configuration, a stray file) as not of this study.
    """
    out: set[str] = set()
    for rule, cell, outputs in _jobs(study):
        out.update(outputs)
        out.update((log(rule, cell), benchmark(rule, cell)))
    return out
