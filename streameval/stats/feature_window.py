"""Windowed Fréchet distance between two feature streams (e.g. I3D clip features of source and output).

A :class:`FeatureWindow` keeps the feature vectors of one stream inside a count or stream-time window
(O(window · d) memory, O(1) per update); :class:`RollingFrechet` holds one per stream and computes the
distance from the stored features on demand, via the n1×n2 route while the window holds no more samples
than dimensions (the usual case for short windows, flagged ``low_n``) and via covariances otherwise.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streameval.errors import InputError, UsageError
from streameval.stats import results
from streameval.stats._check import matrix, positive_int
from streameval.stats.frechet import FrechetResult, frechet_result_from_features


class FeatureWindow:
    """Feature vectors of one stream in the last ``size`` samples or ``period`` seconds of stream time."""

    def __init__(self, dim: int, *, size: int | None = None, period: float | None = None) -> None:
        self.dim = positive_int(dim, "dim")
        if size is not None and period is not None:
            raise UsageError("give at most one of size= and period= (neither: keep everything)")
        self.size = None if size is None else positive_int(size, "size")
        if period is not None and (not math.isfinite(float(period)) or float(period) <= 0):
            raise UsageError(f"period must be a positive number of seconds, got {period!r}")
        self.period = None if period is None else float(period)
        self._rows: deque[tuple[float, NDArray[np.float64]]] = deque()
        self._now = -math.inf

    @property
    def n(self) -> int:
        return len(self._rows)

    def update(self, features: ArrayLike, *, t: float | None = None) -> None:
        """Add one vector (dim,) or a batch (m, dim) observed at stream time ``t`` (required for time windows)."""
        x = matrix(features, self.dim, "features").copy()
        if self.period is not None:
            if t is None:
                raise UsageError("a time window needs the observation time t=")
            self.expire(t)
        elif t is not None:
            self._clock(t)
        for row in x:
            self._rows.append((self._now, row))
        if self.size is not None:
            while len(self._rows) > self.size:
                self._rows.popleft()

    def _clock(self, t: float) -> float:
        v = float(t)
        if not math.isfinite(v):
            raise InputError(f"t must be a finite stream time, got {t!r}")
        if v < self._now:
            raise InputError(f"stream time went backwards: t={v} after {self._now}")
        self._now = v
        return v

    def expire(self, now: float) -> int:
        """Drop samples with ``t <= now - period`` (time windows only); returns how many."""
        v = self._clock(now)
        if self.period is None:
            return 0
        dropped = 0
        while self._rows and self._rows[0][0] <= v - self.period:
            self._rows.popleft()
            dropped += 1
        return dropped

    advance = expire

    def features(self) -> NDArray[np.float64]:
        """The window's features as an (n, dim) array (a copy)."""
        if not self._rows:
            return np.zeros((0, self.dim))
        return np.stack([r for _, r in self._rows])

    @property
    def t_first(self) -> float | None:
        return self._rows[0][0] if self._rows else None

    @property
    def t_last(self) -> float | None:
        return self._rows[-1][0] if self._rows else None

    def reset(self) -> None:
        self._rows.clear()
        self._now = -math.inf

    def clone(self) -> Self:
        return copy.deepcopy(self)


class RollingFrechet:
    """Fréchet distance between the feature windows of two streams ``x`` and ``y``.

    ``update(x=..., y=..., t=...)`` adds features to either or both; ``result()`` gives a
    :class:`~streameval.stats.frechet.FrechetResult` (with ``low_n``) or None with ``reason`` when a side has
    fewer than 2 samples; ``get()`` gives just the value.
    """

    def __init__(self, dim: int, *, size: int | None = None, period: float | None = None) -> None:
        self.x = FeatureWindow(dim, size=size, period=period)
        self.y = FeatureWindow(dim, size=size, period=period)
        self.dim = self.x.dim

    @property
    def n(self) -> int:
        """Samples in the smaller side (what limits the estimate)."""
        return min(self.x.n, self.y.n)

    def update(self, x: ArrayLike | None = None, y: ArrayLike | None = None, *, t: float | None = None) -> None:
        if x is not None:
            self.x.update(x, t=t)
        if y is not None:
            self.y.update(y, t=t)
        if t is not None and self.x.period is not None:
            # Keep both sides on the same clock even when only one stream produced a clip.
            self.expire(t)

    def expire(self, now: float) -> None:
        if self.x.period is not None:
            self.x.expire(max(now, self.x._now))
            self.y.expire(max(now, self.y._now))

    @property
    def reason(self) -> str | None:
        if self.x.n < 2 or self.y.n < 2:
            return f"{results.FEWER_THAN_2} (x: {self.x.n}, y: {self.y.n})"
        return None

    @property
    def low_n(self) -> bool:
        return min(self.x.n, self.y.n) <= self.dim

    def result(self) -> FrechetResult | None:
        if self.reason is not None:
            return None
        return frechet_result_from_features(self.x.features(), self.y.features())

    def get(self) -> float | None:
        r = self.result()
        return None if r is None else r.value

    def reset(self) -> None:
        self.x.reset()
        self.y.reset()

    def clone(self) -> Self:
        return copy.deepcopy(self)
