"""Windowed Fréchet distance between two feature streams (e.g. I3D clip features of source and output).

:class:`RollingFrechet` keeps the clips of each stream inside a count or stream-time window (O(window · d)
memory) together with their cross-Gram matrix (:mod:`streameval.stats.cross_gram`), so a refresh costs
O(n·d + n³) with no d×d matrix while a side holds no more clips than dimensions (the usual case for short
windows, flagged ``low_n``); beyond that it uses the covariance route. Adding a clip costs O(n·d).
"""

from __future__ import annotations

import copy
import math
from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streameval.errors import UsageError
from streameval.stats import results
from streameval.stats._check import matrix, positive_int, stream_time
from streameval.stats.cross_gram import CrossGram
from streameval.stats.frechet import FrechetResult, from_cov, from_cross, mean_term


class RollingFrechet:
    """Fréchet distance between the feature windows of two streams ``x`` and ``y``.

    Give ``size`` (clips per side), ``period`` (seconds of stream time; ``update`` then needs ``t``) or
    neither (keep everything: memory grows; use GaussianStats for whole streams). ``update(x=..., y=..., t=...)``
    adds a clip (d,) or clips (m, d) to either or both sides; ``result()`` gives a
    :class:`~streameval.stats.frechet.FrechetResult` or None (see ``reason``) while a side has fewer than 2.
    """

    def __init__(self, dim: int, *, size: int | None = None, period: float | None = None) -> None:
        self.dim = positive_int(dim, "dim")
        if size is not None and period is not None:
            raise UsageError("give at most one of size= and period= (neither: keep everything)")
        self.size = None if size is None else positive_int(size, "size")
        if period is not None and (not math.isfinite(float(period)) or float(period) <= 0):
            raise UsageError(f"period must be a positive number of seconds, got {period!r}")
        self.period = None if period is None else float(period)
        self.reset()

    def reset(self) -> None:
        self._g = CrossGram(self.dim)
        self._now = -math.inf

    @property
    def n_x(self) -> int:
        return self._g.x.n

    @property
    def n_y(self) -> int:
        return self._g.y.n

    @property
    def n(self) -> int:
        """Clips on the smaller side (what limits the estimate)."""
        return min(self.n_x, self.n_y)

    @property
    def now(self) -> float | None:
        return None if self._now == -math.inf else self._now

    def _clock(self, t: float) -> float:
        self._now = stream_time(t, self._now)
        return self._now

    def update(self, x: ArrayLike | None = None, y: ArrayLike | None = None, *, t: float | None = None) -> None:
        """Add clip features of either or both streams observed at stream time ``t``."""
        xs = None if x is None else matrix(x, self.dim, "x")
        ys = None if y is None else matrix(y, self.dim, "y")
        if self.period is not None:
            if t is None:
                raise UsageError("a time window needs the observation time t=")
            self.expire(t)
        elif t is not None:
            self._clock(t)
        stamp = self._now if self._now != -math.inf else 0.0
        for rows, is_x in ((xs, True), (ys, False)):
            if rows is None:
                continue
            for row in rows:
                self._g.add(row, stamp, is_x=is_x)
            if self.size is not None:
                side = self._g.x if is_x else self._g.y
                self._g.drop_oldest(is_x=is_x, count=max(0, side.n - self.size))

    def expire(self, now: float) -> int:
        """Drop clips with ``t <= now - period`` on both sides (time windows only); returns how many."""
        v = self._clock(now)
        if self.period is None:
            return 0
        limit = v - self.period
        return self._g.drop_until(limit, is_x=True) + self._g.drop_until(limit, is_x=False)

    advance = expire

    def features(self, side: str) -> NDArray[np.float64]:
        """The window's features of side "x" or "y" as an (n, dim) array (a copy)."""
        if side not in ("x", "y"):
            raise UsageError(f"side must be 'x' or 'y', got {side!r}")
        rows = self._g.x if side == "x" else self._g.y
        shift = self._g.shift if self._g.shift is not None else np.zeros(self.dim)
        return rows.live() + shift

    @property
    def reason(self) -> str | None:
        if self.n_x < 2 or self.n_y < 2:
            return f"{results.FEWER_THAN_2} (x: {self.n_x}, y: {self.n_y})"
        return None

    @property
    def low_n(self) -> bool:
        return self.n <= self.dim

    def result(self) -> FrechetResult | None:
        if self.reason is not None:
            return None
        xt, yt = self._g.x.live(), self._g.y.live()
        n1, n2 = xt.shape[0], yt.shape[0]
        m1, m2 = xt.mean(axis=0), yt.mean(axis=0)
        a = (xt - m1) / math.sqrt(n1 - 1)
        b = (yt - m2) / math.sqrt(n2 - 1)
        if min(n1, n2) > self.dim:
            return from_cov(m1, a.T @ a, m2, b.T @ b, n1=n1, n2=n2)
        cross = self._g.centred_cross() / math.sqrt((n1 - 1) * (n2 - 1))
        tr1 = float(np.einsum("ij,ij->", a, a))
        tr2 = float(np.einsum("ij,ij->", b, b))
        return from_cross(mean_term(m1, m2), tr1, tr2, cross, n1=n1, n2=n2, dim=self.dim)

    def get(self) -> float | None:
        r = self.result()
        return None if r is None else r.value

    def clone(self) -> Self:
        return copy.deepcopy(self)
