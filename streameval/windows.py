"""Cut the observation stream into rolling windows in stream time and render one record per hop.

Observations reach the windower out of order (analysers run concurrently and at their own pace). The pipeline
therefore also passes a *watermark*: a stream time up to which every observation has arrived. A record for the
window ending at ``E`` is cut only once the watermark reaches ``E``, after applying exactly the observations with
``t <= E`` in time order, so records do not depend on thread timing. The window is the half-open interval
``(E - window, E]``; hop boundaries are ``t0 + k * hop`` where ``t0`` is the first stream time seen.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from streameval.analysis.base import Observation
from streameval.config import RunConfig
from streameval.errors import UsageError
from streameval.metrics.base import Metric, update_all
from streameval.sinks.base import SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class WindowConfig:
    window: float = RunConfig.window  # seconds of stream time
    hop: float = RunConfig.hop  # seconds between records

    def __post_init__(self) -> None:
        for name in ("window", "hop"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise UsageError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.hop > self.window:
            raise UsageError(f"hop ({self.hop} s) must not exceed window ({self.window} s): data would be skipped")


class Windower:
    """Applies observations in stream-time order and renders a metrics record at every hop boundary."""

    def __init__(self, metrics: Iterable[Metric], config: WindowConfig, *, stream_id: str = "default") -> None:
        self.metrics = list(metrics)
        self.config = config
        self.stream_id = stream_id
        self._heap: list[tuple[float, int, Observation]] = []
        self._tie = itertools.count()
        self._t0: float | None = None
        self._k = 1  # index of the next hop boundary
        self._seq = 0
        self._last_applied: float | None = None
        self._cut_end: float | None = None
        self.late = 0  # observations that arrived after their window had been cut

    @property
    def open_from(self) -> float:
        """The earliest stream time an observation can still have without arriving late (its window is cut)."""
        return -math.inf if self._cut_end is None else self._cut_end

    @property
    def next_boundary(self) -> float | None:
        return None if self._t0 is None else self._t0 + self._k * self.config.hop

    def add(self, obs: Observation) -> None:
        # The first stream time anchors the hop grid; an earlier straggler (possible only before the first record
        # is cut) moves it back.
        if (self._t0 is None or obs.t < self._t0) and self._seq == 0:
            self._t0 = obs.t
        heapq.heappush(self._heap, (obs.t, next(self._tie), obs))

    def advance(self, watermark: float) -> list[dict[str, Any]]:
        """Cut every record whose window end is at or before ``watermark``."""
        records = []
        while (end := self.next_boundary) is not None and end <= watermark:
            records.append(self._cut(end, final=False))
            self._k += 1
        return records

    def finish(self) -> list[dict[str, Any]]:
        """End of stream: cut remaining full hops, then one last (partial-hop) record covering the tail."""
        if self._t0 is None:
            return []
        done = self._t0 if self._last_applied is None else self._last_applied
        last = max([t for t, _, _ in self._heap], default=done)
        records = self.advance(last)
        if self._heap or not records:
            records.append(self._cut(max(last, self._t0), final=True))
        else:
            records[-1]["window"]["final"] = True
        return records

    def _apply_until(self, end: float) -> None:
        while self._heap and self._heap[0][0] <= end:
            t, _, obs = heapq.heappop(self._heap)
            if self._cut_end is not None and t < self._cut_end:
                # Arrived after its window was published (a live stream delivering old frames late): count it
                # at the earliest time still open rather than rewrite history.
                self.late += 1
                obs = dataclasses.replace(obs, t=self._cut_end)
            update_all(self.metrics, obs)
            self._last_applied = obs.t

    def _cut(self, end: float, *, final: bool) -> dict[str, Any]:
        self._apply_until(end)
        for metric in self.metrics:
            metric.expire(end)
        self._cut_end = end
        start = max(end - self.config.window, self._t0 if self._t0 is not None else end)
        record: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "type": "metrics",
            "stream_id": self.stream_id,
            "seq": self._seq,
            "window": {"start": start, "end": end, "length_s": self.config.window, "final": final},
        }
        for metric in self.metrics:
            record[metric.family] = metric.window_values()
        self._seq += 1
        return record

    def totals(self) -> dict[str, Any]:
        """Whole-stream values of every family (everything added so far is applied first)."""
        self._apply_until(math.inf)
        return {metric.family: metric.total_values() for metric in self.metrics}
