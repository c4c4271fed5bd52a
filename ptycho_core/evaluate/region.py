"""The evaluation region every method is scored on (docs/DESIGN.md section 7).

The bounding box of the view's test positions shrunk by a border (the score
step uses half a probe FWHM diameter) on every side, at least 8 x 8 pixels:
a rectangle, as SSIM, MS-SSIM, FRC and registration need.
"""

from __future__ import annotations

import math

import numpy as np

from ptycho_core.io.datasets import DiffractionSet
from ptycho_core.io.sentinel import ArtifactCheckError

__all__ = ["evaluation_region"]


def evaluation_region(
    test: DiffractionSet, rows: np.ndarray, shape: tuple[int, int], border: float
) -> tuple[slice, slice]:
    """Bounding box of the view's test positions, shrunk by ``border`` pixels on every side."""
    x, y = test.xcoords[rows], test.ycoords[rows]
    r0, r1 = int(math.ceil(y.min() + border)), int(math.floor(y.max() - border)) + 1
    c0, c1 = int(math.ceil(x.min() + border)), int(math.floor(x.max() - border)) + 1
    if r1 - r0 < 8 or c1 - c0 < 8:
        raise ArtifactCheckError(
            f"evaluation region: the test positions span too little "
            f"({r1 - r0} x {c1 - c0} px after a {border:.1f} px border)"
        )
    return slice(max(r0, 0), min(r1, shape[0])), slice(max(c0, 0), min(c1, shape[1]))
