"""Phase F, PtyChi arm: reconstruct one dose x view x seed with pty-chi LSQML.

A command-line program, not a Snakemake ``script:``: it runs in the separate
environment that holds torch and pty-chi (``.venv-ptychi``), started by a
``shell:`` rule as

    .venv-ptychi/bin/python workflow/scripts/reconstruct_ptychi.py \\
        --configfile STUDY.yaml | --config-json STUDY.json \\
        --dose D --view V --seed S --test test.npz --view-file view.npz \\
        --sentinels phase_c.json phase_d.json \\
        --out recon.npz --sentinel recon.json --log job.log [--threads T]

The study configuration is validated as in every other step
(``ptycho_core.config``); the work is ``ptycho_core.steps.reconstruct_ptychi.run_reconstruct_ptychi``.
"""

from __future__ import annotations

import argparse
import json
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    study = p.add_mutually_exclusive_group(required=True)
    study.add_argument("--config-json", help="the study configuration as a JSON file (e.g. Snakemake's config dumped)")
    study.add_argument("--configfile", help="the study configuration as a YAML file")
    p.add_argument("--dose", type=float, required=True, help="dose (expected photons per pattern)")
    p.add_argument("--view", required=True, help="view name (e.g. dense)")
    p.add_argument("--seed", type=int, required=True, help="replicate seed")
    p.add_argument("--test", required=True, help="phase C test split (test.npz)")
    p.add_argument("--view-file", required=True, help="phase D view file (view.npz)")
    p.add_argument("--sentinels", nargs="+", required=True, help="sentinels of the inputs, verified first")
    p.add_argument("--out", required=True, help="reconstruction to write (recon.npz)")
    p.add_argument("--sentinel", required=True, help="sentinel JSON to write after the checks")
    p.add_argument("--log", required=True, help="log file (stdout, stderr and logging go there)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from ptycho_core.steps.joblog import log_to_file

    log_to_file(args.log)

    from ptycho_core.config import load_study, study_from_dict
    from ptycho_core.steps.reconstruct_ptychi import run_reconstruct_ptychi

    if args.configfile:
        study = load_study(args.configfile)
    else:
        with open(args.config_json, encoding="utf-8") as fh:
            study = study_from_dict(json.load(fh), source=args.config_json)
    run_reconstruct_ptychi(
        study,
        dose=args.dose,
        view_name=args.view,
        seed=args.seed,
        test_path=args.test,
        view_path=args.view_file,
        input_sentinels=list(args.sentinels),
        out_recon=args.out,
        sentinel_path=args.sentinel,
        threads=args.threads,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
