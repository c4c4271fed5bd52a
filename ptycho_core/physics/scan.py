"""Scan trajectories (the base scan) and the train/test split by object region.

Positions are (x, y) = (column, row) in object pixels, each the centre of a
patch. The base scan covers the object's usable area; the split keeps two
regions along one axis with a guard band between them in which no position
is kept, so that no train probe footprint touches a test one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptycho_core.config import ScanConfig, SplitConfig

GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))


@dataclass(frozen=True)
class Scan:
    """The base scan: positions and, for a raster, its grid shape.

    ``index`` is the position's index in the base scan; for a raster it is
    ``row * nx + col`` of the (unjittered) grid, so later phases can take
    strided subsets.
    """

    x: np.ndarray
    y: np.ndarray
    index: np.ndarray
    step: float
    grid_shape: tuple[int, int] | None


def raster_scan(lo: float, hi: float, step: float, jitter: float, rng: np.random.Generator) -> Scan:
    """Square raster over [lo, hi]^2, centred, with uniform jitter of +-jitter*step.

    Jittered positions are clipped to [lo, hi] so every patch stays inside the object.
    """
    if step <= 0:
        raise ValueError(f"scan step: expected a positive step in pixels, found {step}")
    n = int(np.floor((hi - lo) / step)) + 1
    if n < 2:
        raise ValueError(f"scan: step {step:.2f} px leaves fewer than 2 positions per axis in [{lo:.1f}, {hi:.1f}]")
    start = lo + 0.5 * ((hi - lo) - (n - 1) * step)
    axis = start + step * np.arange(n)
    gx, gy = np.meshgrid(axis, axis)  # gy varies along rows
    dx, dy = rng.uniform(-jitter * step, jitter * step, size=(2, n, n))
    x = np.clip(gx + dx, lo, hi).ravel()
    y = np.clip(gy + dy, lo, hi).ravel()
    return Scan(x=x, y=y, index=np.arange(n * n, dtype=np.int64), step=float(step), grid_shape=(n, n))


def fermat_scan(lo: float, hi: float, step: float) -> Scan:
    """Fermat spiral centred on the square [lo, hi]^2, clipped to it.

    r_k = c sqrt(k), theta_k = k * golden angle, with c = step / sqrt(pi) so that
    each point occupies an area step^2 (mean spacing about ``step``). The spiral
    is deterministic: it draws no random numbers.
    """
    if step <= 0:
        raise ValueError(f"scan step: expected a positive step in pixels, found {step}")
    c = step / np.sqrt(np.pi)
    centre = 0.5 * (lo + hi)
    half = 0.5 * (hi - lo)
    k_max = int(np.ceil(2.0 * half**2 / c**2)) + 1  # the circle through the corners
    k = np.arange(k_max)
    r = c * np.sqrt(k)
    x = centre + r * np.cos(k * GOLDEN_ANGLE)
    y = centre + r * np.sin(k * GOLDEN_ANGLE)
    keep = (x >= lo) & (x <= hi) & (y >= lo) & (y <= hi)
    return Scan(
        x=x[keep], y=y[keep], index=np.arange(int(keep.sum()), dtype=np.int64), step=float(step), grid_shape=None
    )


def make_scan(cfg: ScanConfig, lo: float, hi: float, probe_diameter: float, rng: np.random.Generator) -> Scan:
    """Base scan with the step derived from the measured probe diameter."""
    step = cfg.step_fraction * probe_diameter
    if cfg.pattern == "raster":
        return raster_scan(lo, hi, step, cfg.jitter, rng)
    if cfg.pattern == "fermat":
        return fermat_scan(lo, hi, step)
    raise ValueError(f"scan.pattern: expected 'raster' or 'fermat', found {cfg.pattern!r}")


@dataclass(frozen=True)
class Split:
    """Which base-scan positions belong to train and test (indices into the scan)."""

    train: np.ndarray
    test: np.ndarray
    boundary: float | None  # None: no cut (a separate training object)
    guard: float
    n_base: int
    n_dropped: int  # base positions in neither split (the guard band; 0 with a training object)
    training_object: bool = False  # train indexes the base scan over a separate training object
    region_train: np.ndarray | None = None  # the study object's training region (= train; empty with a training object)

    def __post_init__(self):
        if self.region_train is None:
            object.__setattr__(self, "region_train", self.train)


def split_by_region(scan: Scan, cfg: SplitConfig, lo: float, hi: float, probe_diameter: float) -> Split:
    """Cut the scanned extent along ``cfg.axis`` into train (low side) and test (high side).

    The cut sits at ``hi - test_fraction * (hi - lo)``; positions closer than
    guard/2 to it on either side are dropped, with guard = guard_diameters *
    probe diameter, so every train-test pair of positions is at least one
    guard apart along the axis.
    """
    coord = scan.x if cfg.axis == "x" else scan.y
    boundary = hi - cfg.test_fraction * (hi - lo)
    guard = cfg.guard_diameters * probe_diameter
    train = np.flatnonzero(coord <= boundary - guard / 2)
    test = np.flatnonzero(coord >= boundary + guard / 2)
    for name, idx in (("train", train), ("test", test)):
        if idx.size == 0:
            raise ValueError(
                f"split: the {name} region holds no positions (extent [{lo:.1f}, {hi:.1f}] px, "
                f"cut at {boundary:.1f}, guard {guard:.1f} px); enlarge object.size or change split.test_fraction"
            )
    n_base = coord.size
    return Split(train, test, float(boundary), float(guard), n_base, n_base - train.size - test.size)


def whole_scan_split(scan: Scan) -> Split:
    """The split when the training data come from a separate training object.

    Both splits take every position of the base scan: the training split on
    the training object, the test split on the study object, which then needs
    no training region, so the test scan covers all of it (no cut, no guard
    band: the two splits never see the same object).
    """
    every = np.arange(scan.x.size)
    return Split(
        every,
        every.copy(),
        None,
        0.0,
        int(every.size),
        0,
        training_object=True,
        region_train=np.empty(0, dtype=every.dtype),
    )
