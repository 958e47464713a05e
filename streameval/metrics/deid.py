"""De-identification: distances of the faces to identities A and B, leak rate and swap rate, per recogniser.

For each recogniser (``dlib``, ``insightface``) the family keeps, over the window and the whole stream, mean,
population std and count of the distances ``dist_a`` (de-identified face to A), ``dist_b`` (to reference B),
``dist_src`` (to the paired source face), ``source_dist_a``, ``source_dist_b`` (the source face to A and B), and
the rates ``leak_rate`` (share of de-identified faces verified as A: distance <= threshold) and ``swap_rate``
(verified as B; only with a ``ref_b``). The first recogniser's values are also at the top level of the family
(``deid.leak_rate``); every recogniser's are under its key (``deid.dlib.leak_rate``). The whole-stream totals
also hold ``histograms`` of ``dist_a``, ``dist_b`` and ``dist_src`` (counts per 0.05 over [0, 2), for the
report's figures and for pooling over videos).
"""

from __future__ import annotations

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
from streameval.stats import Windowed
from streameval.stats.histogram import Histogram, uniform_edges

DISTANCES = {
    "deid_a": "dist_a",
    "deid_b": "dist_b",
    "deid_src": "dist_src",
    "source_a": "source_dist_a",
    "source_b": "source_dist_b",
}


# Whole-stream distributions of the de-identified face's distances (the report's histograms): 0.05-wide bins
# over [0, 2), which holds Euclidean dlib distances (same person < 0.6) and cosine distances (0..2) alike.
HISTOGRAM_EDGES = uniform_edges(0.0, 2.0, 40)
HISTOGRAMS = ("deid_a", "deid_b", "deid_src")


@dataclass(frozen=True, slots=True)
class RecogniserInfo:
    key: str
    model: str
    metric: str
    threshold: float
    a_reference: str  # "ref_a: <path>" or "paired source face"
    b_reference: str | None
    runtime: str = "onnxruntime"  # what ran the model: 'onnxruntime', or 'dlib' for the reference backend


class _PerRecogniser:
    def __init__(self, info: RecogniserInfo, window: float) -> None:
        self.info = info
        self.dist = {name: scalar_series(window) for name in DISTANCES}
        self.leak = rate_series(window)
        self.swap = rate_series(window)
        self.histograms = {name: Histogram(HISTOGRAM_EDGES) for name in HISTOGRAMS}

    def update(self, d: dict[str, float | None], t: float) -> None:
        for name, series in self.dist.items():
            value = d.get(name)
            if value is not None:
                series.update(float(value), t=t)
                if name in self.histograms:
                    self.histograms[name].update(float(value))
        if d.get("deid_a") is not None:
            self.leak.update(float(d["deid_a"] or 0.0) <= self.info.threshold, t=t)
        if d.get("deid_b") is not None:
            self.swap.update(float(d["deid_b"] or 0.0) <= self.info.threshold, t=t)

    def expire(self, now: float) -> None:
        for series in (*self.dist.values(), self.leak, self.swap):
            series.expire(now)

    def values(self, window: bool) -> Values:
        def pick(s: Windowed[Any]) -> Any:
            return s.window if window else s.total

        out: Values = {
            "recogniser": self.info.model,
            "runtime": self.info.runtime,
            "metric": self.info.metric,
            "threshold": self.info.threshold,
            "a_reference": self.info.a_reference,
            "b_reference": self.info.b_reference,
        }
        reasons: dict[str, str] = {}
        render_rate(pick(self.leak), "leak_rate", out, reasons)
        render_rate(pick(self.swap), "swap_rate", out, reasons)
        for name, key in DISTANCES.items():
            render_scalar(pick(self.dist[name]), key, out, reasons)
        if self.info.b_reference is None:
            for key in ("swap_rate", "dist_b_mean", "dist_b_std", "source_dist_b_mean", "source_dist_b_std"):
                reasons[key] = "no ref_b configured"
        if not window:
            out["histograms"] = {DISTANCES[name]: h.get().as_dict() for name, h in self.histograms.items()}
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

    def update(self, obs: Observation) -> None:
        self.faces["pairs"] += 1
        self.faces["source"] += int(obs.values["source_faces"]) > 0
        self.faces["deid"] += int(obs.values["deid_faces"]) > 0
        for key, distances in obs.values["distances"].items():
            self.per[key].update(distances, obs.t)

    def expire(self, now: float) -> None:
        for per in self.per.values():
            per.expire(now)

    def _values(self, window: bool) -> Values:
        out: Values = dict(self.per[self.primary].values(window))
        for key, per in self.per.items():
            out[key] = per.values(window)
        return out

    def window_values(self) -> Values:
        return self._values(True)

    def total_values(self) -> Values:
        out = self._values(False)
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
                stat: Any = per.dist[name].total
                var = stat.get()
                block[f"{label}_mean"] = stat.mean
                block[f"{label}_std"] = None if var is None else var**0.5
            blocks[side] = block
        return blocks
