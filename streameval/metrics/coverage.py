"""Face coverage and tracking health: the share of frames of each stream with a face, and with several faces.

Measured on every pair the face stage saw (observations named ``faces``: ``<side>_faces`` counts the tracked
faces of the frame). The whole-stream values add the stage's work: detector runs, tracks started and shot
changes per stream, so a user can see how often tracking had to fall back on the detector.
"""

from __future__ import annotations

from streameval.analysis.base import Observation
from streameval.metrics.base import Metric, Values, rate_series, render_rate, with_reasons
from streameval.stats import Windowed

FACE_STAGE = "faces"
SIDES = ("source", "deid")


class _Counts:
    def __init__(self) -> None:
        self.frames = 0
        self.with_face = {s: 0 for s in SIDES}
        self.multi = {s: 0 for s in SIDES}
        self.detector = {s: 0 for s in SIDES}
        self.tracks = {s: 0 for s in SIDES}
        self.cuts = {s: 0 for s in SIDES}

    def update(self, obs: Observation) -> None:
        self.frames += 1
        for side in SIDES:
            n = int(obs.values[f"{side}_faces"])
            self.with_face[side] += n >= 1
            self.multi[side] += n > 1
            self.detector[side] += bool(obs.values.get(f"{side}_detector", True))
            self.tracks[side] += int(obs.values.get(f"{side}_new_tracks", 0))
            self.cuts[side] += bool(obs.values.get(f"{side}_cut", False))

    def as_dict(self) -> Values:
        out: Values = {"frames": self.frames}
        for side in SIDES:
            out[f"{side}_face_frames"] = self.with_face[side]
            out[f"{side}_multiple_frames"] = self.multi[side]
            out[f"{side}_detector_runs"] = self.detector[side]
            out[f"{side}_tracks"] = self.tracks[side]
            out[f"{side}_cuts"] = self.cuts[side]
        return out


class CoverageMetric(Metric):
    family = "coverage"
    consumes = frozenset({FACE_STAGE})

    def __init__(self, window: float) -> None:
        self.face = {s: rate_series(window) for s in SIDES}
        self.multi = {s: rate_series(window) for s in SIDES}
        self.counts = _Counts()

    def update(self, obs: Observation) -> None:
        self.counts.update(obs)
        for side in SIDES:
            n = int(obs.values[f"{side}_faces"])
            self.face[side].update(n >= 1, t=obs.t)
            self.multi[side].update(n > 1, t=obs.t)

    def expire(self, now: float) -> None:
        for series in (*self.face.values(), *self.multi.values()):
            series.expire(now)

    def _values(self, window: bool) -> Values:
        out: Values = {"analyser": FACE_STAGE}
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
        out.update(self.counts.as_dict())
        return out
