"""Failed runs: counted in the report, never dropped.

A run of a network method fails when an outcome check of its training fails
(:func:`ptycho_core.steps.train.outcome_refusals`: the loss never fell, the
predictions are constant, or the phase head is stuck in the tails of
pi * tanh). Such a network is saved, refined, reconstructed and scored as
produced, so its score, however poor, stays in every mean, interval and
verdict; each cell's ``alignment.json`` (score step) names the refusals of
every method it scored. :func:`collect_failed_runs` gathers them for the
report, which counts them per cell and method.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping

from ptycho_core.config import dose_label
from ptycho_core.evaluate.tables import AggregationError, cell_name
from ptycho_core.io.npz import DataContractError
from ptycho_core.io.records import ALIGNMENT_RECORD

__all__ = ["collect_failed_runs", "failed_run_lines"]


def collect_failed_runs(cells: Iterable[Mapping]) -> dict[tuple[float, str, str], dict[int, list[str]]]:
    """``{(dose, view, method): {seed: [refusal, ...]}}`` of the failed runs of ``cells`` (each ``dose``, ``view``,
    ``seed`` and ``path``: the cell's ``alignment.json``); methods without a failed run are absent."""
    out: dict = defaultdict(dict)
    for cell in cells:
        dose, view, seed = float(cell["dose"]), str(cell["view"]), int(cell["seed"])
        try:
            record = ALIGNMENT_RECORD.read(cell["path"])
        except DataContractError as exc:
            raise AggregationError(f"cell {cell_name(dose, view, seed)}: {exc}") from None
        for method, entry in record["methods"].items():
            if entry["refused"]:
                out[(dose, view, method)][seed] = list(entry["refused"])
    return dict(out)


def failed_run_lines(failed: Mapping[tuple[float, str, str], Mapping[int, list[str]]]) -> list[str]:
    """One line per failed run, ``"<method>, <dose label>, view <view>, seed <seed>: <refusal>; ..."``, sorted by
    dose, view, method and seed."""
    lines = []
    for (dose, view, method), seeds in sorted(failed.items()):
        for seed, reasons in sorted(seeds.items()):
            lines.append(f"{method}, {dose_label(dose)}, view {view}, seed {seed}: " + "; ".join(reasons))
    return lines
