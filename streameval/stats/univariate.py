"""Univariate running statistics: Count, Mean, Var, Std, Rate.

Each keeps O(1) state, supports ``update``/``revert``/``merge`` and reports ``get() -> float | None`` with
``reason`` explaining a None. Moments follow Welford/Chan (see :mod:`streameval.stats.moments`).
"""

from __future__ import annotations

import copy
import math
from typing import Self

from streameval.errors import UsageError
from streameval.stats import results
from streameval.stats._check import finite, same_kind
from streameval.stats.moments import MomentState, is_degenerate, moments_add, moments_merge, moments_remove


class _Base:
    """Shared plumbing: ``clone`` and ``merge`` type checks; subclasses define ``_config`` for equality."""

    _config: tuple[object, ...] = ()

    def clone(self) -> Self:
        """An independent copy with the same state."""
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self._config}(n={self.n})"

    @property
    def n(self) -> int:
        raise NotImplementedError


class Count(_Base):
    """Number of observations (the arguments of ``update`` are ignored)."""

    def __init__(self) -> None:
        self._n = 0

    @property
    def n(self) -> int:
        return self._n

    @property
    def reason(self) -> str | None:
        return None

    def update(self, *_: object) -> None:
        self._n += 1

    def revert(self, *_: object) -> None:
        if self._n <= 0:
            raise UsageError("revert on an empty Count")
        self._n -= 1

    def get(self) -> int:
        return self._n

    def merge(self, other: Count) -> None:
        same_kind(self, other, "counts")
        self._n += other._n

    def reset(self) -> None:
        self._n = 0


class _MomentStat(_Base):
    """A statistic derived from the count, mean and sum of squared deviations of one series."""

    def __init__(self) -> None:
        self._s: MomentState[float] = MomentState(0, 0.0, 0.0, 0.0)

    @property
    def n(self) -> int:
        return self._s.n

    def update(self, x: float) -> None:
        self._s = moments_add(self._s, finite(x, "x"))

    def revert(self, x: float) -> None:
        if self._s.n <= 0:
            raise UsageError(f"revert on an empty {type(self).__name__}")
        self._s = moments_remove(self._s, finite(x, "x"))

    def merge(self, other: Self) -> None:
        same_kind(self, other, type(self).__name__)
        self._s = moments_merge(self._s, other._s)

    def reset(self) -> None:
        self._s = MomentState(0, 0.0, 0.0, 0.0)

    @property
    def m2(self) -> float:
        """Sum of squared deviations from the mean, 0 when it is below its rounding-error bound."""
        return 0.0 if is_degenerate(self._s.m2, self._s.acc) else self._s.m2


class Mean(_MomentStat):
    """Arithmetic mean (Welford running mean)."""

    @property
    def reason(self) -> str | None:
        return results.EMPTY if self._s.n == 0 else None

    def get(self) -> float | None:
        return None if self._s.n == 0 else self._s.mean


class Var(_MomentStat):
    """Variance with ``ddof`` delta degrees of freedom (1: sample, 0: population as numpy's default)."""

    def __init__(self, ddof: int = 1) -> None:
        super().__init__()
        if isinstance(ddof, bool) or not isinstance(ddof, int) or ddof < 0:
            raise UsageError(f"ddof must be a non-negative integer, got {ddof!r}")
        self.ddof = ddof
        self._config = (ddof,)

    @property
    def reason(self) -> str | None:
        return results.fewer_than(self.ddof + 1) if self._s.n <= self.ddof else None

    def get(self) -> float | None:
        if self._s.n <= self.ddof:
            return None
        return self.m2 / (self._s.n - self.ddof)

    @property
    def mean(self) -> float | None:
        return None if self._s.n == 0 else self._s.mean


class Std(Var):
    """Standard deviation: square root of :class:`Var` with the same ``ddof``."""

    def get(self) -> float | None:
        v = super().get()
        return None if v is None else math.sqrt(v)


class Rate(_Base):
    """Proportion of true observations (leak rate, swap rate); counts are exact integers, so no drift."""

    def __init__(self) -> None:
        self._n = 0
        self._k = 0

    @property
    def n(self) -> int:
        return self._n

    @property
    def hits(self) -> int:
        """Number of true observations."""
        return self._k

    @property
    def reason(self) -> str | None:
        return results.EMPTY if self._n == 0 else None

    def update(self, flag: bool) -> None:
        self._n += 1
        self._k += bool(flag)

    def revert(self, flag: bool) -> None:
        if self._n <= 0 or (flag and self._k <= 0):
            raise UsageError("revert of an observation the Rate never saw")
        self._n -= 1
        self._k -= bool(flag)

    def get(self) -> float | None:
        return None if self._n == 0 else self._k / self._n

    def merge(self, other: Rate) -> None:
        same_kind(self, other, "rates")
        self._n += other._n
        self._k += other._k

    def reset(self) -> None:
        self._n = 0
        self._k = 0
