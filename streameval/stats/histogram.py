"""Histogram over fixed bins: the distribution of a value (e.g. face distances) in O(bins) memory.

Fixed edges make it mergeable across windows, streams and videos (counts add), which a quantile sketch of the
values would not be exactly. Values below the first edge and at or above the last are counted apart
(``under``, ``over``), never dropped; NaN is refused like in the other statistics.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streameval.errors import UsageError
from streameval.stats._check import same_kind
from streameval.stats.univariate import _Base


@dataclass(frozen=True, slots=True)
class HistogramResult:
    edges: tuple[float, ...]  # len(counts) + 1, increasing; bin i is [edges[i], edges[i+1])
    counts: tuple[int, ...]
    under: int  # values < edges[0]
    over: int  # values >= edges[-1]

    @property
    def n(self) -> int:
        return sum(self.counts) + self.under + self.over

    def as_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "counts": list(self.counts), "under": self.under, "over": self.over}


def uniform_edges(low: float, high: float, bins: int) -> tuple[float, ...]:
    """``bins`` equal bins over [low, high), edges computed from integers so they print as given (0.05, not
    0.05000000000000001)."""
    if bins < 1 or not (math.isfinite(low) and math.isfinite(high) and high > low):
        raise UsageError(f"need bins >= 1 and finite low < high, got {low}, {high}, {bins}")
    return tuple(round(low + (high - low) * i / bins, 12) for i in range(bins + 1))


class Histogram(_Base):
    """Counts of values per fixed bin, with ``update``/``revert``/``merge``."""

    def __init__(self, edges: Sequence[float]) -> None:
        e = tuple(float(x) for x in edges)
        if len(e) < 2 or any(not math.isfinite(x) for x in e) or any(b <= a for a, b in itertools.pairwise(e)):
            raise UsageError(f"histogram edges must be finite and increasing, at least 2, got {list(edges)}")
        self.edges = e
        self._config = (e,)
        self._counts = [0] * (len(e) - 1)
        self._under = 0
        self._over = 0

    @property
    def n(self) -> int:
        return sum(self._counts) + self._under + self._over

    def _slot(self, x: float) -> int:
        """-1 for under, len(counts) for over, else the bin index."""
        if math.isnan(x):
            raise UsageError("histogram value is NaN")
        if x < self.edges[0]:
            return -1
        if x >= self.edges[-1]:
            return len(self._counts)
        return bisect.bisect_right(self.edges, x) - 1

    def _add(self, x: float, step: int) -> None:
        slot = self._slot(float(x))
        if slot < 0:
            self._under += step
            bad = self._under < 0
        elif slot >= len(self._counts):
            self._over += step
            bad = self._over < 0
        else:
            self._counts[slot] += step
            bad = self._counts[slot] < 0
        if bad:
            self._add(x, -step)  # leave the state as it was
            raise UsageError(f"revert of {x} that was never added to the histogram")

    def update(self, x: float) -> None:
        self._add(x, 1)

    def revert(self, x: float) -> None:
        self._add(x, -1)

    def merge(self, other: Histogram) -> None:
        same_kind(self, other, "histograms")  # the edges are the configuration
        self._counts = [a + b for a, b in zip(self._counts, other._counts, strict=True)]
        self._under += other._under
        self._over += other._over

    def get(self) -> HistogramResult:
        return HistogramResult(self.edges, tuple(self._counts), self._under, self._over)

    def reset(self) -> None:
        self._counts = [0] * (len(self.edges) - 1)
        self._under = self._over = 0


def quantile_bound(result: HistogramResult, q: float) -> float | None:
    """An upper bound of the ``q`` quantile (0 < q <= 1): the upper edge of the bin holding the
    ``ceil(q * n)``-th smallest value, so it overstates the true quantile by less than one bin width. None
    without values; ``edges[0]`` when that value lies below the edges; ``inf`` when at or above the last edge."""
    if not 0.0 < q <= 1.0:
        raise UsageError(f"quantile must be in (0, 1], got {q!r}")
    n = result.n
    if n == 0:
        return None
    rank = math.ceil(q * n - 1e-9)  # the rank-th smallest value (1-based); tolerance for q * n = integer
    seen = result.under
    if seen >= rank:
        return result.edges[0]
    for i, count in enumerate(result.counts):
        seen += count
        if seen >= rank:
            return result.edges[i + 1]
    return math.inf
