"""Memory bounds, checked from the configuration and the files' shapes before any large array is made.

One bound, :data:`MAX_ARRAY_PIXELS`, caps every array whose size the user
controls: the object (``object.size`` squared), a file object as read and as
resampled (file shape, and file shape times ``object.file_pixel_size``), and
the patterns of one replicate's scan (positions times N^2: the simulate step
holds the patches, intensities and counts of every position at once). The
sizes are computed from the configuration and the shapes alone, exactly as the
code that makes the arrays computes them, so a refusal comes before the
allocation (not as a ``MemoryError`` while the workflow is parsed) and names
the keys that set the size. The scan's size is checked where the geometry is made
(:func:`ptycho_core.physics.simulate.check_scan_size`); this module holds the bound and
stays free of the physics, so that every module may import it.
"""

from __future__ import annotations

import math

#: The largest array a study may make, in pixels: 2**28 = 16384 x 16384. As complex128 (16 bytes per pixel, the widest
#: dtype of the physics) such an array is 4 GiB, and a step holds a few of them at once (resampling a file object: its
#: real and imaginary parts and the complex result; simulation: the patches, their intensities and counts), so a
#: step's peak stays at about 16 GiB, within a workstation or a cluster node, instead of a MemoryError (or swapping)
#: while the workflow is parsed. Studies far beyond the shipped ones fit: config/full.yaml's scan (6400 positions x
#: 64^2) uses 10 % of it, N = 64 with the largest pupil (D = 5.8 px, 159^2 positions x 64^2) 39 %, an object of 8192^2
#: 25 %. A larger study raises this constant deliberately.
MAX_ARRAY_PIXELS = 16384 * 16384

#: The largest ``object.size``: its square is at most :data:`MAX_ARRAY_PIXELS`. The schema states it as the key's
#: ``maximum`` (refused at configuration load, with the other single-key checks); a test holds the two equal.
MAX_OBJECT_SIZE = math.isqrt(MAX_ARRAY_PIXELS)

#: The bound as messages state it.
BOUND = (
    f"the memory bound of {MAX_ARRAY_PIXELS} pixels = {MAX_OBJECT_SIZE} x {MAX_OBJECT_SIZE} (limits.MAX_ARRAY_PIXELS)"
)


def resampled_shape(shape: tuple[int, ...], factor: float) -> tuple[int, ...]:
    """The shape ``scipy.ndimage.zoom(a, factor)`` returns for an array of ``shape``: round(side * factor)."""
    return tuple(int(round(side * factor)) for side in shape)
