"""De-identification: distances of the faces to identities A and B, leak rate and swap rate, per recogniser.

For each recogniser (``dlib``, ``insightface``, ``faceres``) the family keeps, over the window and the whole
stream, mean, population std and count of the distances ``dist_a`` (de-identified face to A), ``dist_b`` (to
reference B), ``dist_src`` (to the paired source face), ``source_dist_a``, ``source_dist_b`` (the source face to A
and B), and the rates ``leak_rate`` (share of de-identified faces verified as A: distance <= threshold) and
``swap_rate`` (verified as B; only with a ``ref_b``). The first recogniser's values are also at the top level of
the family (``deid.leak_rate``); every recogniser's are under its key (``deid.dlib.leak_rate``). The whole-stream
totals also hold ``histograms`` of ``dist_a``, ``dist_b`` and ``dist_src`` (counts per 0.05 over [0, 2), for the
report's figures and for pooling over videos). Each window record also lists, under ``pairs``, every pair
analysed since the previous record with every recogniser's distances (``{"t", "<key>": {"dist_a", ...,
"at_source_dist_a", ..., "source_dist_a", "source_dist_b"}}``), so pair-level analyses need no second run.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from streameval.analysis.base import Observation
from streameval.metrics.base import (
    Metric,
    Values,
    rate_series,
    render_rate,
    render_scalar,
    scalar_series,
    with_reasons,
)
from streameval.metrics.privacy import LeakEvents, Match, MeanPair, prepare, track_distance
from streameval.models.base import FloatArray
from streameval.stats import Windowed
from streameval.stats.histogram import Histogram, uniform_edges

log = logging.getLogger(__name__)

# observation names -> record prefixes: the detected de-identified face, the de-identified frame at the source
# face's location and alignment (records: the ``at_source`` block), and the source face itself
DETECTED = {"deid_a": "dist_a", "deid_b": "dist_b", "deid_src": "dist_src"}
AT_SOURCE = {"at_source_a": "dist_a", "at_source_b": "dist_b", "at_source_src": "dist_src"}
SOURCE = {"source_a": "source_dist_a", "source_b": "source_dist_b"}
PATHS = {"detected": "deid_a", "at_source": "at_source_a"}  # path -> the observation's distance to A
# the detected path's and the source face's series, as before the at-source path (batch state reads these)
DISTANCES = {**DETECTED, **SOURCE}


def pair_distances(d: dict[str, float | None]) -> dict[str, float | None]:
    """One pair's distances of one recogniser under their record names (``dist_a``, ``at_source_dist_a``, ...)."""
    out = {key: d.get(name) for name, key in DETECTED.items()}
    out |= {f"at_source_{key}": d.get(name) for name, key in AT_SOURCE.items()}
    out |= {key: d.get(name) for name, key in SOURCE.items()}
    return {k: None if v is None else float(v) for k, v in out.items()}


# Whole-stream distributions of the de-identified face's distances (the report's histograms): 0.05-wide bins
# over [0, 2), which holds Euclidean dlib distances (same person < 0.6) and cosine distances (0..2) alike.
HISTOGRAM_EDGES = uniform_edges(0.0, 2.0, 40)


@dataclass(frozen=True, slots=True)
class RecogniserInfo:
    key: str
    model: str
    metric: str
    threshold: float
    a_reference: str  # "ref_a: <path>" or "paired source face"
    b_reference: str | None
    runtime: str = "onnxruntime"  # what ran the model: 'onnxruntime', or 'dlib' for the reference backend


class _Verification:
    """Distances of one view of the de-identified face (the detected face, or the frame at the source face's
    location) to A, B and the source face, and the leak and swap rates they give."""

    def __init__(self, threshold: float, window: float, names: dict[str, str], metric: str = "euclidean") -> None:
        self.threshold = threshold
        self.metric = metric
        self.window = window
        self.track: Windowed[Any] | None = None  # made at the first embedding, which gives the dimension
        self.names = names  # observation name -> record prefix, in the order deid_a, deid_b, deid_src
        self.dist = {name: scalar_series(window) for name in names}
        self.leak = rate_series(window)
        self.swap = rate_series(window)
        self.histograms = {name: Histogram(HISTOGRAM_EDGES) for name in names}
        self._a, self._b = list(names)[:2]

    def update(self, d: dict[str, float | None], t: float) -> None:
        for name, series in self.dist.items():
            value = d.get(name)
            if value is not None:
                series.update(float(value), t=t)
                self.histograms[name].update(float(value))
        a, b = d.get(self._a), d.get(self._b)
        if a is not None:
            self.leak.update(float(a) <= self.threshold, t=t)
        if b is not None:
            self.swap.update(float(b) <= self.threshold, t=t)

    def update_track(self, face: FloatArray | None, a: FloatArray | None, t: float) -> None:
        """Add the pair's embeddings of the de-identified face and of A to the track-level attacker's means."""
        if face is None or a is None:
            return
        x, y = prepare(face, self.metric), prepare(a, self.metric)
        if self.track is None:
            self.track = Windowed(MeanPair(x.size), period=self.window)
        self.track.update(x, y, t=t)

    def expire(self, now: float) -> None:
        for series in (*self.dist.values(), self.leak, self.swap):
            series.expire(now)
        if self.track is not None:
            self.track.expire(now)

    def render(self, window: bool, out: Values, reasons: dict[str, str]) -> None:
        def pick(s: Windowed[Any]) -> Any:
            return s.window if window else s.total

        render_rate(pick(self.leak), "leak_rate", out, reasons)
        render_rate(pick(self.swap), "swap_rate", out, reasons)
        for name, key in self.names.items():
            render_scalar(pick(self.dist[name]), key, out, reasons)
        means = None if self.track is None else pick(self.track)
        out["track_n"] = 0 if means is None else means.n
        distance = None if means is None else track_distance(means.get(), self.metric)
        out["track_dist_a"] = distance
        out["track_leak"] = None if distance is None else distance <= self.threshold
        if distance is None:
            reasons["track_dist_a"] = reasons["track_leak"] = (
                "no embeddings" if out["track_n"] == 0 else "mean embedding of zero length"
            )

    def histogram_values(self) -> dict[str, Any]:
        return {self.names[name]: h.get().as_dict() for name, h in self.histograms.items()}


class _PerRecogniser:
    def __init__(self, info: RecogniserInfo, window: float) -> None:
        self.info = info
        self.detected = _Verification(info.threshold, window, DETECTED, info.metric)
        self.at_source = _Verification(info.threshold, window, AT_SOURCE, info.metric)
        self.source = {name: scalar_series(window) for name in SOURCE}

    @property
    def dist(self) -> dict[str, Windowed[float | None]]:
        """Every series of :data:`DISTANCES` (the detected path and the source face)."""
        return {**self.detected.dist, **self.source}

    @property
    def leak(self) -> Windowed[float | None]:
        return self.detected.leak

    @property
    def swap(self) -> Windowed[float | None]:
        return self.detected.swap

    def update(self, d: dict[str, float | None], t: float, embeddings: dict[str, FloatArray | None]) -> None:
        self.detected.update(d, t)
        self.at_source.update(d, t)
        self.detected.update_track(embeddings.get("deid"), embeddings.get("a"), t)
        self.at_source.update_track(embeddings.get("at_source"), embeddings.get("a"), t)
        for name, series in self.source.items():
            value = d.get(name)
            if value is not None:
                series.update(float(value), t=t)

    def expire(self, now: float) -> None:
        self.detected.expire(now)
        self.at_source.expire(now)
        for series in self.source.values():
            series.expire(now)

    def values(self, window: bool) -> Values:
        out: Values = {
            "recogniser": self.info.model,
            "runtime": self.info.runtime,
            "metric": self.info.metric,
            "threshold": self.info.threshold,
            "a_reference": self.info.a_reference,
            "b_reference": self.info.b_reference,
        }
        reasons: dict[str, str] = {}
        self.detected.render(window, out, reasons)
        for name, key in SOURCE.items():
            render_scalar(self.source[name].window if window else self.source[name].total, key, out, reasons)
        at: Values = {}
        at_reasons: dict[str, str] = {}
        self.at_source.render(window, at, at_reasons)
        if self.info.b_reference is None:
            for key in ("swap_rate", "dist_b_mean", "dist_b_std", "source_dist_b_mean", "source_dist_b_std"):
                reasons[key] = "no ref_b configured"
            for key in ("swap_rate", "dist_b_mean", "dist_b_std"):
                at_reasons[key] = "no ref_b configured"
        if not window:
            out["histograms"] = self.detected.histogram_values()
            at["histograms"] = self.at_source.histogram_values()
        out["at_source"] = with_reasons(at, at_reasons)
        return with_reasons(out, reasons)


class DeidMetric(Metric):
    family = "deid"
    consumes = frozenset({"identity"})

    def __init__(self, recognisers: list[RecogniserInfo], window: float) -> None:
        if not recognisers:
            raise ValueError("DeidMetric needs at least one recogniser")
        self.per = {info.key: _PerRecogniser(info, window) for info in recognisers}
        self.primary = recognisers[0].key
        self.faces = {"source": 0, "deid": 0, "pairs": 0}
        # pairs with a source face whose de-identified frame has none: its own number, never a leak or a pass
        self.missing = rate_series(window)
        # worst case over recognisers: a pair is a leak when any recogniser verifies it as A (per path)
        self.leak_any = {path: rate_series(window) for path in PATHS}
        self.window = window
        self.events = LeakEvents()
        self._now = -math.inf
        self._pairs: list[dict[str, Any]] = []  # per-pair distances since the last window record

    def _matches(self, distances: dict[str, dict[str, float | None]], t: float) -> list[Match]:
        """Every verification of the pair's de-identified frame as A (any recogniser, either path)."""
        out = []
        for key, d in distances.items():
            threshold = self.per[key].info.threshold
            for path, name in PATHS.items():
                value = d.get(name)
                if value is not None and float(value) <= threshold:
                    out.append(Match(key, path, float(value), threshold, t))
        return out

    def _update_any(self, distances: dict[str, dict[str, float | None]], t: float) -> None:
        for path, name in PATHS.items():
            verdicts = [
                float(value) <= self.per[key].info.threshold
                for key, d in distances.items()
                if (value := d.get(name)) is not None
            ]
            if verdicts:
                self.leak_any[path].update(any(verdicts), t=t)

    def update(self, obs: Observation) -> None:
        source, deid = int(obs.values["source_faces"]) > 0, int(obs.values["deid_faces"]) > 0
        self.faces["pairs"] += 1
        self.faces["source"] += source
        self.faces["deid"] += deid
        if source:
            self.missing.update(not deid, t=obs.t)
        embeddings = obs.values.get("embeddings", {})
        for key, distances in obs.values["distances"].items():
            self.per[key].update(distances, obs.t, embeddings.get(key, {}))
        self._pairs.append({"t": obs.t, **{k: pair_distances(d) for k, d in obs.values["distances"].items()}})
        self._update_any(obs.values["distances"], obs.t)
        self._now = max(self._now, obs.t)
        ended = self.events.update(obs.t, self._matches(obs.values["distances"], obs.t))
        if ended is not None:
            log.info(
                "leak event: identity A verified from t=%.3f to %.3f s (%d pairs, strongest %s %.3f at %s)",
                ended.start,
                ended.end,
                ended.pairs,
                ended.strongest.recogniser,
                ended.strongest.distance,
                ended.strongest.path,
            )

    def expire(self, now: float) -> None:
        self._now = max(self._now, now)
        self.missing.expire(now)
        for series in self.leak_any.values():
            series.expire(now)
        for per in self.per.values():
            per.expire(now)

    def _values(self, window: bool) -> Values:
        out: Values = dict(self.per[self.primary].values(window))
        for key, per in self.per.items():
            out[key] = per.values(window)
        reasons: dict[str, str] = {}
        render_rate(self.missing.window if window else self.missing.total, "deid_face_missing_rate", out, reasons)
        for path, key in (("detected", "leak_any"), ("at_source", "leak_any_at_source")):
            series = self.leak_any[path]
            render_rate(series.window if window else series.total, key, out, reasons)
        if "deid_face_missing_rate" in reasons:
            reasons["deid_face_missing_rate"] = "no pair with a source face"
        if reasons:
            out["null_reasons"] = dict(sorted({**out.get("null_reasons", {}), **reasons}.items()))
        return out

    def window_values(self) -> Values:
        out = self._values(True)
        # the incident log of the window: events that ended inside it or are still open
        events = self.events.since(self._now - self.window)
        out["leak_events"] = events
        out["leak_events_n"] = len(events)
        out["leak_open_pairs"] = 0 if self.events.open is None else self.events.open.pairs
        # every pair analysed since the previous record (each pair once over the records), every recogniser
        out["pairs"], self._pairs = self._pairs, []
        return out

    def total_values(self) -> Values:
        out = self._values(False)
        events = self.events.all()
        out["leak_events"] = events
        out["leak_events_n"] = self.events.ended + (self.events.open is not None)
        out["leak_events_s"] = sum(e["duration_s"] for e in events)
        out["analysed_pairs"] = self.faces["pairs"]
        out["pairs_with_face"] = {"source": self.faces["source"], "deid": self.faces["deid"]}
        return out

    def paper(self) -> dict[str, dict[str, Any]]:
        """``A_mean, A_std, B_mean, B_std`` (population std) of each stream, primary recogniser, whole stream."""
        per = self.per[self.primary]
        blocks: dict[str, dict[str, Any]] = {}
        for side, a, b in (("source", "source_a", "source_b"), ("deid", "deid_a", "deid_b")):
            block: dict[str, Any] = {}
            for label, name in (("A", a), ("B", b)):
                series = per.detected.dist[name] if name.startswith("deid") else per.source[name]
                stat: Any = series.total
                var = stat.get()
                block[f"{label}_mean"] = stat.mean
                block[f"{label}_std"] = None if var is None else var**0.5
            blocks[side] = block
        return blocks
