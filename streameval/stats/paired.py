"""Agreement between two paired series from their moments: Pearson correlation, RMSE, concordance (CCC).

Pure functions of a :class:`~streameval.stats.moments.PairState`; scalar forms return ``(value, reason)``
with value None when undefined, vector forms return ``(values, reasons)`` with NaN where undefined.

Definitions (n pairs, sums of squares/co-moment about the means):
  Pearson r = sxy / sqrt(sxx * syy), clipped to [-1, 1]; undefined for n < 2 or a constant series.
  RMSE      = sqrt(mean((x - y)^2)); undefined for n = 0.
  CCC (Lin) = 2 sxy / (sxx + syy + n (mx - my)^2), i.e. population moments; undefined for n < 2 or when
              both series are constant and equal (0/0). A constant series contributes no co-moment.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from streameval.stats import results
from streameval.stats.moments import EPS, PairState, degenerate_mask, is_degenerate

Vec = NDArray[np.float64]


def _equal_means(mx: float, my: float) -> bool:
    return abs(mx - my) <= 16 * EPS * max(abs(mx), abs(my))


def pearson(s: PairState[float]) -> tuple[float | None, str | None]:
    """Pearson correlation of the pairs summarised by ``s``."""
    if s.n < 2:
        return None, results.FEWER_THAN_2
    cx, cy = is_degenerate(s.sxx, s.accx), is_degenerate(s.syy, s.accy)
    if cx or cy:
        return None, results.CONSTANT if cx and cy else (results.CONSTANT_X if cx else results.CONSTANT_Y)
    r = s.sxy / math.sqrt(s.sxx * s.syy)
    return max(-1.0, min(1.0, r)), None


def rmse(s: PairState[float]) -> tuple[float | None, str | None]:
    """Root mean squared difference x - y."""
    if s.n == 0:
        return None, results.EMPTY
    return math.sqrt(max(s.msd, 0.0)), None


def ccc(s: PairState[float]) -> tuple[float | None, str | None]:
    """Lin's concordance correlation coefficient."""
    if s.n < 2:
        return None, results.FEWER_THAN_2
    cx, cy = is_degenerate(s.sxx, s.accx), is_degenerate(s.syy, s.accy)
    sxx = 0.0 if cx else s.sxx
    syy = 0.0 if cy else s.syy
    sxy = 0.0 if cx or cy else s.sxy
    if cx and cy and _equal_means(s.mx, s.my):
        return None, results.CONSTANT_BOTH_EQUAL
    dm = s.mx - s.my
    return max(-1.0, min(1.0, 2.0 * sxy / (sxx + syy + s.n * dm * dm))), None


def _reasons(mask_reason: list[tuple[NDArray[np.bool_], str]], k: int) -> list[str | None]:
    """Per-channel reasons: the first matching (mask, reason) wins."""
    out: list[str | None] = [None] * k
    for mask, reason in reversed(mask_reason):
        for i in np.flatnonzero(mask):
            out[int(i)] = reason
    return out


def pearson_vec(s: PairState[Vec]) -> tuple[Vec, list[str | None]]:
    """Per-channel Pearson correlation; NaN where undefined."""
    k = s.mx.shape[0]
    if s.n < 2:
        return np.full(k, np.nan), [results.FEWER_THAN_2] * k
    cx, cy = degenerate_mask(s.sxx, s.accx), degenerate_mask(s.syy, s.accy)
    bad = cx | cy
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.clip(s.sxy / np.sqrt(s.sxx * s.syy), -1.0, 1.0)
    r[bad] = np.nan
    if not bad.any():
        return r, [None] * k
    return r, _reasons([(cx & cy, results.CONSTANT), (cx, results.CONSTANT_X), (cy, results.CONSTANT_Y)], k)


def rmse_vec(s: PairState[Vec]) -> tuple[Vec, list[str | None]]:
    """Per-channel RMSE; NaN when empty."""
    k = s.mx.shape[0]
    if s.n == 0:
        return np.full(k, np.nan), [results.EMPTY] * k
    return np.sqrt(np.maximum(s.msd, 0.0)), [None] * k


def ccc_vec(s: PairState[Vec]) -> tuple[Vec, list[str | None]]:
    """Per-channel Lin's CCC; NaN where undefined."""
    k = s.mx.shape[0]
    if s.n < 2:
        return np.full(k, np.nan), [results.FEWER_THAN_2] * k
    cx, cy = degenerate_mask(s.sxx, s.accx), degenerate_mask(s.syy, s.accy)
    sxx = np.where(cx, 0.0, s.sxx)
    syy = np.where(cy, 0.0, s.syy)
    sxy = np.where(cx | cy, 0.0, s.sxy)
    dm = s.mx - s.my
    both = cx & cy & (np.abs(dm) <= 16 * EPS * np.maximum(np.abs(s.mx), np.abs(s.my)))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.clip(2.0 * sxy / (sxx + syy + s.n * dm * dm), -1.0, 1.0)
    c[both] = np.nan
    if not both.any():
        return c, [None] * k
    return c, _reasons([(both, results.CONSTANT_BOTH_EQUAL)], k)
