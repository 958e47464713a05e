"""Argument checks shared by the statistics: messages name the argument and the bad value."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streameval.errors import InputError, UsageError


def finite(x: float, name: str) -> float:
    """``x`` as a float; non-finite values would poison the running moments for good, so they are refused."""
    v = float(x)
    if not math.isfinite(v):
        raise InputError(f"{name} must be finite, got {v!r}")
    return v


def vector(x: Any, k: int, name: str) -> NDArray[np.float64]:
    """``x`` as a finite float64 array of shape (k,)."""
    a = np.asarray(x, dtype=np.float64)
    if a.shape != (k,):
        raise UsageError(f"{name} must have shape ({k},), got {a.shape}")
    if not np.isfinite(a).all():
        raise InputError(f"{name} must be finite, got {a.tolist()!r}")
    return a


def paired_rows(x: Any, y: Any, k: int) -> NDArray[np.float64]:
    """Rows [x, y, x - y] of a (3, k) float64 array, for :class:`~streameval.stats.moments.StackedPairs`."""
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.shape != (k,) or ya.shape != (k,):
        raise UsageError(f"x and y must have shape ({k},), got {xa.shape} and {ya.shape}")
    z = np.empty((3, k))
    z[0] = xa
    z[1] = ya
    np.subtract(xa, ya, out=z[2])
    # x - y is finite exactly when both are (barring overflow near 1e308), so one check covers both.
    if not np.isfinite(z[2]).all():
        raise InputError(f"x and y must be finite, got x={xa.tolist()!r}, y={ya.tolist()!r}")
    return z


def matrix(x: Any, d: int, name: str) -> NDArray[np.float64]:
    """``x`` as a finite float64 array of shape (m, d); a single row (d,) becomes (1, d)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != d:
        raise UsageError(f"{name} must have shape (n, {d}) or ({d},), got {np.shape(x)}")
    if not np.isfinite(a).all():
        raise InputError(f"{name} must be finite (found {int((~np.isfinite(a)).sum())} non-finite values)")
    return a


def positive_int(v: int, name: str) -> int:
    """A positive int argument (window sizes, channel counts)."""
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
        raise UsageError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def same_kind(a: object, b: object, what: str) -> None:
    """``merge`` only combines statistics of the same class and configuration."""
    if type(a) is not type(b):
        raise UsageError(f"cannot merge {type(b).__name__} into {type(a).__name__}")
    if getattr(a, "_config", None) != getattr(b, "_config", None):
        raise UsageError(f"cannot merge {what} with different settings: {a!r} vs {b!r}")


def stream_time(t: float, now: float) -> float:
    """``t`` as a float, checked finite and not before ``now`` (the latest stream time a window has seen)."""
    v = float(t)
    if not math.isfinite(v):
        raise InputError(f"t must be a finite stream time, got {t!r}")
    if v < now:
        raise InputError(f"stream time went backwards: t={v} after {now}")
    return v
