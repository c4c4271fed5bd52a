"""What a study will cost before it is launched, scaled from a finished study's benchmark files.

    python scripts/estimate_cost.py --finished DIR [--finished-config FILE ...] --config LARGER.yaml [...]
                                    [--cores 16]

``--config``: the study files of the study to estimate, as ``snakemake --configfile`` takes them (merged
over config/config.yaml of the current directory, else of this repository). ``--finished``: the directory
of a finished study (its ``benchmarks/``); ``--finished-config``: the study files it ran with (default: its
``results/study_config.json``, checked against the configuration hash in the report's sentinel, since that
file may hold an older value of a section the PtyChi jobs do not read).

Method. Every job of both studies comes from the layout (``ptycho_core.layout.benchmark_jobs``: the jobs a
dry run of a fresh directory lists, target rules aside), so nothing starts Snakemake. Each job of the
finished study is read from its benchmark file (wall seconds, column ``s``; every rule runs with
``threads: 1``, so wall seconds are core-seconds). Per rule, and per rule and method where its jobs take a
method (``train``, ``train_per_dose``, ``refine``, ``reconstruct_ptychi``), the finished jobs give seconds
per unit of work (their summed seconds over their summed work), and each job of the target study is
estimated as that rate times its own work. The work of a job is a proxy, :func:`Workload.work`:

- ``simulate``: patterns simulated (training + test split of the dose x seed) x N^2;
- ``views``: rows of the view (training + test; positions, not patterns: no N^2);
- ``train``: the view's training patterns x N^2 x ``training.epochs``; ``train_per_dose``: every training
  pattern of the dose x N^2 x ``training.epochs``;
- ``refine``: ``refinement.max_steps`` x ``refinement.batch_size`` x N^2 (a cap; its cost does not depend on
  the view's number of groups);
- ``reconstruct_network``, ``score``: the view's test patterns x N^2;
  ``reconstruct_ptychi``: the same x ``ptychi.epochs`` (a cap);
- ``ground_truth``, ``training_object``: object pixels (``object.size``^2);
- ``study_config``: 1; ``report``, ``inventory``: the number of cells (dose x view x seed).

Pattern counts are exact: the base scan and its split from ``physics.simulate.make_geometry(study, seed)``,
a view's rows from ``sampling.views.select_view``, as the views step selects them. With the same
configuration the estimate is the measured total, job for job (the tests check it).

What the proxy does not follow: epochs are a maximum, and early stopping (train) and the stopping rule
(refine, PtyChi) make those times depend on the data; the network's width (``training.filters``),
the grouping, batch sizes and precision; the machine (a CPU study scaled to a GPU machine says nothing).
The script names every such key that differs between the two studies. The wall time it prints for
``--cores`` is a lower bound: the total over the cores, and no less than the longest job.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

from ptycho_core import layout
from ptycho_core.config import StudyConfig, study_from_dict
from ptycho_core.evaluate.runtime import read_benchmark
from ptycho_core.physics.simulate import make_geometry
from ptycho_core.sampling.views import select_view
from ptycho_core.study_files import merge_studies, read_study_file

ROOT = Path(__file__).resolve().parents[1]

#: Keys whose change the work proxy does not follow (named when the two studies differ in one).
NOT_SCALED = (
    ("training", "filters"),
    ("training", "batch_size"),
    ("training", "precision"),
    ("training", "early_stopping_patience"),
    ("training", "schedule"),
    ("grouping", "gridsize"),
    ("grouping", "K"),
    ("grouping", "train_groups_per_position"),
    ("refinement", "batch_size"),
    ("refinement", "lr_patience"),
    ("ptychi", "batch_size"),
    ("ptychi", "probe_refinement"),
    ("ptychi", "noise_model"),
    ("stopping", None),  # the whole section: when PtyChi and the refinement stop
)


def base_config() -> Path:
    """The file study files are merged over: config/config.yaml of the current directory, else the repository's."""
    here = Path("config/config.yaml")
    return here if here.is_file() else ROOT / "config" / "config.yaml"


def load_study_files(files: list[str | Path], base: str | Path | None = None) -> StudyConfig:
    """The study of ``files`` merged over ``base`` (default :func:`base_config`), as ``--configfile`` does."""
    paths = [Path(base) if base is not None else base_config(), *map(Path, files)]
    layers = [(str(p), read_study_file(p, str(p))) for p in paths]
    raw, sources = merge_studies(layers)
    return study_from_dict(raw, source=" + ".join(label for label, _ in layers), sources=sources)


def finished_study(directory: str | Path, files: list[str | Path] | None = None) -> tuple[StudyConfig, list[str]]:
    """The finished study's configuration and notes: from ``files`` (study files), or else from its
    ``results/study_config.json``, compared with the configuration hash its report's sentinel records."""
    if files:
        return load_study_files(files), []
    path = Path(directory) / layout.STUDY_CONFIG
    if not path.is_file():
        raise SystemExit(f"{path}: not found; pass the finished study's files with --finished-config")
    study = study_from_dict(json.loads(path.read_text()), source=str(path))
    notes = []
    sentinel = Path(directory) / layout.report([v.name for v in study.views]).sentinel
    if not sentinel.is_file():
        notes.append(f"{sentinel} not found: the configuration of {path} is not checked against the report's")
    elif json.loads(sentinel.read_text()).get("config_hash") != study.config_hash():
        notes.append(
            f"{path} differs from the configuration the report ran with (a section the PtyChi jobs do not read, "
            "such as training, may be older): pass the study's files with --finished-config"
        )
    return study, notes


class Workload:
    """The work proxy of every job of one study (module docstring), with its geometry computed once per seed."""

    def __init__(self, study: StudyConfig):
        self.study = study
        self._splits: dict[int, tuple[int, int]] = {}
        self._views: dict[tuple[int, str], tuple[int, int]] = {}

    def _geometry(self, seed: int) -> None:
        study = self.study
        geo = make_geometry(study, seed)
        scan, split = geo.scan, geo.split
        self._splits[seed] = (int(split.train.size), int(split.test.size))
        for v in study.views:
            chain = study.stride_chain(v.name)
            rows = [
                select_view(scan.x[idx], scan.y[idx], scan.index[idx], scan.grid_shape, chain, scan.step).size
                for idx in (split.train, split.test)
            ]
            self._views[(seed, v.name)] = (int(rows[0]), int(rows[1]))

    def split_patterns(self, seed: int) -> tuple[int, int]:
        """Training and test patterns of replicate ``seed`` (the same at every dose)."""
        if seed not in self._splits:
            self._geometry(seed)
        return self._splits[seed]

    def view_rows(self, seed: int, view: str) -> tuple[int, int]:
        """Training and test rows of one view of replicate ``seed``."""
        if seed not in self._splits:
            self._geometry(seed)
        return self._views[(seed, view)]

    def work(self, rule: str, cell: layout.Cell | None) -> float:
        """The work of one job (arbitrary units, comparable between studies for the same rule and method)."""
        s = self.study
        n2 = s.N**2
        if rule in ("ground_truth", "training_object"):
            return float(s.object.size**2)
        if rule == "study_config":
            return 1.0
        if rule in ("report", "inventory"):
            return float(len(layout.cells(s)))
        seed = int(cell.seed)
        if rule == "simulate":
            return float(sum(self.split_patterns(seed)) * n2)
        if rule == "train_per_dose":
            return float(self.split_patterns(seed)[0] * n2 * s.training.epochs)
        train, test = self.view_rows(seed, cell.view)
        per_rule = {
            "views": train + test,
            "train": train * n2 * s.training.epochs,
            "refine": s.refinement.max_steps * s.refinement.batch_size * n2,
            "reconstruct_network": test * n2,
            "reconstruct_ptychi": test * n2 * s.ptychi.epochs,
            "score": test * n2,
        }
        if rule not in per_rule:
            raise KeyError(f"estimate_cost: no work proxy for rule {rule!r}; add it to Workload.work")
        return float(per_rule[rule])


def _group(rule: str, cell: layout.Cell | None) -> tuple[str, str | None]:
    return rule, None if cell is None else cell.method


def measured_rates(study: StudyConfig, directory: str | Path) -> tuple[dict, dict[str, int]]:
    """Per (rule, method) of the finished ``study`` in ``directory``: jobs measured, their summed wall
    seconds and summed work; and per rule the number of jobs without a benchmark file (not counted)."""
    workload = Workload(study)
    groups: dict[tuple[str, str | None], dict] = {}
    missing: dict[str, int] = {}
    for rule, cell, path in layout.benchmark_jobs(study):
        path = os.path.join(directory, path)
        if not os.path.isfile(path):
            missing[rule] = missing.get(rule, 0) + 1
            continue
        seconds, _ = read_benchmark(path, rule)
        g = groups.setdefault(_group(rule, cell), {"jobs": 0, "wall_s": 0.0, "work": 0.0})
        g["jobs"] += 1
        g["wall_s"] += seconds
        g["work"] += workload.work(rule, cell)
    return groups, missing


def estimate(target: StudyConfig, rates: dict) -> tuple[pd.DataFrame, float]:
    """The target study's cost per rule and method from ``rates`` (:func:`measured_rates`), and its longest
    job (seconds).

    Rows: per (rule, method) of the target's jobs, in the workflow's order, with ``jobs``,
    ``finished_jobs`` and ``finished_wall_s_per_job`` (0 and NaN where the finished study measured none:
    then the estimate is NaN and the total leaves it out), ``wall_s_per_job`` and ``total_wall_s``.
    """
    workload = Workload(target)
    rows: dict[tuple[str, str | None], dict] = {}
    longest = 0.0
    for rule, cell, _ in layout.benchmark_jobs(target):
        key = _group(rule, cell)
        measured = rates.get(key)
        row = rows.setdefault(
            key,
            {
                "rule": rule,
                "method": key[1],
                "jobs": 0,
                "finished_jobs": measured["jobs"] if measured else 0,
                "finished_wall_s_per_job": measured["wall_s"] / measured["jobs"] if measured else float("nan"),
                "total_wall_s": 0.0 if measured else float("nan"),
            },
        )
        row["jobs"] += 1
        if measured:
            if measured["work"] > 0:
                seconds = measured["wall_s"] * workload.work(rule, cell) / measured["work"]
            else:  # no work measured: every job costs the mean
                seconds = measured["wall_s"] / measured["jobs"]
            row["total_wall_s"] += seconds
            longest = max(longest, seconds)
    table = pd.DataFrame(list(rows.values()))
    table["method"] = [m if isinstance(m, str) else None for m in table["method"]]  # None, not NaN
    table["wall_s_per_job"] = table["total_wall_s"] / table["jobs"]
    return table, longest


def differing_keys(a: StudyConfig, b: StudyConfig) -> list[str]:
    """The :data:`NOT_SCALED` keys (a key None: the whole section) whose values differ between ``a`` and ``b``,
    with both values."""
    da, db = a.to_dict(), b.to_dict()
    out = []
    for section, key in NOT_SCALED:
        va, vb = da.get(section), db.get(section)
        if key is not None:
            va, vb = (va or {}).get(key), (vb or {}).get(key)
        if va != vb:
            out.append(f"{section if key is None else f'{section}.{key}'}: {va} -> {vb}")
    return out


def _fmt(value: float, spec: str) -> str:
    return "n/a" if pd.isna(value) else format(value, spec)


def report_lines(
    table: pd.DataFrame,
    longest_s: float,
    *,
    cores: int,
    target: StudyConfig,
    target_label: str,
    finished: StudyConfig,
    finished_label: str,
    missing: dict[str, int],
    notes: list[str],
) -> list[str]:
    """The printed estimate: a table per rule (and per method where the jobs take one), the grand total, the
    wall-time lower bound for ``cores`` and the caveats."""
    cells = len(layout.cells(target))
    lines = [
        f"Estimated cost of study '{target.name}' ({target_label}): {cells} cells "
        f"({len(target.doses)} doses x {len(target.views)} views x {len(target.seeds)} seeds), "
        f"{int(table['jobs'].sum())} jobs.",
        f"Scaled from the benchmarks of the finished study '{finished.name}' in {finished_label} "
        f"({len(layout.cells(finished))} cells): seconds per unit of work of each rule (and method), "
        "times each job's work (patterns x N^2, x epochs where a job iterates; scripts/estimate_cost.py).",
        "",
        f"{'rule':<20} {'method':<15} {'jobs':>6} {'measured s/job':>15} {'est. s/job':>11} {'core-hours':>11}",
    ]
    for rule in dict.fromkeys(table["rule"]):
        of_rule = table[table["rule"] == rule]
        with_method = of_rule["method"].notna().any()
        total = of_rule["total_wall_s"].sum(min_count=len(of_rule))
        jobs = int(of_rule["jobs"].sum())
        measured = of_rule["finished_wall_s_per_job"] * of_rule["finished_jobs"]
        measured_mean = measured.sum() / of_rule["finished_jobs"].sum() if of_rule["finished_jobs"].sum() else None
        lines.append(
            f"{rule:<20} {'(all)' if with_method else '-':<15} {jobs:>6} "
            f"{_fmt(measured_mean if measured_mean is not None else float('nan'), '.2f'):>15} "
            f"{_fmt(total / jobs, '.2f'):>11} {_fmt(total / 3600, '.3f'):>11}"
        )
        if with_method:
            for r in of_rule.to_dict("records"):
                lines.append(
                    f"  {rule:<18} {r['method']:<15} {r['jobs']:>6} {_fmt(r['finished_wall_s_per_job'], '.2f'):>15} "
                    f"{_fmt(r['wall_s_per_job'], '.2f'):>11} {_fmt(r['total_wall_s'] / 3600, '.3f'):>11}"
                )
    total_s = float(table["total_wall_s"].sum())  # NaN (not measured) left out
    unmeasured = sorted({r for r, t in zip(table["rule"], table["total_wall_s"]) if pd.isna(t)})
    lines += [
        f"{'total':<20} {'':<15} {int(table['jobs'].sum()):>6} {'':>15} {'':>11} {total_s / 3600:>11.3f}",
        "",
        f"Core-hours = job hours: every rule runs with threads: 1. With --cores {cores}: at least "
        f"{max(total_s / cores, longest_s) / 3600:.3f} h of wall time (the total over the cores, and no less "
        f"than the longest job, {longest_s / 3600:.3f} h); dependencies make it longer.",
        "Train, refine and PtyChi times depend on the data: the estimate scales with the configured maximum epochs "
        "(training.epochs, refinement.max_steps, ptychi.epochs), and early stopping or the stopping rule may end "
        "them sooner.",
    ]
    if unmeasured:
        lines.append(
            f"Not measured in the finished study, left out of the total (a lower bound): {', '.join(unmeasured)}."
        )
    if missing:
        lines.append(
            "Jobs of the finished study without a benchmark file, not counted: "
            + ", ".join(f"{r} {n}" for r, n in missing.items())
            + "."
        )
    for diff in differing_keys(finished, target):
        lines.append(f"Not followed by the estimate: {diff}.")
    lines += [f"Note: {n}" for n in notes]
    lines.append("Times are the finished study's machine's; another machine (a GPU) changes them.")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--finished", required=True, help="directory of a finished study (its benchmarks/)")
    parser.add_argument(
        "--finished-config",
        nargs="+",
        default=None,
        help="study files of the finished study (default: its results/study_config.json)",
    )
    parser.add_argument("--config", nargs="+", required=True, help="study files of the study to estimate")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores for the wall-time bound")
    args = parser.parse_args(argv)
    if args.cores < 1:
        parser.error("--cores must be at least 1")
    finished, notes = finished_study(args.finished, args.finished_config)
    target = load_study_files(args.config)
    rates, missing = measured_rates(finished, args.finished)
    if not rates:
        raise SystemExit(f"{args.finished}: no benchmark file of study '{finished.name}' found")
    table, longest = estimate(target, rates)
    lines = report_lines(
        table,
        longest,
        cores=args.cores,
        target=target,
        target_label=" + ".join(map(str, args.config)),
        finished=finished,
        finished_label=str(args.finished),
        missing=missing,
        notes=notes,
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
