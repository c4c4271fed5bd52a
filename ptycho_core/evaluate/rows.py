"""The tidy rows of a cell's ``metrics.csv`` (score step): their names, how one method's scores become rows,
how many there are.

The table's columns, types and version are the record
:data:`ptycho_core.io.records.METRIC_ROWS`; this module names what its rows
say (quantities and metrics).

Every method of a cell has, per quantity (``amplitude``, ``phase``), the
strict :data:`METRICS`, plus ``amplitude_scale`` and ``ms_ssim_scales``
(reported, no better direction), the :data:`ALIGNMENT` rows (the phase offset
removed and the residual shift, a diagnostic) and the secondary, paper-style rows
(docs/DESIGN.md section 7). :func:`tidy_rows` builds them from the scores of
:func:`ptycho_core.evaluate.metrics.score_reconstruction`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "ALIGNMENT",
    "ALIGNMENT_METRICS",
    "DOSE_RESPONSE",
    "METRICS",
    "PAPER_AMPLITUDE_METRICS",
    "PAPER_METRICS",
    "PAPER_QUANTITIES",
    "QUANTITIES",
    "tidy_rows",
]

#: Metrics every method must have, per quantity (amplitude, phase).
METRICS = ("mae", "rmse", "psnr", "ssim", "ms_ssim", "frc50", "frc1_7")
QUANTITIES = ("amplitude", "phase")
#: Quantity of the alignment rows: the global phase offset the common gauge removed, and the residual
#: shift a cross-correlation with the ground truth would pick (a diagnostic: never applied, every method
#: is scored in the known frame).
ALIGNMENT = "alignment"
ALIGNMENT_METRICS = ("residual_shift_px", "residual_shift_dy_px", "residual_shift_dx_px", "phase_offset_rad")
#: Secondary, paper-style rows (metrics.paper_phase_metrics / paper_amplitude_metrics): the
#: PtychoPINN literature's conventions (phase: each image's own plane removed, mapped to
#: (phi + pi) / (2 pi), data range 1; amplitude: rescaled by the ratio of means), under their
#: own quantity names so that they cannot be read as the strict amplitude/phase rows.
#: PAPER_QUANTITIES[i] is the paper-style counterpart of QUANTITIES[i].
PAPER_QUANTITIES = ("amplitude_paper", "phase_paper")
PAPER_METRICS = ("ssim", "ms_ssim", "psnr")
#: Extra amplitude_paper row: the ratio of means applied to that row only (no better direction).
PAPER_AMPLITUDE_METRICS = ("mean_ratio",)
#: (quantity, metric) pairs the report draws against dose, one figure ``{quantity}_{metric}.png`` each
#: (the report rule declares its outputs from this list; this module stays light to import).
DOSE_RESPONSE = (
    ("phase", "ms_ssim"),
    ("phase", "psnr"),
    ("amplitude", "ms_ssim"),
    ("amplitude", "mae"),
    ("phase", "frc50"),
)


def tidy_rows(method: str, scores: dict) -> list[tuple]:
    """``(method, quantity, metric, value)`` rows of one method's scores; a missing or non-finite metric raises
    :class:`MetricError`."""
    from ptycho_core.evaluate.metrics import MetricError

    rows = []
    for q in QUANTITIES:
        for m in METRICS:
            v = scores[q].get(m)
            if v is None or not np.isfinite(v):
                raise MetricError(f"{method}: metric '{m}' of {q} is missing or not finite ({v!r})")
            rows.append((method, q, m, float(v)))
    rows.append((method, "amplitude", "amplitude_scale", float(scores["amplitude_scale"])))
    for q in QUANTITIES:
        rows.append((method, q, "ms_ssim_scales", float(scores[q]["ms_ssim_scales"])))
    dy, dx = (float(v) for v in scores["residual_shift"])
    values = {
        "residual_shift_px": math.hypot(dy, dx),
        "residual_shift_dy_px": dy,
        "residual_shift_dx_px": dx,
        "phase_offset_rad": float(scores["phase_offset"]),
    }
    rows += [(method, ALIGNMENT, k, values[k]) for k in ALIGNMENT_METRICS]
    for q, pq in zip(QUANTITIES, PAPER_QUANTITIES):
        extra = PAPER_AMPLITUDE_METRICS if q == "amplitude" else ()
        for m in PAPER_METRICS + extra:
            v = scores["paper"][q].get(m)
            if v is None or not np.isfinite(v):
                raise MetricError(f"{method}: metric '{m}' of {pq} is missing or not finite ({v!r})")
            rows.append((method, pq, m, float(v)))
    return rows
