"""The CPU budget of a run: can the analysis lanes keep up with the video, and which lane limits it?

Each lane runs one call at a time, so it keeps up only while ``seconds per call x calls per second of video``
stays below 1; and all lanes together share the machine's cores. After a short warm-up the pipeline measures
each lane's wall time and CPU time per call (its first call, which pays for model warm-up, is left out) and
asks :func:`assess` what that means at the run's rates. Wall time says whether a lane keeps up here and now
(it includes waiting for a core); CPU time says what the work costs on any machine of this kind, whatever else
is running. A live run says so at the start, instead of leaving a user to
wonder why pairs are dropped; a replay says how fast it will go.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LaneCost:
    name: str
    seconds_per_call: float  # wall time
    calls_per_second: float  # analyses per second of video at the run's sampling rates
    cpu_per_call: float  # CPU seconds, in every thread the call used (the face stage tracks both streams at once)
    background: bool = False  # a lane's deferred work (I3D clips): live, it skips jobs instead of dropping pairs

    @property
    def load(self) -> float:
        """Seconds of the lane's own time needed per second of video: above 1 it cannot keep up."""
        return self.seconds_per_call * self.calls_per_second

    @property
    def cpu(self) -> float:
        """CPU seconds per second of video."""
        return self.cpu_per_call * self.calls_per_second


@dataclass(frozen=True, slots=True)
class Assessment:
    lanes: tuple[LaneCost, ...]
    cores: int

    @property
    def cpu(self) -> float:
        return sum(lane.cpu for lane in self.lanes)

    @property
    def limiting(self) -> LaneCost:
        return max(self.lanes, key=lambda lane: lane.load)

    @property
    def speed(self) -> float:
        """Upper bound of the real-time factor: video seconds per wall second, by the busiest lane and the cores."""
        bounds = [1.0 / lane.load for lane in self.lanes if lane.load > 0]
        if self.cpu > 0:
            bounds.append(self.cores / self.cpu)
        return min(bounds) if bounds else float("inf")

    def as_dict(self) -> dict[str, object]:
        """The report's ``budget`` block."""
        return {
            "cores": self.cores,
            "cpu_s_per_video_s": round(self.cpu, 4),
            "speed_bound": round(self.speed, 4),
            "limiting_lane": self.limiting.name,
            "lanes": {
                lane.name: {
                    "ms_per_call": round(lane.seconds_per_call * 1000, 3),
                    "cpu_ms_per_call": round(lane.cpu_per_call * 1000, 3),
                    "calls_per_video_s": round(lane.calls_per_second, 3),
                    "load": round(lane.load, 4),
                    "cpu_s_per_video_s": round(lane.cpu, 4),
                    "background": lane.background,
                }
                for lane in self.lanes
            },
        }

    def describe(self) -> str:
        parts = ", ".join(f"{lane.name} {lane.load:.2f}" for lane in sorted(self.lanes, key=lambda c: -c.load))
        return (
            f"lane load per second of video (1.0 = one lane's whole time): {parts}; all lanes need "
            f"{self.cpu:.2f} CPU-s per video second on {self.cores} cores"
        )


def assess(lanes: list[LaneCost], cores: int | None = None) -> Assessment:
    return Assessment(tuple(lanes), cores or os.cpu_count() or 1)
