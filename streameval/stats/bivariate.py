"""Scalar statistics of paired series (x, y): Pearson correlation, RMSE, concordance (CCC).

All three share one O(1) state (:class:`~streameval.stats.moments.PairState`); the formulas are in
:mod:`streameval.stats.paired`.
"""

from __future__ import annotations

from typing import Self

from streameval.errors import UsageError
from streameval.stats import paired
from streameval.stats._check import finite, same_kind
from streameval.stats.moments import PairState, paired_add, paired_merge, paired_remove
from streameval.stats.univariate import _Base


def _empty() -> PairState[float]:
    return PairState(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


class _PairedStat(_Base):
    def __init__(self) -> None:
        self._s = _empty()

    @property
    def n(self) -> int:
        return self._s.n

    @property
    def state(self) -> PairState[float]:
        """The underlying moments (immutable snapshot)."""
        return self._s

    @property
    def mean_x(self) -> float | None:
        return None if self._s.n == 0 else self._s.mx

    @property
    def mean_y(self) -> float | None:
        return None if self._s.n == 0 else self._s.my

    def update(self, x: float, y: float) -> None:
        self._s = paired_add(self._s, finite(x, "x"), finite(y, "y"))

    def revert(self, x: float, y: float) -> None:
        if self._s.n <= 0:
            raise UsageError(f"revert on an empty {type(self).__name__}")
        self._s = paired_remove(self._s, finite(x, "x"), finite(y, "y"))

    def merge(self, other: Self) -> None:
        same_kind(self, other, type(self).__name__)
        self._s = paired_merge(self._s, other._s)

    def reset(self) -> None:
        self._s = _empty()


class PearsonCorr(_PairedStat):
    """Pearson correlation coefficient; None (reason) for fewer than 2 pairs or a constant series."""

    @property
    def reason(self) -> str | None:
        return paired.pearson(self._s)[1]

    def get(self) -> float | None:
        return paired.pearson(self._s)[0]


class RMSE(_PairedStat):
    """Root mean squared error between x and y."""

    @property
    def reason(self) -> str | None:
        return paired.rmse(self._s)[1]

    def get(self) -> float | None:
        return paired.rmse(self._s)[0]


class CCC(_PairedStat):
    """Lin's concordance correlation coefficient (population moments)."""

    @property
    def reason(self) -> str | None:
        return paired.ccc(self._s)[1]

    def get(self) -> float | None:
        return paired.ccc(self._s)[0]
