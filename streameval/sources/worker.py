"""The decoder thread: open, demux, decode, convert, pace and hand frames over; reopen live sources."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import av
import av.container
import av.error
import av.video

from streameval.errors import InputError
from streameval.frames import Frame
from streameval.sources.clock import Clock
from streameval.sources.decoder import frame_time, open_input, to_rgb
from streameval.sources.handover import Handover
from streameval.sources.spec import SourceSpec
from streameval.sources.stats import EndReason, SourceInfo, StatsRecorder
from streameval.sources.timeline import Timeline, backoff_delay, pacing_delay

log = logging.getLogger(__name__)

# How one connection (or one pass over a file) ended.
_PassEnd = Literal["eof", "closed", "stalled", "broken"]


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    live: bool
    realtime: bool
    reconnect: bool
    read_timeout: float
    base_backoff: float
    max_backoff: float
    max_retries: int | None
    give_up_after: float | None
    options: dict[str, str] = field(default_factory=dict)
    size: tuple[int, int] | None = None  # (width, height) to rescale every frame to at decode; None: as decoded


class DecodeWorker:
    """Body of the decoder thread. ``on_open`` is called once: with the stream info, or the error that ended
    the source before any container could be opened."""

    def __init__(
        self,
        spec: SourceSpec,
        settings: WorkerSettings,
        handover: Handover[Frame],
        recorder: StatsRecorder,
        clock: Clock,
        on_open: Callable[[SourceInfo | InputError], None],
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.stop = threading.Event()
        self._handover = handover
        self._stats = recorder
        self._clock = clock
        self._on_open = on_open
        #: (width, height) frames are rescaled to; read per frame, so it may be set while decoding
        self.size: tuple[int, int] | None = settings.size
        self._opened = False
        self._index = 0
        self._last_wall: float | None = None
        self._new_segment = False
        self._pace_anchor: tuple[float, float] | None = None
        # Files keep their own timestamps; live streams re-anchor on jumps longer than a stall would explain.
        self._timeline = Timeline(None, max_jump=max(settings.read_timeout, 1.0) if settings.live else None)

    # -- thread entry ---------------------------------------------------------------------------------------

    def run(self) -> None:
        error: InputError | None = None
        try:
            reason = self._run_reconnecting() if self.settings.reconnect else self._run_once()
            self._stats.set(end_reason=reason)
            if self._index == 0 and reason != "closed":
                last = self._stats.snapshot().last_error
                detail = f" ({last})" if last else ""
                error = InputError(f"{self.spec.spec}: no video frames could be decoded{detail}")
        except InputError as exc:
            self._stats.set(end_reason="error")
            error = exc
        except Exception as exc:  # a bug or an unexpected library error: end the source, keep the cause
            log.exception("decoder thread for %s failed", self.spec.spec)
            self._stats.set(end_reason="error")
            error = InputError(f"{self.spec.spec}: decoder failed: {exc}")
            error.__cause__ = exc
        finally:
            if not self._opened:
                self._opened = True
                self._on_open(error or InputError(f"{self.spec.spec}: closed before it was opened"))
            self._handover.finish(error)

    def _announce(self, info: SourceInfo) -> None:
        if not self._opened:
            self._opened = True
            self._on_open(info)

    def _open(self) -> tuple[av.container.InputContainer, av.video.stream.VideoStream, SourceInfo]:
        timeout = None if self.spec.kind == "file" else self.settings.read_timeout
        return open_input(self.spec, options=self.settings.options, timeout=timeout)

    # -- files, pipes and live sources without reconnect --------------------------------------------------

    def _run_once(self) -> EndReason:
        container, stream, info = self._open()
        try:
            self._announce(info)
            end = self._pump(container, stream, info)
        finally:
            container.close()
        if end == "closed":
            return "closed"
        if end == "stalled":
            return "error"
        if end == "broken" or (info.frames > 0 and self._index < info.frames and not self.settings.live):
            log.warning("%s: ended after %d of %d frames (truncated?)", self.spec.spec, self._index, info.frames)
            return "truncated"
        return "eof"

    # -- live sources: reopen with exponential backoff ----------------------------------------------------

    def _run_reconnecting(self) -> EndReason:
        attempt = 0
        outage_since = self._clock.now()
        first = True
        while not self.stop.is_set():
            if not first:
                self._stats.add(reconnects=1)
            first = False
            try:
                container, stream, info = self._open()
            except InputError as exc:
                self._stats.error(str(exc))
                # The first failure of an outage is worth a warning; repeating it every backoff step is noise
                # (the count is in the stats, and giving up is logged).
                log.log(logging.WARNING if attempt == 0 else logging.DEBUG, "%s", exc)
            else:
                before = self._index
                try:
                    self._announce(info)
                    self._timeline.new_segment()
                    self._new_segment = True
                    end = self._pump(container, stream, info)
                finally:
                    container.close()
                if end == "closed":
                    return "closed"
                if self._index > before:
                    attempt = 0
                    outage_since = self._last_wall if self._last_wall is not None else self._clock.now()
                log.warning("%s: stream %s after %d frames; reconnecting", self.spec.spec, end, self._index - before)
            if self._give_up(attempt, outage_since):
                log.warning("%s: giving up after %d attempts", self.spec.spec, attempt + 1)
                return "gave_up"
            delay = backoff_delay(attempt, base=self.settings.base_backoff, maximum=self.settings.max_backoff)
            if self.settings.give_up_after is not None:
                # never sleep past the give-up time: --give-up-after 5s ends at 5 s, not at the next backoff step
                remaining = self.settings.give_up_after - (self._clock.now() - outage_since)
                delay = max(0.0, min(delay, remaining))
            attempt += 1
            if self._clock.wait(delay, self.stop):
                break
            if self._out_of_time(outage_since):
                log.warning("%s: giving up after %d attempts", self.spec.spec, attempt)
                return "gave_up"
        return "closed"

    def _give_up(self, attempt: int, outage_since: float) -> bool:
        s = self.settings
        if s.max_retries is not None and attempt >= s.max_retries:
            return True
        return self._out_of_time(outage_since)

    def _out_of_time(self, outage_since: float) -> bool:
        s = self.settings
        return s.give_up_after is not None and self._clock.now() - outage_since >= s.give_up_after

    # -- one pass over an open container ------------------------------------------------------------------

    def _pump(
        self, container: av.container.InputContainer, stream: av.video.stream.VideoStream, info: SourceInfo
    ) -> _PassEnd:
        self._timeline.set_fps(info.fps)
        try:
            for packet in container.demux(stream):
                if self.stop.is_set():
                    return "closed"
                if packet.is_corrupt:  # the demuxer saw damage (e.g. MPEG-TS continuity errors)
                    self._stats.error("corrupt packet")
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:  # a damaged packet: count it, keep going
                    self._stats.error(f"decode error: {exc}")
                    continue
                for frame in frames:
                    if not self._emit(frame):
                        return "closed"
        except av.error.ExitError:
            self._stats.add(stalls=1)
            self._stats.error(f"no data for {self.settings.read_timeout:g} s")
            return "closed" if self.stop.is_set() else "stalled"
        except (av.error.FFmpegError, OSError) as exc:
            self._stats.error(f"read error: {exc}")
            return "closed" if self.stop.is_set() else "broken"
        return "closed" if self.stop.is_set() else "eof"

    def _emit(self, frame: av.VideoFrame) -> bool:
        """Convert, timestamp, pace and hand over one frame; False when the source is closing."""
        image = to_rgb(frame, self.size)
        self._stats.add(frames_decoded=1)
        wall = self._clock.now()
        resets = self._timeline.resets
        pts = self._timeline.map(frame_time(frame), wall)
        if self._timeline.resets > resets:
            # Counted and segmented like a live gap; warned once per source (the count is in the report).
            level = logging.WARNING if resets == 0 else logging.DEBUG
            log.log(level, "%s: timestamps went backwards at frame %d; new segment", self.spec.spec, self._index)
            self._stats.add(pts_resets=1)
            self._stats.gap(0.0)
        if self.settings.realtime:
            if self._pace_anchor is None:
                self._pace_anchor = (pts, wall)
            delay = pacing_delay(pts, self._pace_anchor[0], self._pace_anchor[1], wall)
            if delay > 0 and self._clock.wait(delay, self.stop):
                return False
            wall = self._clock.now()
        if self._new_segment:
            self._new_segment = False
            if self._last_wall is not None:
                self._stats.gap(wall - self._last_wall)
        self._last_wall = wall
        self._stats.set(pts_offset=self._timeline.offset)
        item = Frame(image=image, pts=pts, index=self._index, arrival=wall)
        self._index += 1
        return self._handover.put(item) and not self.stop.is_set()
