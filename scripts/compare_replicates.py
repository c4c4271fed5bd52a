"""Whether two replicate sets of a study agree: the verdicts and crossover doses of two finished reports, side by side.

Run the same study twice with disjoint replicate seeds, for example the default
study (seeds 0-2) in one clone and ``config/second_replicates.yaml`` (seeds 3-5)
in another::

    make study                                                              # first clone
    .venv/bin/snakemake --cores 2 --configfile config/second_replicates.yaml  # second clone

and compare their reports (``results/report/summary.json`` of each)::

    .venv/bin/python scripts/compare_replicates.py RUN_A RUN_B [--markdown]

Prints every cell verdict and every crossover dose of both runs with its
status (:mod:`ptycho_core.evaluate.replication`: ``agrees``, ``differs``,
``contradicts`` or ``not compared``) and the count of each; exits 1 when
some statement of one run is contradicted by the other, 2 when a report
summary is missing or does not meet its contract.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class InputError(Exception):
    """A study directory without a readable report summary."""


def read_summary(directory: Path) -> dict:
    from ptycho_core import layout
    from ptycho_core.io.npz import DataContractError
    from ptycho_core.io.records import SUMMARY_DOCUMENT

    path = Path(layout.report([]).under(directory).summary)
    if not path.is_file():
        raise InputError(f"{path}: no report summary (run the study to its report first)")
    try:
        return SUMMARY_DOCUMENT.read(path)
    except DataContractError as e:
        raise InputError(str(e)) from None


def table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(r, widths)) for r in [header, *rows])


def main() -> int:
    from ptycho_core.evaluate.replication import CONTRADICTS, replication
    from ptycho_core.evaluate.verdicts import dose_text

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path, help="study directory of the first replicate set")
    ap.add_argument("b", type=Path, help="study directory of the second replicate set")
    ap.add_argument("--markdown", action="store_true", help="markdown tables")
    args = ap.parse_args()
    try:
        result = replication(read_summary(args.a), read_summary(args.b))
    except InputError as e:
        print(f"compare_replicates: {e}", file=sys.stderr)
        return 2
    na, nb = str(args.a), str(args.b)
    dash = "–"
    print(
        table(
            ["metric", "view", "dose", na, nb, "status"],
            [
                [
                    f"{r['quantity']} {r['metric']}",
                    r["view"],
                    dose_text(r["dose"]),
                    r["a"] or dash,
                    r["b"] or dash,
                    r["status"],
                ]
                for r in result["verdicts"]
            ],
            args.markdown,
        )
    )
    print()
    print(
        table(
            ["crossover", "view", na, nb, "status"],
            [[r["method"], r["view"], r["a"] or dash, r["b"] or dash, r["status"]] for r in result["crossovers"]],
            args.markdown,
        )
    )
    print()
    print(", ".join(f"{n} {s}" for s, n in result["counts"].items()))
    return 1 if result["counts"][CONTRADICTS] else 0


if __name__ == "__main__":
    sys.exit(main())
