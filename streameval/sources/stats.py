"""What a source reports about itself: static stream info and running counters."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

# eof: the file (or pipe) ended normally; truncated: it ended before the frames its header promised, or a read
# error cut it short; closed: the consumer closed the source; gave_up: a live source exhausted its retries;
# error: an unrecoverable error (see ``last_error``).
EndReason = Literal["eof", "truncated", "closed", "gave_up", "error"]


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """Properties of the video stream as the container declares them (``None`` or 0 where it does not)."""

    width: int
    height: int
    fps: float | None  # nominal (average, else guessed) frame rate
    codec: str
    container: str
    time_base: Fraction | None
    start_time: float | None  # container-declared start of the stream, seconds (raw clock)
    duration: float | None  # seconds, None when unknown (live)
    frames: int  # frame count from the header, 0 when unknown


@dataclass(frozen=True, slots=True)
class SourceStats:
    """A snapshot of a source's counters.

    ``pts_offset`` is what was subtracted from the raw decoder pts to make ``Frame.pts`` (raw = pts + offset);
    for live sources it changes at every reconnect.
    """

    frames_decoded: int = 0
    frames_delivered: int = 0
    frames_dropped: int = 0  # live: frames discarded because the consumer fell behind
    reconnects: int = 0  # open attempts after the first one
    gaps: int = 0  # outages that ended with frames flowing again
    gap_seconds: float = 0.0  # total wall time without frames across those outages
    max_gap_seconds: float = 0.0
    stalls: int = 0  # reads that produced nothing for longer than read_timeout
    errors: int = 0  # decode errors, failed opens, broken reads
    pts_resets: int = 0  # timestamps that went backwards within one connection (a new segment starts there)
    last_error: str | None = None
    end_reason: EndReason | None = None  # None while the source is running
    pts_offset: float | None = None


class StatsRecorder:
    """Thread-safe mutable counters; the decoder thread writes, anyone reads a ``snapshot``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = SourceStats()

    def snapshot(self) -> SourceStats:
        with self._lock:
            return self._stats

    def add(self, **increments: int | float) -> None:
        with self._lock:
            values = {name: getattr(self._stats, name) + amount for name, amount in increments.items()}
            self._stats = dataclasses.replace(self._stats, **values)

    def error(self, message: str) -> None:
        with self._lock:
            self._stats = dataclasses.replace(self._stats, errors=self._stats.errors + 1, last_error=message)

    def gap(self, seconds: float) -> None:
        with self._lock:
            s = self._stats
            self._stats = dataclasses.replace(
                s, gaps=s.gaps + 1, gap_seconds=s.gap_seconds + seconds, max_gap_seconds=max(s.max_gap_seconds, seconds)
            )

    def set(self, **values: object) -> None:
        with self._lock:
            self._stats = dataclasses.replace(self._stats, **values)  # type: ignore[arg-type]
