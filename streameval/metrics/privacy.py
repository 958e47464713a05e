"""The attacker's statistics of the deid family: the track-level attacker and leak events.

* Track-level attacker: an attacker who collects the de-identified face over many frames averages its
  embeddings, which cancels frame-to-frame noise a de-identifier may rely on. :class:`MeanPair` keeps the mean
  of the de-identified face's embeddings and the mean of A's embeddings over the same pairs (A is ``ref_a``, a
  constant, or the paired source face); :func:`track_distance` compares the two in the recogniser's metric. For
  cosine recognisers every embedding is scaled to unit length before averaging (the normalised mean: each frame
  weighs the same whatever its norm; cosine distance ignores the mean's own length); for dlib's Euclidean space
  the plain mean, the space its 0.6 threshold was set in.
* Leak events (:class:`LeakEvents`): contiguous runs of analysed pairs where the de-identified face is verified
  as A, each with its start, end, duration, pair count and strongest match: a privacy incident log.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streameval.errors import UsageError
from streameval.stats.vector import VecMean

Vec = NDArray[np.float64]


def prepare(vector: ArrayLike, metric: str) -> Vec:
    """An embedding as it enters the track mean: unit length for cosine, unchanged for Euclidean."""
    v = np.asarray(vector, np.float64).reshape(-1)
    if metric != "cosine":
        return v
    norm = float(np.linalg.norm(v))
    return v if norm == 0.0 else v / norm


class MeanPair:
    """Means of paired k-vectors (the de-identified face's embedding, A's embedding) over the same pairs, with
    ``update``/``revert``/``get``/``merge`` so it can be windowed."""

    def __init__(self, k: int) -> None:
        self.k = k
        self._x = VecMean(k)
        self._y = VecMean(k)

    @property
    def n(self) -> int:
        return self._x.n

    def update(self, x: ArrayLike, y: ArrayLike) -> None:
        self._x.update(x)
        self._y.update(y)

    def revert(self, x: ArrayLike, y: ArrayLike) -> None:
        self._x.revert(x)
        self._y.revert(y)

    def merge(self, other: Self) -> None:
        if other.k != self.k:
            raise UsageError(f"cannot merge MeanPair of k={other.k} into k={self.k}")
        self._x.merge(other._x)
        self._y.merge(other._y)

    def get(self) -> tuple[Vec, Vec] | None:
        return None if self.n == 0 else (self._x.get(), self._y.get())

    def reset(self) -> None:
        self._x.reset()
        self._y.reset()

    def clone(self) -> Self:
        return copy.deepcopy(self)


def track_distance(means: tuple[Vec, Vec] | None, metric: str) -> float | None:
    """Distance between the mean de-identified embedding and mean A (None without pairs or for a zero mean)."""
    if means is None:
        return None
    x, y = means
    if metric == "cosine":
        denom = float(np.linalg.norm(x) * np.linalg.norm(y))
        return None if denom == 0.0 else 1.0 - float(x @ y) / denom
    return float(np.linalg.norm(x - y))


@dataclass(frozen=True, slots=True)
class Match:
    """One verification of the de-identified face as A: which recogniser and path, how close."""

    recogniser: str
    path: str  # 'detected' or 'at_source'
    distance: float
    threshold: float
    t: float

    @property
    def margin(self) -> float:
        """Distance over threshold: below 1 is verified; comparable across recognisers and metrics."""
        return self.distance / self.threshold if self.threshold > 0 else math.inf

    def as_dict(self) -> dict[str, Any]:
        return {
            "recogniser": self.recogniser,
            "path": self.path,
            "distance": self.distance,
            "threshold": self.threshold,
            "t": self.t,
        }


@dataclass(slots=True)
class LeakEvent:
    start: float
    end: float
    pairs: int
    strongest: Match

    @property
    def duration(self) -> float:
        return self.end - self.start

    def as_dict(self, *, open_: bool) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "duration_s": self.duration,
            "pairs": self.pairs,
            "open": open_,
            "strongest": self.strongest.as_dict(),
        }


class LeakEvents:
    """Contiguous runs of analysed pairs verified as A.

    ``update(t, matches)`` takes each analysed pair in time order with the verifications it produced (any
    recogniser, any path); an empty list (measured and not verified, or nothing to measure) ends an open event.
    ``start``/``end`` are the times of the first and last verified pair, so a one-pair event lasts 0 s; ``pairs``
    counts the verified pairs; ``strongest`` is the verification with the smallest distance over threshold.
    The log keeps the last ``keep`` ended events (the count of all is ``ended``).
    """

    def __init__(self, keep: int = 1000) -> None:
        self.keep = keep
        self.open: LeakEvent | None = None
        self.events: list[LeakEvent] = []
        self.ended = 0

    def update(self, t: float, matches: list[Match]) -> LeakEvent | None:
        """Add one analysed pair; returns the event it ended, if any."""
        if not matches:
            return self._close()
        best = min(matches, key=lambda m: m.margin)
        if self.open is None:
            self.open = LeakEvent(start=t, end=t, pairs=1, strongest=best)
        else:
            self.open.end = t
            self.open.pairs += 1
            if best.margin < self.open.strongest.margin:
                self.open.strongest = best
        return None

    def _close(self) -> LeakEvent | None:
        event, self.open = self.open, None
        if event is not None:
            self.ended += 1
            self.events.append(event)
            del self.events[: max(0, len(self.events) - self.keep)]
        return event

    def since(self, t0: float) -> list[dict[str, Any]]:
        """Events (ended or open) that end after ``t0``, oldest first."""
        out = [e.as_dict(open_=False) for e in self.events if e.end > t0]
        if self.open is not None and self.open.end > t0:
            out.append(self.open.as_dict(open_=True))
        return out

    def all(self) -> list[dict[str, Any]]:
        return self.since(-math.inf)
