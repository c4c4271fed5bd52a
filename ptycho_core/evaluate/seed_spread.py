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
:func:`draw_scores` reads one copy, and keeps a network method's score only
where it rests on a network trained under that copy's draw (the bundle's
training hash, the reconstruction's recorded bundle and the score's recorded
reconstruction all match the files): a copy whose trainings were not rerun
is refused, not counted as a draw with no spread.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptycho_core import layout
from ptycho_core.config import StudyConfig, study_from_dict
from ptycho_core.io.records import METRIC_ROWS
from ptycho_core.io.sentinel import sha256_file
from ptycho_core.methods import Method

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


def _rests_on_own_training(directory: Path, study: StudyConfig, cell: layout.Cell) -> bool:
    """Whether a network method's score in ``directory`` rests on a bundle trained under its own seed draw."""
    bundle, recon = layout.bundle(cell), layout.reconstruction(cell)
    score = layout.scores(cell.without_method())
    trained = json.loads((directory / bundle.sentinel).read_text())
    return (
        trained["section_hashes"].get("training") == study.section_hashes("training")["training"]
        and _recorded_sha(directory / recon.sentinel, bundle.model) == sha256_file(directory / bundle.model)
        and _recorded_sha(directory / score.sentinel, recon.recon) == sha256_file(directory / recon.recon)
    )


def draw_scores(
    directory: Path, study: StudyConfig, methods: set[str], quantity: str, metric: str
) -> dict[tuple[str, str, str], dict[int, float]]:
    """``{(dose label, view, method): {seed: value}}`` of one copy, for ``methods`` (network methods only),
    over the cells of its own configuration. A score that rests on another draw's network is an error."""
    out: dict = defaultdict(dict)
    for label in study.dose_labels():
        for view in study.views:
            for seed in study.seeds:
                cell = layout.Cell(label, seed, view.name)
                path = directory / layout.scores(cell).metrics
                if not path.is_file():
                    raise DrawError(f"{path}: no scores (run the copy to its scores)")
                for row in METRIC_ROWS.read(path):
                    if row["method"] not in methods or row["quantity"] != quantity or row["metric"] != metric:
                        continue
                    if not _rests_on_own_training(directory, study, cell.with_method(row["method"])):
                        raise DrawError(
                            f"{path}: {row['method']} is not scored on a network trained under training.seed_draw "
                            f"{study.training.seed_draw} (rerun its training, reconstruction and score)"
                        )
                    out[(label, view.name, row["method"])][seed] = float(row["value"])
    return dict(out)


def network_methods() -> set[str]:
    return {m.value for m in Method if m.spec.network}
