"""The evaluation region every method of every view is scored on (docs/DESIGN.md section 7).

One rectangle per replicate, common to all views: the bounding box of each
view's test positions shrunk by a border (the score step uses half a probe
FWHM diameter) on every side, intersected over the views, so that a score
moves with the dose and the overlap, never with the pixels it is taken on.
The views of a study are nested (a sparser one is a subset of a denser one),
so the intersection is the sparsest view's box.

It must hold at least :data:`MIN_REGION_PIXELS` pixels with no side under
:data:`MIN_REGION_SIDE`: MS-SSIM then runs at least three scales and the FRC
has at least 14 rings (:mod:`ptycho_core.evaluate.metrics`). On the 34 x 12,
33 x 10 and 33 x 8 px regions of an earlier default study MS-SSIM ran at one
scale and the FRC sat at its maximum in most rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ptycho_core.evaluate.metrics import MIN_MS_SSIM_SCALES, SSIM_WIN
from ptycho_core.io.datasets import DiffractionSet
from ptycho_core.io.sentinel import ArtifactCheckError

__all__ = ["MIN_REGION_PIXELS", "MIN_REGION_SIDE", "evaluation_region", "view_box"]

#: Fewest pixels of the evaluation region.
MIN_REGION_PIXELS = 1000
#: Shortest side of the evaluation region: MS-SSIM's coarsest of three scales keeps the 7-px SSIM window.
MIN_REGION_SIDE = SSIM_WIN * 2 ** (MIN_MS_SSIM_SCALES - 1)


def view_box(test: DiffractionSet, rows: np.ndarray, shape: tuple[int, int], border: float) -> tuple[slice, slice]:
    """Bounding box of the test positions ``rows`` shrunk by ``border`` pixels on every side, inside ``shape``."""
    x, y = test.xcoords[rows], test.ycoords[rows]
    r0, r1 = int(math.ceil(y.min() + border)), int(math.floor(y.max() - border)) + 1
    c0, c1 = int(math.ceil(x.min() + border)), int(math.floor(x.max() - border)) + 1
    return slice(max(r0, 0), min(r1, shape[0])), slice(max(c0, 0), min(c1, shape[1]))


def evaluation_region(
    test: DiffractionSet, rows_by_view: Mapping[str, np.ndarray], shape: tuple[int, int], border: float
) -> tuple[slice, slice]:
    """The common evaluation region of the views ``{view: test rows}`` of one replicate.

    The intersection of every view's :func:`view_box`; raises
    ArtifactCheckError when it has fewer than :data:`MIN_REGION_PIXELS` pixels
    or a side under :data:`MIN_REGION_SIDE`, naming each view's box.
    """
    if not rows_by_view:
        raise ValueError("evaluation region: expected at least one view's test rows, found none")
    boxes = {name: view_box(test, rows, shape, border) for name, rows in rows_by_view.items()}
    r0 = max(b[0].start for b in boxes.values())
    r1 = min(b[0].stop for b in boxes.values())
    c0 = max(b[1].start for b in boxes.values())
    c1 = min(b[1].stop for b in boxes.values())
    h, w = max(r1 - r0, 0), max(c1 - c0, 0)
    if min(h, w) < MIN_REGION_SIDE or h * w < MIN_REGION_PIXELS:
        spans = "; ".join(
            f"{name}: rows {b[0].start}-{b[0].stop}, cols {b[1].start}-{b[1].stop}" for name, b in boxes.items()
        )
        raise ArtifactCheckError(
            f"evaluation region: the views' test positions leave a common region of {h} x {w} px after a "
            f"{border:.1f} px border ({spans}); expected at least {MIN_REGION_PIXELS} px and "
            f"{MIN_REGION_SIDE} px per side: enlarge object.size (the test scan must cover more of the object)"
        )
    return slice(r0, r1), slice(c0, c1)
