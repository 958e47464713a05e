"""Welford/Chan moment updates as pure functions over floats or float64 arrays (one value per channel).

Every statistic in this package stores centred moments (count, mean, sum of squared deviations, co-moment)
rather than raw power sums, so values near 1e6 with unit spread keep their accuracy. Adding and removing an
observation use the same one-pass formula (Welford 1962; removal is its exact inverse), and two states
combine with Chan et al.'s pairwise formula. Each state also accumulates a bound on the rounding error of its
sums of squares, which decides when a window is "constant" after non-constant values have passed through it
(the sum of squares is then a round-off residue, not exactly zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

F = TypeVar("F", float, NDArray[np.float64])

EPS = float(np.finfo(np.float64).eps)
# A sum of squares at or below TOL_FACTOR * its accumulated magnitude is indistinguishable from zero.
TOL_FACTOR = 8.0 * EPS


@dataclass(frozen=True, slots=True)
class MomentState(Generic[F]):
    """Count, mean and sum of squared deviations ``m2`` of one variable (or K channels); ``acc`` bounds m2's error."""

    n: int
    mean: F
    m2: F
    acc: F


@dataclass(frozen=True, slots=True)
class PairState(Generic[F]):
    """MomentState of paired series x, y: means, sums of squares, co-moment and mean squared difference.

    ``msd`` (mean of (x - y)^2) is kept as its own running mean rather than derived from the others, so an
    RMSE between two nearly equal large series does not suffer cancellation.
    """

    n: int
    mx: F
    my: F
    sxx: F
    syy: F
    sxy: F
    msd: F
    accx: F
    accy: F


def moments_add(s: MomentState[F], x: F) -> MomentState[F]:
    """Add one observation (Welford)."""
    n = s.n + 1
    mean = s.mean + (x - s.mean) / n
    term = (x - s.mean) * (x - mean)
    m2 = s.m2 + term
    return MomentState(n, mean, m2, s.acc + m2 + term)


def moments_remove(s: MomentState[F], x: F) -> MomentState[F]:
    """Remove an observation that was added before (inverse Welford); the empty state is exact zeros."""
    n = s.n - 1
    if n <= 0:
        zero = s.mean * 0.0
        return MomentState(0, zero, zero, zero)
    mean = s.mean - (x - s.mean) / n
    term = (x - mean) * (x - s.mean)
    m2 = s.m2 - term
    return MomentState(n, mean, m2, s.acc + m2 + term)


def moments_merge(a: MomentState[F], b: MomentState[F]) -> MomentState[F]:
    """Combine the moments of two disjoint samples (Chan, Golub & LeVeque)."""
    if b.n == 0:
        return a
    if a.n == 0:
        return b
    n = a.n + b.n
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.n / n)
    m2 = a.m2 + b.m2 + delta * delta * (a.n * b.n / n)
    return MomentState(n, mean, m2, a.acc + b.acc + m2)


def paired_add(s: PairState[F], x: F, y: F) -> PairState[F]:
    """Add one (x, y) pair: Welford for each variable and the co-moment."""
    n = s.n + 1
    dx = x - s.mx
    dy = y - s.my
    mx = s.mx + dx / n
    my = s.my + dy / n
    tx = dx * (x - mx)
    ty = dy * (y - my)
    sxx = s.sxx + tx
    syy = s.syy + ty
    d = x - y
    return PairState(
        n,
        mx,
        my,
        sxx,
        syy,
        s.sxy + dx * (y - my),
        s.msd + (d * d - s.msd) / n,
        s.accx + sxx + tx,
        s.accy + syy + ty,
    )


def paired_remove(s: PairState[F], x: F, y: F) -> PairState[F]:
    """Remove a pair that was added before; exact inverse of :func:`paired_add` up to rounding."""
    n = s.n - 1
    if n <= 0:
        z = s.mx * 0.0
        return PairState(0, z, z, z, z, z, z, z, z)
    mx = s.mx - (x - s.mx) / n
    my = s.my - (y - s.my) / n
    tx = (x - mx) * (x - s.mx)
    ty = (y - my) * (y - s.my)
    sxx = s.sxx - tx
    syy = s.syy - ty
    d = x - y
    return PairState(
        n,
        mx,
        my,
        sxx,
        syy,
        s.sxy - (x - mx) * (y - s.my),
        s.msd - (d * d - s.msd) / n,
        s.accx + sxx + tx,
        s.accy + syy + ty,
    )


def paired_merge(a: PairState[F], b: PairState[F]) -> PairState[F]:
    """Combine two disjoint samples of pairs (Chan's formula for each moment)."""
    if b.n == 0:
        return a
    if a.n == 0:
        return b
    n = a.n + b.n
    wa, wb, w = a.n / n, b.n / n, a.n * b.n / n
    dx = b.mx - a.mx
    dy = b.my - a.my
    sxx = a.sxx + b.sxx + dx * dx * w
    syy = a.syy + b.syy + dy * dy * w
    return PairState(
        n,
        a.mx + dx * wb,
        a.my + dy * wb,
        sxx,
        syy,
        a.sxy + b.sxy + dx * dy * w,
        a.msd * wa + b.msd * wb,
        a.accx + b.accx + sxx,
        a.accy + b.accy + syy,
    )


@dataclass(frozen=True, slots=True)
class StackedPairs:
    """K paired channels as the rows [x, y, x - y] of (3, K) arrays, so one Welford step updates all three.

    This is the fast form of :class:`PairState` for vectors (half the numpy calls per update); the mean
    squared difference is recovered as var(x - y) + mean(x - y)², which has no cancellation.
    """

    n: int
    mean: NDArray[np.float64]
    m2: NDArray[np.float64]
    sxy: NDArray[np.float64]
    acc: NDArray[np.float64]


def stacked_zero(k: int) -> StackedPairs:
    z = np.zeros((3, k))
    return StackedPairs(0, z, z, z[0], z)


def stacked_add(s: StackedPairs, z: NDArray[np.float64]) -> StackedPairs:
    """Add one observation given as rows [x, y, x - y] (Welford per row, co-moment of rows 0 and 1)."""
    n = s.n + 1
    dz = z - s.mean
    mean = s.mean + dz / n
    zc = z - mean
    t = dz * zc
    m2 = s.m2 + t
    return StackedPairs(n, mean, m2, s.sxy + dz[0] * zc[1], s.acc + m2 + t)


def stacked_remove(s: StackedPairs, z: NDArray[np.float64]) -> StackedPairs:
    """Remove an observation added before; the empty state is exact zeros."""
    n = s.n - 1
    if n <= 0:
        return stacked_zero(z.shape[1])
    mean = s.mean - (z - s.mean) / n
    without = z - mean
    with_ = z - s.mean
    t = without * with_
    m2 = s.m2 - t
    return StackedPairs(n, mean, m2, s.sxy - without[0] * with_[1], s.acc + m2 + t)


def stacked_merge(a: StackedPairs, b: StackedPairs) -> StackedPairs:
    """Chan's pairwise combination, row-wise plus the co-moment."""
    if b.n == 0:
        return a
    if a.n == 0:
        return b
    n = a.n + b.n
    w = a.n * b.n / n
    delta = b.mean - a.mean
    m2 = a.m2 + b.m2 + delta * delta * w
    return StackedPairs(n, a.mean + delta * (b.n / n), m2, a.sxy + b.sxy + delta[0] * delta[1] * w, a.acc + b.acc + m2)


def stacked_as_pairs(s: StackedPairs) -> PairState[NDArray[np.float64]]:
    """The same moments as a :class:`PairState` (what the Pearson/RMSE/CCC formulas read)."""
    msd = s.m2[2] / s.n + s.mean[2] ** 2 if s.n else s.mean[2] * 0.0
    return PairState(s.n, s.mean[0], s.mean[1], s.m2[0], s.m2[1], s.sxy, msd, s.acc[0], s.acc[1])


def is_degenerate(m2: float, acc: float) -> bool:
    """True when a sum of squares is zero up to its accumulated rounding error (a constant series)."""
    return m2 <= TOL_FACTOR * acc


def degenerate_mask(m2: NDArray[np.float64], acc: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Per-channel :func:`is_degenerate`."""
    return np.asarray(m2 <= TOL_FACTOR * acc, dtype=bool)


__all__ = [
    "EPS",
    "MomentState",
    "PairState",
    "StackedPairs",
    "degenerate_mask",
    "is_degenerate",
    "moments_add",
    "moments_merge",
    "moments_remove",
    "paired_add",
    "paired_merge",
    "paired_remove",
    "stacked_add",
    "stacked_as_pairs",
    "stacked_merge",
    "stacked_remove",
    "stacked_zero",
]
