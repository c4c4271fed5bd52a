"""Memory bounds, checked from the configuration and the files' shapes before any large array is made.

One bound, :data:`MAX_ARRAY_PIXELS`, caps every array whose size the user
controls: the object (``object.size`` squared), a file object as read and as
resampled (file shape, and file shape times ``object.file_pixel_size``), and
the patterns of one replicate's scan (positions times N^2: the simulate step
holds the patches, intensities and counts of every position at once). The
sizes are computed from the configuration and the shapes alone, exactly as the
code that makes the arrays computes them, so a refusal comes before the
allocation (not as a ``MemoryError`` while the workflow is parsed) and names
the keys that set the size.
"""

from __future__ import annotations

import math

import numpy as np

from ptycho_core.config import ConfigError, StudyConfig
from ptycho_core.physics.forward import valid_position_range

#: The largest array a study may make, in pixels: 2**28 = 16384 x 16384. As complex128 (16 bytes per pixel, the widest
#: dtype of the physics) such an array is 4 GiB, and a step holds a few of them at once (resampling a file object: its
#: real and imaginary parts and the complex result; simulation: the patches, their intensities and counts), so a
#: step's peak stays at about 16 GiB, within a workstation or a cluster node, instead of a MemoryError (or swapping)
#: while the workflow is parsed. Studies far beyond the shipped ones fit: config/full.yaml's scan (6400 positions x
#: 64^2) uses 10 % of it, N = 64 with the largest pupil (D = 5.8 px, 159^2 positions x 64^2) 39 %, an object of 8192^2
#: 25 %. A larger study raises this constant deliberately.
MAX_ARRAY_PIXELS = 16384 * 16384

#: The largest ``object.size``: its square is at most :data:`MAX_ARRAY_PIXELS`.
MAX_OBJECT_SIZE = math.isqrt(MAX_ARRAY_PIXELS)

#: The bound as messages state it.
BOUND = (
    f"the memory bound of {MAX_ARRAY_PIXELS} pixels = {MAX_OBJECT_SIZE} x {MAX_OBJECT_SIZE} (limits.MAX_ARRAY_PIXELS)"
)


def resampled_shape(shape: tuple[int, ...], factor: float) -> tuple[int, ...]:
    """The shape ``scipy.ndimage.zoom(a, factor)`` returns for an array of ``shape``: round(side * factor)."""
    return tuple(int(round(side * factor)) for side in shape)


def object_size_problem(size: int) -> tuple[str, str] | None:
    """``(key, message)`` if an object of ``size`` x ``size`` pixels exceeds the bound, else None."""
    if size > MAX_OBJECT_SIZE:
        return (
            "object.size",
            f"expected at most {MAX_OBJECT_SIZE} pixels, an object of object.size^2 pixels within {BOUND}, "
            f"found {size} ({size * size} pixels)",
        )
    return None


def scan_side(object_size: int, N: int, step: float) -> int:
    """Positions per axis of a scan with ``step`` pixels over the object's valid position range.

    The raster's grid side, floor((hi - lo) / step) + 1 (:func:`ptycho_core.physics.scan.raster_scan`, on the range
    of :func:`ptycho_core.physics.simulate.make_geometry`); a Fermat spiral keeps about as many positions, one per
    step^2 of the same square.
    """
    lo, hi = valid_position_range(object_size, N)
    return int(np.floor((float(np.floor(hi)) - lo) / step)) + 1


def scan_size_problem(object_size: int, N: int, step_fraction: float, probe_diameter: float) -> tuple[str, str] | None:
    """``(key, message)`` if the patterns of the scan (positions x N^2 pixels) exceed the bound, else None.

    ``probe_diameter`` is the probe's measured FWHM diameter in pixels; the step is ``step_fraction`` times it.
    """
    step = step_fraction * probe_diameter
    side = scan_side(object_size, N, step)
    pixels = side * side * N * N
    if pixels > MAX_ARRAY_PIXELS:
        return (
            "scan.step_fraction",
            f"expected a scan whose patterns (positions x N^2 pixels) stay within {BOUND}, "
            f"found {side} x {side} positions x {N}^2 = {pixels} pixels "
            f"(object.size {object_size}, N {N}, step = scan.step_fraction {step_fraction:g} x probe diameter "
            f"{probe_diameter:.3g} px = {step:.3g} px); raise scan.step_fraction or lower object.size",
        )
    return None


def check_scan_size(study: StudyConfig, probe_diameter: float, source: str = "config") -> None:
    """Refuse (:class:`ConfigError`) a scan whose patterns exceed the bound, before the scan is made.

    For a probe read from a file, whose diameter is known only once the file is read: call it with the measured
    diameter before :func:`ptycho_core.physics.scan.make_scan` (configuration load checks the other probe kinds).
    """
    problem = scan_size_problem(study.object.size, study.N, study.scan.step_fraction, probe_diameter)
    if problem is not None:
        key, message = problem
        raise ConfigError(f"{source}: key '{key}': {message}")


def study_size_problem(study: StudyConfig) -> tuple[str, str] | None:
    """The first size refusal the configuration alone decides, as ``(key, message)``; None if it fits.

    The object's size; and the scan's patterns for a probe built from the configuration (``focused``, ``disk``:
    built and measured here, a few milliseconds). A probe file's diameter is known once the file is read
    (:func:`check_scan_size`).
    """
    from ptycho_core.physics.probe import make_probe, measure_fwhm_diameter

    problem = object_size_problem(study.object.size)
    if problem is None and study.probe.kind in ("focused", "disk"):
        probe = make_probe(study.N, study.probe)
        if np.isfinite(probe).all() and np.abs(probe).max() > 0:  # else refused where the probe is used
            diameter = measure_fwhm_diameter(probe)
            problem = scan_size_problem(study.object.size, study.N, study.scan.step_fraction, diameter)
    return problem
