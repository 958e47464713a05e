"""Health of the measurement itself: pairing, analysis rate and drops, processing lag.

The pipeline reports pairing outcomes as ``_pairing`` observations and each finished (or dropped) analysis as an
``_analysis`` observation, so health is windowed in stream time exactly like every other family.

Lag is per analysed pair: wall time from the source frame's arrival to the end of its analysis in a lane.
``lag_p99_s`` is an upper bound of its 99th percentile (a histogram of 10 ms bins up to 10 s: at most 10 ms too
high; beyond 10 s it is the maximum). Work that a lane defers to the background (I3D on a clip) is not a pair
and is reported apart, in ``background``: jobs done and skipped, busy ms, and latency (wall time from the arrival
of the clip's last frame to its features).
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from streameval.analysis.base import Observation
from streameval.metrics.base import Metric, Values, scalar_series
from streameval.stats import Count, TimeRolling, Windowed
from streameval.stats.histogram import Histogram, quantile_bound, uniform_edges

PAIRING = "_pairing"
ANALYSIS = "_analysis"
PAIR_EVENTS = ("paired", "unpaired_source", "unpaired_deid")
LAG_EDGES = uniform_edges(0.0, 10.0, 1000)  # 10 ms bins for the lag quantile
LAG_QUANTILE = 0.99


class _WindowMax:
    """Maximum over a time window: a monotonic deque, amortised O(1) per observation."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._q: deque[tuple[float, float]] = deque()  # (t, value), values strictly decreasing

    def update(self, x: float, t: float) -> None:
        while self._q and self._q[-1][1] <= x:
            self._q.pop()
        self._q.append((t, x))

    def expire(self, now: float) -> None:
        while self._q and self._q[0][0] <= now - self.period:
            self._q.popleft()

    def get(self) -> float | None:
        return self._q[0][1] if self._q else None


class _Counter:
    def __init__(self, period: float) -> None:
        self.window = TimeRolling(Count(), period)
        self.total = 0

    def update(self, t: float) -> None:
        self.window.update(1, t=t)
        self.total += 1


class _Background:
    """One lane's deferred jobs: done and skipped counts, busy time and latency."""

    def __init__(self, period: float) -> None:
        self.done = _Counter(period)
        self.skipped = _Counter(period)
        self.busy = scalar_series(period)
        self.latency_max = _WindowMax(period)
        self.latency_max_total: float | None = None

    def update(self, values: dict[str, Any], t: float) -> None:
        if values.get("skipped"):
            self.skipped.update(t)
            return
        self.done.update(t)
        self.busy.update(float(values["busy_s"]), t=t)
        latency = float(values["latency_s"])
        self.latency_max.update(latency, t)
        self.latency_max_total = max(latency, self.latency_max_total or 0.0)

    def expire(self, now: float) -> None:
        self.done.window.expire(now)
        self.skipped.window.expire(now)
        self.busy.expire(now)
        self.latency_max.expire(now)

    def values(self, window: bool) -> dict[str, Any]:
        def count(c: _Counter) -> int:
            return int(c.window.get()) if window else c.total

        busy: Any = self.busy.window if window else self.busy.total
        return {
            "done": count(self.done),
            "skipped": count(self.skipped),
            "busy_ms": None if busy.mean is None else 1000.0 * busy.mean,
            "latency_max_s": self.latency_max.get() if window else self.latency_max_total,
        }


class HealthMetric(Metric):
    family = "health"
    consumes = frozenset({PAIRING, ANALYSIS})

    def __init__(self, window: float) -> None:
        self.period = window
        self.pairs = {name: _Counter(window) for name in PAIR_EVENTS}
        self.done: dict[str, _Counter] = defaultdict(lambda: _Counter(window))
        self.dropped: dict[str, _Counter] = defaultdict(lambda: _Counter(window))
        self.busy: dict[str, Windowed[float | None]] = defaultdict(lambda: scalar_series(window))
        self.lag = scalar_series(window)
        self.lag_max = _WindowMax(window)
        self.lag_max_total = 0.0
        self.lag_hist = TimeRolling(Histogram(LAG_EDGES), window)
        self.lag_hist_total = Histogram(LAG_EDGES)
        self.background: dict[str, _Background] = defaultdict(lambda: _Background(window))
        self.first_t: float | None = None
        self.last_t: float | None = None

    def update(self, obs: Observation) -> None:
        if self.first_t is None:
            self.first_t = obs.t
        self.last_t = obs.t if self.last_t is None else max(self.last_t, obs.t)
        if obs.analyser == PAIRING:
            self.pairs[obs.values["event"]].update(obs.t)
            return
        name = obs.values["analyser"]
        if obs.values.get("background"):
            self.background[name].update(obs.values, obs.t)
            return
        if obs.values.get("dropped"):
            self.dropped[name].update(obs.t)
            return
        self.done[name].update(obs.t)
        self.busy[name].update(float(obs.values["busy_s"]), t=obs.t)
        lag = float(obs.values["lag_s"])
        self.lag.update(lag, t=obs.t)
        self.lag_max.update(lag, obs.t)
        self.lag_max_total = max(self.lag_max_total, lag)
        self.lag_hist.update(lag, t=obs.t)
        self.lag_hist_total.update(lag)

    def expire(self, now: float) -> None:
        for counter in (*self.pairs.values(), *self.done.values(), *self.dropped.values()):
            counter.window.expire(now)
        for series in self.busy.values():
            series.expire(now)
        self.lag.expire(now)
        self.lag_max.expire(now)
        self.lag_hist.expire(now)
        for background in self.background.values():
            background.expire(now)

    def _span(self, window: bool) -> float:
        if self.first_t is None or self.last_t is None:
            return 0.0
        span = self.last_t - self.first_t
        return min(span, self.period) if window else span

    def _values(self, window: bool) -> Values:
        def count(c: _Counter) -> int:
            return int(c.window.get()) if window else c.total

        out: Values = {name: count(c) for name, c in self.pairs.items()}
        names = sorted(set(self.done) | set(self.dropped))
        span = self._span(window)
        out["analysed"] = {n: count(self.done[n]) for n in names}
        out["dropped"] = sum(count(self.dropped[n]) for n in names)
        out["dropped_by_analyser"] = {n: count(self.dropped[n]) for n in names}
        # Analyses per second of stream time: how much of the stream each analyser really covers.
        out["analysis_rate"] = {n: (count(self.done[n]) / span if span > 0 else None) for n in names}
        busy: dict[str, Any] = {}
        for n in names:
            stat: Any = self.busy[n].window if window else self.busy[n].total
            busy[n] = None if stat.mean is None else 1000.0 * stat.mean
        out["busy_ms"] = busy
        lag_stat: Any = self.lag.window if window else self.lag.total
        out["lag_s"] = lag_stat.mean
        lag_max = self.lag_max.get() if window else (self.lag_max_total if lag_stat.n else None)
        out["lag_max_s"] = lag_max
        bound = quantile_bound((self.lag_hist if window else self.lag_hist_total).get(), LAG_QUANTILE)
        out["lag_p99_s"] = None if bound is None or lag_max is None else min(bound, lag_max)
        if self.background:
            out["background"] = {n: b.values(window) for n, b in sorted(self.background.items())}
        return out

    def window_values(self) -> Values:
        return self._values(True)

    def total_values(self) -> Values:
        return self._values(False)
