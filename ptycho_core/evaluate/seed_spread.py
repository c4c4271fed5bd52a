"""The networks' spread over training seeds: copies of one study that differ only in ``training.seed_draw``.

A study's replicate spread mixes every source of variance (object, noise,
scan, training seed). To see what the training seed alone contributes, a
finished study is copied, ``training.seed_draw`` set to 1, 2, ... in each
copy, and only the trainings rerun (``--forcerun train`` or
``train_per_dose``, then the reconstructions and scores): every copy holds
the same data, so the scores of one replicate differ only by the networks'
training seeds.

Per dose x view x method, :func:`pooled_spread` pools the within-replicate
variance over the replicates (``sum over replicates of (draws - 1)`` degrees of
freedom) and bounds the standard deviation from above at 95 % (chi-square).
:func:`draw_scores` reads one copy. A network method's score counts only where
it rests on the copy's own network: the reconstruction's recorded bundle and
the score's recorded reconstruction match the files, every bundle of the copy
carries one training hash (:func:`check_distinct_trainings`: a different one in
every copy), so a copy whose trainings were not all rerun is refused, not
counted as a draw with no spread. A training the train step refused (its
bundle's ``refused``, or no bundle in a study of before bundle version 2) is
a failed run of that draw: counted, never dropped, and its replicate left
out of the pooled spread.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptycho_core import layout
from ptycho_core.config import StudyConfig, study_from_dict
from ptycho_core.io.records import METRIC_ROWS
from ptycho_core.io.sentinel import sha256_file

#: Configuration keys a draw copy may change besides ``training.seed_draw``: which cells it reran.
CELL_KEYS = ("name", "doses", "seeds")


class DrawError(ValueError):
    """Copies that are not draws of one study, or a score that does not rest on the copy's own training."""


@dataclass(frozen=True)
class Spread:
    """Pooled within-replicate standard deviation over training-seed draws."""

    sd: float
    df: int
    upper95: float  # one-sided 95 % upper confidence bound of the sd (chi-square, df degrees of freedom)


def pooled_spread(values: np.ndarray) -> Spread:
    """``values`` (replicates, draws): pooled sd of the draws about each replicate's own mean."""
    from scipy.stats import chi2

    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] < 2 or v.shape[0] < 1 or not np.all(np.isfinite(v)):
        raise ValueError(f"pooled spread: expected finite (replicates, draws >= 2) values, found shape {v.shape}")
    df = v.shape[0] * (v.shape[1] - 1)
    ss = float(np.sum((v - v.mean(axis=1, keepdims=True)) ** 2))
    sd = math.sqrt(ss / df)
    return Spread(sd, df, math.sqrt(ss / chi2.ppf(0.05, df)))


def read_study(directory: Path) -> StudyConfig:
    path = directory / layout.STUDY_CONFIG
    if not path.is_file():
        raise DrawError(f"{path}: no study configuration (run the study first)")
    return study_from_dict(json.loads(path.read_text()), source=str(path))


def check_draws(studies: list[StudyConfig], directories: list[Path]) -> None:
    """The copies are one study (up to :data:`CELL_KEYS`) with distinct ``training.seed_draw``."""

    def core(s: StudyConfig) -> dict:
        d = s.to_dict()
        d["training"] = {k: v for k, v in d["training"].items() if k != "seed_draw"}
        return {k: v for k, v in d.items() if k not in CELL_KEYS}

    first = core(studies[0])
    for s, d in zip(studies[1:], directories[1:]):
        other = core(s)
        diff = sorted(k for k in set(first) | set(other) if first.get(k) != other.get(k))
        if diff:
            raise DrawError(f"{d}: not the study of {directories[0]}: sections {diff} differ (only seed_draw may)")
    draws = [s.training.seed_draw for s in studies]
    if len(set(draws)) != len(draws):
        raise DrawError(f"training.seed_draw of {[str(d) for d in directories]}: {draws}; expected distinct draws")


def _recorded_sha(sentinel: Path, path: str) -> str | None:
    record = json.loads(sentinel.read_text())
    return next((f["sha256"] for f in record["inputs"] if f["path"] == path), None)


@dataclass
class DrawScores:
    """One copy's scores ``{(dose label, view, method): {seed: value}}``, the failed trainings
    ``{(dose label, view, method): [seed, ...]}`` (a refused network, or none), and the training hash its bundles
    carry."""

    values: dict = field(default_factory=lambda: defaultdict(dict))
    failed: dict = field(default_factory=lambda: defaultdict(list))
    training_hash: str | None = None


def draw_scores(directory: Path, study: StudyConfig, methods: set[str], quantity: str, metric: str) -> DrawScores:
    """The scores of ``methods`` (network methods) in one copy, over the cells of its own configuration."""
    out = DrawScores()
    for label in study.dose_labels():
        for view in study.views:
            for seed in study.seeds:
                cell = layout.Cell(label, seed, view.name)
                for method in sorted(methods):
                    _read_cell(directory, cell.with_method(method), quantity, metric, out)
    return out


def _read_cell(directory: Path, cell: layout.Cell, quantity: str, metric: str, out: DrawScores) -> None:
    bundle, recon = layout.bundle(cell), layout.reconstruction(cell)
    score = layout.scores(cell.without_method())
    key = (cell.dose, cell.view, cell.method)
    if not (directory / bundle.sentinel).is_file():
        out.failed[key].append(cell.seed)  # a study of before bundle version 2: a refused network left no bundle
        return
    trained = json.loads((directory / bundle.sentinel).read_text())["section_hashes"].get("training")
    if out.training_hash not in (None, trained):
        raise DrawError(
            f"{directory / bundle.sentinel}: training hash {trained}, but other networks of {directory} carry "
            f"{out.training_hash}: not every training of this copy was rerun under its seed_draw"
        )
    out.training_hash = trained
    path = directory / score.metrics
    stale = _recorded_sha(directory / recon.sentinel, bundle.model) != sha256_file(
        directory / bundle.model
    ) or _recorded_sha(directory / score.sentinel, recon.recon) != sha256_file(directory / recon.recon)
    if stale:
        raise DrawError(
            f"{path}: {cell.method} is not scored on the network of {directory / bundle.model} "
            "(rerun its reconstruction and score)"
        )
    rows = [
        r
        for r in METRIC_ROWS.read(path)
        if (r["method"], r["quantity"], r["metric"]) == (cell.method, quantity, metric)
    ]
    if len(rows) != 1:
        raise DrawError(f"{path}: expected one {quantity} {metric} row of {cell.method}, found {len(rows)}")
    if json.loads((directory / bundle.sidecar).read_text()).get("refused"):
        out.failed[key].append(cell.seed)  # refused by an outcome check of its training: scored, but a failed run
        return
    out.values[key][int(cell.seed)] = float(rows[0]["value"])


def check_distinct_trainings(draws: list[DrawScores], directories: list[Path]) -> None:
    """Every copy's networks were trained under its own draw: the copies' training hashes differ."""
    hashes = [d.training_hash for d in draws]
    if len(set(hashes)) != len(hashes):
        raise DrawError(
            f"training hashes of {[str(d) for d in directories]}: {hashes}; a copy whose trainings were not rerun "
            "repeats another's"
        )
