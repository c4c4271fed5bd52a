"""Benchmark: training and prediction throughput of the project's networks on this machine.

Runs the project's own code paths: PtychoPINN's training step (object model
+ diffraction physics + Poisson loss, fed by ``training.GroupBatches`` through
``keras.Model.fit``), the Baseline's training step (support-weighted MAE
against ground-truth patches), and chunked prediction of the object model
(``model.predict``, batch 64, as the reconstruction step does). Two sizes:

- ``default``: the default study (config/config.yaml: N = 32, encoder widths
  32/64/128, batch 16, gridsize 2 for PtychoPINN);
- ``reference``: the earlier implementation's size (N = 64, encoder widths
  64/128/256 = 2.25 M parameters in PtychoPINN's object model, batch 16),
  on the geometry of config/full.yaml, PtychoPINN at gridsize 1 and 2.

Each case runs in its own process (clean backend state, its own peak
memory): a warm-up epoch of ``--warmup`` steps (graph tracing and
compilation), then ``--steps`` timed steps. Samples are groups for
PtychoPINN (a group of C patterns is one sample) and patterns for the
Baseline. Peak memory is the process's maximum resident set size.

The reference figures of the earlier implementation (hoidn/PtychoPINN) were
measured on this machine kind (2-core Xeon with AVX512-BF16/AMX, Keras 3.15,
TensorFlow 2.21) at N = 64, widths 64/128/256, batch 16, and are recorded in
issue 11 of this project: training 52.2 samples/s at gridsize 1, 50 groups/s
at gridsize 2, prediction 194 patterns/s at gridsize 1.

    .venv/bin/python scripts/bench_throughput.py [--precision float32|mixed_bfloat16] [--size default|reference|all]
                                                 [--heap kept|default] [--batch B]

``--batch`` sets the training batch (default: the study's, 16). Larger
batches are no cheaper per sample on a CPU: 1 thread, float32, the same AMD
EPYC, idle (2026-12-07), batch 16 / 32 / 64: PtychoPINN training 90.4 / 75.5
/ 70.0 groups/s, Baseline 118.9 / 92.7 / 85.6 patterns/s (median of 3 blocks
of 20 steps), so the batch size is no lever on the study's cost there.

``--heap default`` leaves glibc's allocator as it is; ``kept`` (the network
jobs' setting, :func:`ptycho_core.nn.backend.keep_heap`) keeps freed memory
in the process. Measured on a 2-core AMD EPYC (AVX2 only), float32, size
``default``, one after the other on an idle machine (2026-12-07):

    heap       PtychoPINN train   Baseline train   PtychoPINN predict
    default    70.4 groups/s      46.8 patterns/s  3,323 patterns/s   (peak 757 MB)
    kept       134.1 groups/s     163.8 patterns/s 3,633 patterns/s   (peak 806 MB)

With ``default`` a third of the CPU time was in the kernel (about 1,500
mmap/munmap per training step, strace). mixed_bfloat16 on that CPU, heap
kept: 19.0 groups/s and 17.6 patterns/s (emulated bfloat16; hence
``training.precision: auto``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: The earlier implementation's throughput at the reference size (issue 11; see the docstring).
REFERENCE = {
    ("PtychoPINN", 1, "train"): 52.2,
    ("PtychoPINN", 4, "train"): 50.0,
    ("PtychoPINN", 1, "predict"): 194.0,
}

#: (size, method, channels, what) of every case, in print order.
CASES = [
    ("default", "PtychoPINN", 4, "train"),
    ("default", "Baseline", 1, "train"),
    ("default", "PtychoPINN", 4, "predict"),
    ("reference", "PtychoPINN", 1, "train"),
    ("reference", "PtychoPINN", 4, "train"),
    ("reference", "Baseline", 1, "train"),
    ("reference", "PtychoPINN", 1, "predict"),
    ("reference", "PtychoPINN", 4, "predict"),
]


def study_for(size: str):

    from ptycho_core.config import load_study, study_from_dict
    from ptycho_core.study_files import merge_studies, read_study_file

    if size == "default":
        return load_study(ROOT / "config/config.yaml")
    layers = [
        (f"config/{name}", read_study_file(ROOT / "config" / name, f"config/{name}"))
        for name in ("config.yaml", "full.yaml")
    ]
    raw, sources = merge_studies(layers)  # as the workflow merges --configfile config/full.yaml
    study = study_from_dict(raw, source="config/config.yaml + config/full.yaml", sources=sources)
    return replace(study, training=replace(study.training, filters=(64, 128, 256), batch_size=16))


def synthetic_data(study, channels: int, n_patterns: int = 2048):
    """Positions of the study's base scan (tiled to ``n_patterns``), groups of C nearest neighbours, Poisson counts."""
    from ptycho_core.config import GroupingConfig
    from ptycho_core.physics.simulate import make_geometry
    from ptycho_core.sampling.views import oversampled_groups

    geo = make_geometry(study, 0)
    pos = np.column_stack([geo.scan.x, geo.scan.y]).astype(np.float64)
    g = GroupingConfig(gridsize=int(round(channels**0.5)), K=6, max_radius_diameters=1.0, train_groups_per_position=4)
    groups, _ = oversampled_groups(pos, g, g.max_radius_diameters * geo.probe_diameter, np.random.default_rng(0))
    reps = -(-n_patterns // pos.shape[0])
    pos = np.tile(pos, (reps, 1))
    groups = np.concatenate([groups + k * geo.scan.x.size for k in range(reps)])
    rng = np.random.default_rng(1)
    N = study.N
    sqrt_counts = np.sqrt(rng.poisson(rng.uniform(0.0, 20.0, (pos.shape[0], N, N)))).astype(np.float32)
    probe = (geo.probe_unit * 30.0).astype(np.complex64)
    return sqrt_counts, pos, groups, probe


def run_case(
    size: str,
    method: str,
    channels: int,
    what: str,
    precision: str,
    steps: int,
    warmup: int,
    repeats: int,
    threads: int,
    heap: str = "kept",
    batch: int | None = None,
) -> dict:
    import keras

    from ptycho_core.nn import models, training
    from ptycho_core.nn.backend import configure_backend
    from ptycho_core.recon.stitch import probe_window

    configure_backend(threads, heap=heap)
    keras.utils.set_random_seed(0)
    study = study_for(size)
    tcfg, N = study.training, study.N
    sqrt_counts, pos, groups, probe = synthetic_data(study, channels)
    if method == "Baseline":
        groups = np.arange(pos.shape[0])[:, None]
    arch = models.ArchitectureConfig(filters=tcfg.filters, amplitude_max=tcfg.amplitude_max, precision=precision)
    scale = training.input_scale(sqrt_counts, N)
    obj_model = models.build_object_model(N, channels, scale, arch, method.lower())
    n_params = obj_model.count_params()
    batch = tcfg.batch_size if batch is None else batch
    if what == "predict":
        x = np.moveaxis(sqrt_counts[groups[: 16 * 64]], 1, -1)
        obj_model.predict(x[:128], batch_size=64, verbose=0)
        rates = []
        for _ in range(repeats):
            t = time.perf_counter()
            obj_model.predict(x, batch_size=64, verbose=0)
            rates.append(x.shape[0] * channels / (time.perf_counter() - t))
        unit = "patterns/s"
    else:
        if method == "PtychoPINN":
            canvas = models.canvas_size_for(training.group_offsets(pos, groups), N)
            fit_model = models.build_pinn_training_model(obj_model, probe, canvas)
            fit_model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=models.poisson_loss)
            targets = None
        else:
            w = probe_window(probe)
            amp = np.abs(np.random.default_rng(2).uniform(0.5, 1.0, (pos.shape[0], N // 2, N // 2))).astype(np.float32)
            ph = np.random.default_rng(3).uniform(-1.0, 1.0, (pos.shape[0], N // 2, N // 2)).astype(np.float32)
            targets = (amp, ph)
            fit_model = obj_model
            fit_model.compile(
                optimizer=keras.optimizers.Adam(1e-4),
                loss=[models.SupportWeightedMAE(w, 0.2), models.SupportWeightedMAE(w, 0.5)],
            )
        data = training.GroupBatches(
            sqrt_counts, pos, groups[: steps * batch], batch, rng=np.random.default_rng(0), targets=targets
        )
        fit_model.fit(data, epochs=1, steps_per_epoch=warmup, verbose=0)
        rates = []
        for _ in range(repeats):
            t = time.perf_counter()
            fit_model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
            rates.append(steps * batch / (time.perf_counter() - t))
        unit = "groups/s" if channels > 1 else ("samples/s" if method == "PtychoPINN" else "patterns/s")
    rate = float(np.median(rates))
    return {
        "size": size,
        "method": method,
        "channels": channels,
        "what": what,
        "precision": precision,
        "N": N,
        "filters": list(tcfg.filters),
        "batch": batch,
        "parameters": int(n_params),
        "rate": rate,
        "rate_min": float(min(rates)),
        "rate_max": float(max(rates)),
        "unit": unit,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precision", default="float32")
    ap.add_argument("--size", default="all", choices=["default", "reference", "all"])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3, help="timed blocks of --steps steps; the median is printed")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, help="training batch size (default: the study's, 16); prediction keeps 64")
    ap.add_argument(
        "--heap",
        default="kept",
        choices=["kept", "default"],
        help="kept: the network jobs' allocator setting (ptycho_core.nn.backend.keep_heap); default: glibc's",
    )
    ap.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process, print JSON
    args = ap.parse_args()
    if args.batch is not None and args.batch < 1:
        ap.error(f"--batch {args.batch}: expected a positive batch size")
    if args.case:
        size, method, channels, what = args.case.split(",")
        print(
            json.dumps(
                run_case(
                    size,
                    method,
                    int(channels),
                    what,
                    args.precision,
                    args.steps,
                    args.warmup,
                    args.repeats,
                    args.threads,
                    args.heap,
                    args.batch,
                )
            )
        )
        return
    print(
        f"precision {args.precision}, {args.threads} threads, heap {args.heap}, "
        f"training batch {args.batch or 'of the study'}; "
        f"median (min-max) of {args.repeats} timed blocks of {args.steps} steps after {args.warmup} warm-up steps"
    )
    print(
        f"{'size':9} {'method':10} {'C':>2} {'what':7} {'N':>3} {'params':>9} {'rate':>9} "
        f"{'(min-max)':>13} {'unit':11} {'peak MB':>8} {'earlier impl.':>13} {'ratio':>6}"
    )
    for size, method, channels, what in CASES:
        if args.size not in ("all", size):
            continue
        cmd = [
            sys.executable,
            __file__,
            "--case",
            f"{size},{method},{channels},{what}",
            "--precision",
            args.precision,
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
            "--repeats",
            str(args.repeats),
            "--threads",
            str(args.threads),
            "--heap",
            args.heap,
        ] + (["--batch", str(args.batch)] if args.batch is not None else [])
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if out.returncode:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"case {size},{method},{channels},{what} failed (exit {out.returncode})")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        ref = REFERENCE.get((method, channels, what)) if size == "reference" else None
        ref_s = f"{ref:13.1f}" if ref else f"{'':13}"
        ratio = f"{r['rate'] / ref:5.2f}x" if ref else ""
        spread = f"({r['rate_min']:.0f}-{r['rate_max']:.0f})"
        print(
            f"{size:9} {method:10} {channels:>2} {what:7} {r['N']:>3} {r['parameters']:>9,} {r['rate']:9.1f} "
            f"{spread:>13} {r['unit']:11} {r['peak_rss_mb']:8.0f} {ref_s} {ratio:>6}",
            flush=True,
        )


if __name__ == "__main__":
    main()
