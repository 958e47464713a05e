"""Face coverage: the share of analysed frames of each stream with a face, and with several faces.

Every face analyser reports ``source_faces`` / ``deid_faces`` (counts of detected faces). Coverage is measured
by the first face analyser of the run in the order ``faces``, ``reality``, ``identity`` (the densest sampled
one; the others' counts are listed under ``by_analyser`` in the whole-stream values).
"""

from __future__ import annotations

from streameval.analysis.base import Observation
from streameval.metrics.base import Metric, Values, rate_series, render_rate, with_reasons
from streameval.stats import Windowed

FACE_ANALYSERS = ("faces", "reality", "identity")
SIDES = ("source", "deid")


class _Counts:
    def __init__(self) -> None:
        self.frames = 0
        self.with_face = {s: 0 for s in SIDES}
        self.multi = {s: 0 for s in SIDES}

    def update(self, obs: Observation) -> None:
        self.frames += 1
        for side in SIDES:
            n = int(obs.values[f"{side}_faces"])
            self.with_face[side] += n >= 1
            self.multi[side] += n > 1

    def as_dict(self) -> Values:
        out: Values = {"frames": self.frames}
        for side in SIDES:
            out[f"{side}_face_frames"] = self.with_face[side]
            out[f"{side}_multiple_frames"] = self.multi[side]
        return out


class CoverageMetric(Metric):
    family = "coverage"

    def __init__(self, analysers: list[str], window: float) -> None:
        ordered = [a for a in FACE_ANALYSERS if a in analysers]
        if not ordered:
            raise ValueError(f"coverage needs one of the face analysers {FACE_ANALYSERS}, got {analysers}")
        self.primary = ordered[0]
        self.consumes = frozenset(ordered)
        self.face = {s: rate_series(window) for s in SIDES}
        self.multi = {s: rate_series(window) for s in SIDES}
        self.counts = {a: _Counts() for a in ordered}

    def update(self, obs: Observation) -> None:
        self.counts[obs.analyser].update(obs)
        if obs.analyser != self.primary:
            return
        for side in SIDES:
            n = int(obs.values[f"{side}_faces"])
            self.face[side].update(n >= 1, t=obs.t)
            self.multi[side].update(n > 1, t=obs.t)

    def expire(self, now: float) -> None:
        for series in (*self.face.values(), *self.multi.values()):
            series.expire(now)

    def _values(self, window: bool) -> Values:
        out: Values = {"analyser": self.primary}
        reasons: dict[str, str] = {}
        for side in SIDES:
            face: Windowed[float | None] = self.face[side]
            multi: Windowed[float | None] = self.multi[side]
            render_rate(face.window if window else face.total, side, out, reasons)
            render_rate(multi.window if window else multi.total, f"{side}_multiple", out, reasons)
        return with_reasons(out, reasons)

    def window_values(self) -> Values:
        return self._values(True)

    def total_values(self) -> Values:
        out = self._values(False)
        out.update(self.counts[self.primary].as_dict())
        out["by_analyser"] = {name: c.as_dict() for name, c in self.counts.items()}
        return out
