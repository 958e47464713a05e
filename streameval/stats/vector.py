"""K-channel statistics updated with one array per observation (e.g. the 17 action units in one call).

``PairedMoments(k)`` is the workhorse for expression metrics: one update per frame pair, and per-channel
Pearson, RMSE and CCC all derive from it. ``VecPearson``/``VecRMSE``/``VecCCC`` are the same state with a
single ``get``. Vector ``get()`` returns float64 arrays with NaN where undefined and ``reasons`` (a list of
``str | None`` per channel) says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streameval.errors import UsageError
from streameval.stats import paired, results
from streameval.stats._check import paired_rows, positive_int, same_kind, vector
from streameval.stats.moments import (
    MomentState,
    PairState,
    degenerate_mask,
    moments_add,
    moments_merge,
    moments_remove,
    stacked_add,
    stacked_as_pairs,
    stacked_merge,
    stacked_remove,
    stacked_zero,
)
from streameval.stats.univariate import _Base

Vec = NDArray[np.float64]


class VecResult(NamedTuple):
    """Per-channel values (NaN where undefined) and reasons (None where defined)."""

    values: Vec
    reasons: list[str | None]


class _VecBase(_Base):
    def __init__(self, k: int) -> None:
        self.k = positive_int(k, "k")
        self._config = (self.k,)

    def _check_revert(self, n: int) -> None:
        if n <= 0:
            raise UsageError(f"revert on an empty {type(self).__name__}")


class _VecMoments(_VecBase):
    def __init__(self, k: int) -> None:
        super().__init__(k)
        self.reset()

    @property
    def n(self) -> int:
        return self._s.n

    def reset(self) -> None:
        z = np.zeros(self.k)
        self._s: MomentState[Vec] = MomentState(0, z, z, z)

    def update(self, x: ArrayLike) -> None:
        self._s = moments_add(self._s, vector(x, self.k, "x"))

    def revert(self, x: ArrayLike) -> None:
        self._check_revert(self._s.n)
        self._s = moments_remove(self._s, vector(x, self.k, "x"))

    def merge(self, other: Self) -> None:
        same_kind(self, other, type(self).__name__)
        self._s = moments_merge(self._s, other._s)


class VecMean(_VecMoments):
    """Per-channel mean."""

    @property
    def reasons(self) -> list[str | None]:
        return [results.EMPTY if self._s.n == 0 else None] * self.k

    def get(self) -> Vec:
        return np.full(self.k, np.nan) if self._s.n == 0 else self._s.mean.copy()


class VecVar(_VecMoments):
    """Per-channel variance with ``ddof`` (1: sample variance)."""

    def __init__(self, k: int, ddof: int = 1) -> None:
        if isinstance(ddof, bool) or not isinstance(ddof, int) or ddof < 0:
            raise UsageError(f"ddof must be a non-negative integer, got {ddof!r}")
        super().__init__(k)
        self.ddof = ddof
        self._config = (self.k, ddof)

    @property
    def reasons(self) -> list[str | None]:
        return [results.fewer_than(self.ddof + 1) if self._s.n <= self.ddof else None] * self.k

    def get(self) -> Vec:
        if self._s.n <= self.ddof:
            return np.full(self.k, np.nan)
        m2 = np.where(degenerate_mask(self._s.m2, self._s.acc), 0.0, self._s.m2)
        return np.asarray(m2 / (self._s.n - self.ddof), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class PairedSummary:
    """Everything :class:`PairedMoments` derives, per channel."""

    n: int
    mean_x: Vec
    mean_y: Vec
    pearson: VecResult
    rmse: VecResult
    ccc: VecResult


class _PairedVec(_VecBase):
    """Moments of K paired channels (x_i, y_i); Pearson, RMSE and CCC per channel derive from one state."""

    def __init__(self, k: int) -> None:
        super().__init__(k)
        self.reset()

    @property
    def n(self) -> int:
        return self._z.n

    @property
    def state(self) -> PairState[Vec]:
        """The moments as a :class:`PairState` (a snapshot derived from the stacked form)."""
        return stacked_as_pairs(self._z)

    def reset(self) -> None:
        self._z = stacked_zero(self.k)

    def update(self, x: ArrayLike, y: ArrayLike) -> None:
        self._z = stacked_add(self._z, paired_rows(x, y, self.k))

    def revert(self, x: ArrayLike, y: ArrayLike) -> None:
        self._check_revert(self._z.n)
        self._z = stacked_remove(self._z, paired_rows(x, y, self.k))

    def merge(self, other: Self) -> None:
        same_kind(self, other, type(self).__name__)
        self._z = stacked_merge(self._z, other._z)

    def pearson(self) -> VecResult:
        return VecResult(*paired.pearson_vec(self.state))

    def rmse(self) -> VecResult:
        return VecResult(*paired.rmse_vec(self.state))

    def ccc(self) -> VecResult:
        return VecResult(*paired.ccc_vec(self.state))

    def mean_x(self) -> Vec:
        return np.full(self.k, np.nan) if self._z.n == 0 else self._z.mean[0].copy()

    def mean_y(self) -> Vec:
        return np.full(self.k, np.nan) if self._z.n == 0 else self._z.mean[1].copy()


class PairedMoments(_PairedVec):
    """Moments of K paired channels (x_i, y_i); ``get`` gives means, Pearson, RMSE and CCC per channel."""

    def get(self) -> PairedSummary:
        return PairedSummary(self.n, self.mean_x(), self.mean_y(), self.pearson(), self.rmse(), self.ccc())


class VecPearson(_PairedVec):
    """Per-channel Pearson correlation."""

    @property
    def reasons(self) -> list[str | None]:
        return self.pearson().reasons

    def get(self) -> Vec:
        return self.pearson().values


class VecRMSE(_PairedVec):
    """Per-channel RMSE."""

    @property
    def reasons(self) -> list[str | None]:
        return self.rmse().reasons

    def get(self) -> Vec:
        return self.rmse().values


class VecCCC(_PairedVec):
    """Per-channel Lin's CCC."""

    @property
    def reasons(self) -> list[str | None]:
        return self.ccc().reasons

    def get(self) -> Vec:
        return self.ccc().values
