"""Stream-time bookkeeping: rebasing pts, keeping live time continuous, pacing, backoff.

The math is in pure functions; ``Timeline`` is the thin state that applies them frame by frame.
"""

from __future__ import annotations

import math


def pacing_delay(pts: float, anchor_pts: float, anchor_wall: float, now: float) -> float:
    """Seconds to wait so a frame at ``pts`` is released at ``anchor_wall + (pts - anchor_pts)``.

    Negative when the frame is late (the consumer held the replay back): it is then released at once and the
    replay catches up rather than re-anchoring, so arrival times stay on the stream's own clock.
    """
    return anchor_wall + (pts - anchor_pts) - now


def backoff_delay(attempt: int, *, base: float, maximum: float) -> float:
    """Exponential backoff: ``base * 2**attempt`` capped at ``maximum`` (attempt counts from 0)."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    if attempt > 60:  # 2**60 overflows nothing in Python, but keeps the float sane
        return maximum
    return min(maximum, base * math.pow(2.0, attempt))


def continued_offset(raw_pts: float, last_pts: float, elapsed: float, frame_interval: float) -> float:
    """Offset (``pts = raw - offset``) that puts a new segment's first ``raw_pts`` ``elapsed`` s after ``last_pts``.

    Used after a reconnect or a timestamp discontinuity: stream time advances by the wall time that passed
    (at least one frame interval), so windows downstream see the outage as time without frames.
    """
    return raw_pts - (last_pts + max(elapsed, frame_interval))


class Timeline:
    """Turns decoder timestamps into ``Frame.pts``.

    - The first frame maps to 0: ``pts = raw - offset`` with ``offset`` the raw pts of the first decoded frame.
    - Frames without a timestamp get the previous raw pts plus one frame interval (``index / fps`` at start).
    - ``new_segment`` (live reconnect) and raw jumps larger than ``max_jump`` seconds re-anchor the offset with
      :func:`continued_offset`, so live stream time never goes backwards and covers outages.
    - A raw pts that goes backwards (more than half a frame: concatenated MPEG-TS segments, a wrapped clock) starts
      a new segment one frame interval after the last frame, in files too: frames are never folded onto earlier
      ones. ``resets`` counts these.
    """

    def __init__(self, fps: float | None, *, max_jump: float | None) -> None:
        self._interval = 1.0 / fps if fps and fps > 0 else 1.0 / 30.0
        self._max_jump = max_jump
        self.offset: float | None = None
        self._last_raw: float | None = None
        self._last_pts: float | None = None
        self._last_wall: float | None = None
        self._resume = False
        self.resets = 0

    @property
    def frame_interval(self) -> float:
        return self._interval

    def set_fps(self, fps: float | None) -> None:
        if fps and fps > 0:
            self._interval = 1.0 / fps

    def new_segment(self) -> None:
        """The next frame comes from a fresh connection: its raw pts bears no relation to the last one."""
        self._resume = self._last_pts is not None
        self._last_raw = None

    def map(self, raw: float | None, wall: float) -> float:
        if raw is None or not math.isfinite(raw):
            raw = self._last_raw + self._interval if self._last_raw is not None else 0.0
        if self.offset is None:
            self.offset = raw
        elif self._last_pts is not None and self._last_wall is not None:
            backwards = self._last_raw is not None and raw - self._last_raw < -self._interval * 0.5
            jumped = (
                self._max_jump is not None
                and self._last_raw is not None
                and not (-self._interval * 0.5 <= raw - self._last_raw <= self._max_jump)
            )
            if backwards and not self._resume:
                self.resets += 1
            if self._resume or jumped or backwards:
                self.offset = continued_offset(raw, self._last_pts, wall - self._last_wall, self._interval)
        self._resume = False
        self._last_raw = raw
        pts = raw - self.offset
        self._last_pts = pts
        self._last_wall = wall
        return pts
