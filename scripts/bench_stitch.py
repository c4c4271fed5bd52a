"""Benchmark: stitch 20,000 patches of 64 x 64 into one object frame.

Prints patterns per second for the vectorised, chunked scatter-add
(ptycho_core.recon.stitch.stitch_patches) and for a straightforward per-patch loop
(stitch_patches_loop) in the same run, on the same data, and checks that both
give the same object. (The earlier implementation of this study managed
184 patterns per second with stitching.)

    .venv/bin/python scripts/bench_stitch.py [n_patches] [patch_size]
"""

import sys
import time

import numpy as np

from ptycho_core.recon.stitch import stitch_patches, stitch_patches_loop


def main(n: int = 20000, P: int = 64) -> None:
    rng = np.random.default_rng(0)
    side = int(np.sqrt(n) * P / 4) + 2 * P  # a dense scan: about 4 x 4 patches overlap each pixel
    positions = rng.uniform(P, side - P, size=(n, 2))
    patches = (rng.uniform(0.5, 1.0, (n, P, P)) * np.exp(1j * rng.uniform(0, 1, (n, P, P)))).astype(np.complex64)
    print(f"{n} patches of {P} x {P} (complex64, {patches.nbytes / 1e6:.0f} MB) into a {side} x {side} frame")

    t = time.perf_counter()
    stitch_patches(patches, positions, (side, side))
    t_fast = time.perf_counter() - t
    print(f"vectorised scatter-add: {t_fast:6.2f} s = {n / t_fast:8.0f} patterns/s")

    n_loop = min(n, 2000)  # the loop is timed on a subset and extrapolated per pattern
    t = time.perf_counter()
    slow = stitch_patches_loop(patches[:n_loop], positions[:n_loop], (side, side))
    t_loop = time.perf_counter() - t
    print(f"per-patch loop ({n_loop} patches): {t_loop:6.2f} s = {n_loop / t_loop:8.0f} patterns/s")

    check = stitch_patches(patches[:n_loop], positions[:n_loop], (side, side))
    diff = float(np.abs(check.obj - slow.obj).max())
    print(f"vectorised vs loop on the same {n_loop} patches: max |difference| = {diff:.2e}")
    print(f"speed-up: {(n / t_fast) / (n_loop / t_loop):.1f}x")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
