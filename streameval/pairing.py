"""Pair source and de-identified frames.

Two policies:

* ``time``: a de-identified frame at pts ``p`` is shown at source time ``p - offset``. Walking both streams in
  time order, the oldest undecided source frame and the oldest undecided de-identified frame are paired when they
  are at most ``tolerance`` apart and neither stream's next frame is closer to the other's frame; otherwise the
  older (or the dominated) one is left unpaired. One frame of look-ahead per side decides every case, so 25 fps
  against 30 fps pairs every 25 fps frame and leaves the surplus 30 fps frames unpaired, and a frame dropped on
  one side leaves its partner unpaired. Pairs never cross: frame order is kept on both sides.
* ``index``: frame ``i`` of the source pairs with frame ``i + index_offset`` of the de-identified stream.

:class:`Pairer` is a pure state machine (push frames, pull events) so it can be tested without I/O; the async
driver in :mod:`streameval.pipeline` feeds it. It never waits forever on one stream: when one side runs more than
``max_pending`` frames ahead of the other, the oldest frames of the runaway side are released as unpaired.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

from streameval.config import RunConfig
from streameval.errors import UsageError
from streameval.frames import Frame, FramePair

Side = Literal["source", "deid"]


@dataclass(frozen=True, slots=True)
class Unpaired:
    """A frame that found no partner."""

    side: Side
    frame: Frame
    t: float  # on the source clock


PairEvent = FramePair | Unpaired


@dataclass(frozen=True, slots=True)
class PairingConfig:
    mode: Literal["time", "index"] = "time"
    offset: float = 0.0  # seconds the de-identified stream runs behind the source
    tolerance: float = 0.02  # seconds
    index_offset: int = 0
    max_pending: int = RunConfig.max_pending  # the one default, the config schema's

    def __post_init__(self) -> None:
        if self.mode not in ("time", "index"):
            raise UsageError(f"pairing mode must be 'time' or 'index', got {self.mode!r}")
        if not self.tolerance >= 0:
            raise UsageError(f"pairing tolerance must be >= 0 seconds, got {self.tolerance!r}")
        if self.offset != self.offset or abs(self.offset) == float("inf"):
            raise UsageError(f"pairing offset must be a finite number of seconds, got {self.offset!r}")
        if self.max_pending < 2:
            raise UsageError(f"max_pending must be >= 2 frames, got {self.max_pending!r}")


@dataclass(slots=True)
class PairingCounts:
    paired: int = 0
    unpaired_source: int = 0
    unpaired_deid: int = 0
    forced: int = 0  # frames released unpaired because the other stream fell too far behind

    def as_dict(self) -> dict[str, int]:
        return {
            "paired": self.paired,
            "unpaired_source": self.unpaired_source,
            "unpaired_deid": self.unpaired_deid,
            "forced_unpaired": self.forced,
        }


class Pairer:
    """Streaming pairing state machine. Push frames in stream order, then drain :meth:`events`."""

    def __init__(self, config: PairingConfig | None = None) -> None:
        self.config = config or PairingConfig()
        self.counts = PairingCounts()
        self._src: deque[Frame] = deque()
        self._deid: deque[Frame] = deque()
        self._src_done = False
        self._deid_done = False
        self._out: deque[PairEvent] = deque()
        # Per side: no future event of that side can be earlier than this (see watermark()).
        self._floor: dict[Side, float] = {"source": -math.inf, "deid": -math.inf}

    # -- input -------------------------------------------------------------------------------------------
    def push(self, side: Side, frame: Frame) -> None:
        (self._src if side == "source" else self._deid).append(frame)
        t = frame.pts if side == "source" else self._deid_time(frame)
        self._floor[side] = max(self._floor[side], t)
        self._advance()

    def end(self, side: Side) -> None:
        """The stream on ``side`` has ended: nothing more will come from it."""
        if side == "source":
            self._src_done = True
        else:
            self._deid_done = True
        self._advance()

    @property
    def finished(self) -> bool:
        return self._src_done and self._deid_done and not self._src and not self._deid

    def watermark(self) -> float:
        """A stream time before which no further event will be emitted (given sorted input per side).

        Frames still held bound it by their own time; a side with nothing held is bounded by the last time it
        pushed, or by the time up to which the pairer gave up waiting for it (forced release).
        """
        marks = []
        for side, buf, done in (("source", self._src, self._src_done), ("deid", self._deid, self._deid_done)):
            if buf:
                head = buf[0]
                marks.append(head.pts if side == "source" else self._deid_time(head))
            elif not done:
                marks.append(self._floor[side])  # type: ignore[index]
        return min(marks, default=math.inf)

    def pending(self, side: Side) -> int:
        return len(self._src if side == "source" else self._deid)

    # -- output ------------------------------------------------------------------------------------------
    def events(self) -> list[PairEvent]:
        out = list(self._out)
        self._out.clear()
        return out

    # -- core --------------------------------------------------------------------------------------------
    def _deid_time(self, frame: Frame) -> float:
        return frame.pts - self.config.offset

    def _emit_unpaired(self, side: Side, forced: bool = False) -> None:
        if side == "source":
            frame = self._src.popleft()
            self.counts.unpaired_source += 1
            t = frame.pts
        else:
            frame = self._deid.popleft()
            self.counts.unpaired_deid += 1
            t = self._deid_time(frame)
        if forced:
            self.counts.forced += 1
            other: Side = "deid" if side == "source" else "source"
            self._floor[other] = max(self._floor[other], t)
        self._out.append(Unpaired(side, frame, t))

    def _emit_pair(self) -> None:
        src = self._src.popleft()
        deid = self._deid.popleft()
        self.counts.paired += 1
        self._out.append(FramePair(source=src, deid=deid, t=src.pts))

    def _advance(self) -> None:
        step = self._step_index if self.config.mode == "index" else self._step_time
        while step(force=False):
            pass
        # One stream stalled: decide without look-ahead rather than hold the other stream's frames forever.
        limit = self.config.max_pending
        while len(self._src) > limit or len(self._deid) > limit:
            if not step(force=True):
                side: Side = "source" if len(self._src) > limit else "deid"
                self._emit_unpaired(side, forced=True)
            while step(force=False):
                pass

    def _step_one_sided(self, force: bool) -> bool:
        """Only one side holds frames: release its oldest once the other side has ended (or when forced)."""
        if self._src and (self._deid_done or force):
            self._emit_unpaired("source", forced=force and not self._deid_done)
            return True
        if self._deid and (self._src_done or force):
            self._emit_unpaired("deid", forced=force and not self._src_done)
            return True
        return False

    def _step_index(self, force: bool) -> bool:
        if not self._src or not self._deid:
            return self._step_one_sided(force)
        si = self._src[0].index + self.config.index_offset
        di = self._deid[0].index
        if si == di:
            self._emit_pair()
        else:
            self._emit_unpaired("source" if si < di else "deid")
        return True

    def _step_time(self, force: bool) -> bool:
        tol = self.config.tolerance
        if not self._src or not self._deid:
            return self._step_one_sided(force)
        ts = self._src[0].pts
        td = self._deid_time(self._deid[0])
        if td < ts - tol:
            self._emit_unpaired("deid")
            return True
        if ts < td - tol:
            self._emit_unpaired("source")
            return True
        # Within tolerance: pair only if neither has a nearer neighbour coming next.
        gap = abs(ts - td)
        if len(self._deid) > 1:
            if abs(self._deid_time(self._deid[1]) - ts) < gap:
                self._emit_unpaired("deid")
                return True
        elif not (self._deid_done or force):
            return False  # wait for the next de-identified frame
        if len(self._src) > 1:
            if abs(self._src[1].pts - td) < gap:
                self._emit_unpaired("source")
                return True
        elif not (self._src_done or force):
            return False  # wait for the next source frame
        self._emit_pair()
        return True

    def flush(self) -> None:
        """Release everything still pending (both streams ended or the run is being stopped)."""
        self._src_done = True
        self._deid_done = True
        self._advance()
