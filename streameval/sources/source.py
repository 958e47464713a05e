"""``open_source``: the public entry point, and ``VideoSource``, the async face of the decoder thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
from types import TracebackType

from streameval.errors import InputError, UsageError
from streameval.frames import Frame
from streameval.sources.clock import SYSTEM_CLOCK, Clock
from streameval.sources.handover import Handover, HandoverClosed
from streameval.sources.spec import SourceSpec, parse_spec
from streameval.sources.stats import SourceInfo, SourceStats, StatsRecorder
from streameval.sources.worker import DecodeWorker, WorkerSettings

log = logging.getLogger(__name__)


class VideoSource:
    """Frames of one video source, decoded in a background thread.

    Use as ``async with open_source(...) as src: async for frame in src: ...``. Entering starts the decoder
    thread; for a non-live source it also waits until the container is open, so a missing, corrupt or
    video-less input raises InputError right there. Leaving (also on cancellation) stops the thread and
    releases the container.
    """

    def __init__(self, spec: SourceSpec, settings: WorkerSettings, *, queue_size: int, clock: Clock) -> None:
        self.spec = spec
        self.settings = settings
        self._recorder = StatsRecorder()
        self._handover: Handover[Frame] = Handover(
            queue_size, drop_oldest=settings.live, on_drop=lambda _frame: self._recorder.add(frames_dropped=1)
        )
        self._clock = clock
        self._info: SourceInfo | None = None
        self._opened: asyncio.Future[SourceInfo] | None = None
        self._worker: DecodeWorker | None = None
        self._thread: threading.Thread | None = None
        self._size = settings.size

    # -- public state ---------------------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        return self.settings.live

    @property
    def info(self) -> SourceInfo | None:
        """Stream properties; ``None`` until the first successful open (live sources may still be connecting)."""
        return self._info

    @property
    def stats(self) -> SourceStats:
        """A consistent snapshot of the counters."""
        return self._recorder.snapshot()

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) every frame is rescaled to at decode; None: frames as decoded."""
        return self._size

    def set_size(self, size: tuple[int, int] | None) -> None:
        """Rescale frames decoded from now on to ``size`` (width, height); None stops rescaling.

        For a target known only after the source started, e.g. the resolution of a live stream it is compared
        with; frames already decoded keep their size.
        """
        self._size = _check_size(size)
        if self._worker is not None:
            self._worker.size = self._size  # one attribute store: the decoder thread reads it per frame

    async def ready(self) -> SourceInfo:
        """Wait until the source is open; raises InputError if it ended first."""
        if self._opened is None:
            raise RuntimeError("the source is not started: use 'async with'")
        return await asyncio.shield(self._opened)

    # -- lifecycle --------------------------------------------------------------------------------------------

    async def __aenter__(self) -> VideoSource:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a VideoSource can be started only once")
        loop = asyncio.get_running_loop()
        self._handover.bind(loop)
        self._opened = loop.create_future()
        opened = self._opened

        def on_open(result: SourceInfo | InputError) -> None:  # runs in the decoder thread
            def settle() -> None:
                if opened.done():
                    return
                if isinstance(result, SourceInfo):
                    self._info = result
                    opened.set_result(result)
                else:
                    opened.set_exception(result)

            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(settle)

        # Never leave the "exception was never retrieved" warning behind if nobody awaits ready().
        opened.add_done_callback(lambda fut: fut.exception() if not fut.cancelled() else None)
        self._worker = DecodeWorker(self.spec, self.settings, self._handover, self._recorder, self._clock, on_open)
        self._worker.size = self._size
        name = f"streameval-source:{self.spec.spec}"
        self._thread = threading.Thread(target=self._worker.run, name=name, daemon=True)
        self._thread.start()
        if not self.settings.live:
            try:
                await self.ready()
            except BaseException:
                await self.aclose()
                raise

    async def aclose(self) -> None:
        """Stop the decoder thread; waits briefly for it (a blocked network read ends within read_timeout)."""
        worker, thread = self._worker, self._thread
        if worker is None or thread is None:
            return
        worker.stop.set()
        self._handover.close()
        if thread.is_alive():
            # Join off the event loop; shielded so a cancelled close still lets the thread finish on its own.
            joiner = asyncio.ensure_future(asyncio.to_thread(thread.join, 2.0))
            try:
                await asyncio.shield(joiner)
            finally:
                if thread.is_alive():
                    log.info("%s: decoder thread still in a blocking read; it exits on its own", self.spec.spec)
        if self._recorder.snapshot().end_reason is None:
            self._recorder.set(end_reason="closed")

    # -- iteration ----------------------------------------------------------------------------------------------

    def __aiter__(self) -> VideoSource:
        return self

    async def __anext__(self) -> Frame:
        if self._thread is None:
            raise RuntimeError("the source is not started: use 'async with'")
        try:
            frame = await self._handover.get()
        except HandoverClosed:
            raise StopAsyncIteration from None
        self._recorder.add(frames_delivered=1)
        return frame


def open_source(
    spec: str,
    *,
    live: bool | None = None,
    realtime: bool = False,
    read_timeout: float = 10.0,
    reconnect: bool | None = None,
    max_backoff: float = 30.0,
    base_backoff: float = 0.5,
    max_retries: int | None = None,
    give_up_after: float | None = None,
    options: dict[str, str] | None = None,
    queue_size: int = 4,
    clock: Clock = SYSTEM_CLOCK,
    size: tuple[int, int] | None = None,
) -> VideoSource:
    """Describe a video source; decoding starts on ``async with``.

    ``spec``: a file path, a URL (rtsp, rtmp, http(s), udp, tcp, srt, ...), a V4L2 device (``/dev/videoN``) or
    ``-`` for a stream on stdin. ``live`` defaults to False for files and True otherwise: a live source drops
    the oldest queued frame when the consumer falls behind, a non-live one makes the decoder wait.
    ``realtime`` paces frames at their timestamps (rehearse live with a file). ``reconnect`` (default: on for
    live URLs and cameras) reopens the source after EOF, errors or stalls, with exponential backoff from
    ``base_backoff`` to ``max_backoff`` seconds, until ``max_retries`` consecutive failed attempts or
    ``give_up_after`` seconds without frames (both default: forever). ``read_timeout`` bounds opening and every
    read of a non-file source. ``options`` go to FFmpeg (demuxer/protocol options, e.g. ``rtsp_transport``).
    ``size`` (width, height) rescales every frame in the decoder thread, right after the RGB conversion (see
    also ``VideoSource.set_size``). Raises UsageError for bad arguments and InputError for a missing file.
    """
    try:
        parsed = parse_spec(spec)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    _check_positive("read_timeout", read_timeout)
    _check_positive("max_backoff", max_backoff)
    _check_positive("base_backoff", base_backoff)
    if give_up_after is not None:
        _check_positive("give_up_after", give_up_after)
    if max_retries is not None and max_retries < 0:
        raise UsageError(f"max_retries must be >= 0 or None, got {max_retries}")
    if queue_size < 1:
        raise UsageError(f"queue_size must be >= 1, got {queue_size}")
    if parsed.kind == "file" and not os.path.exists(parsed.target):
        raise InputError(f"{spec}: no such file")
    is_live = parsed.live if live is None else live
    settings = WorkerSettings(
        live=is_live,
        realtime=realtime,
        reconnect=(parsed.reconnect and is_live) if reconnect is None else reconnect,
        read_timeout=read_timeout,
        base_backoff=base_backoff,
        max_backoff=max_backoff,
        max_retries=max_retries,
        give_up_after=give_up_after,
        options=dict(options or {}),
        size=_check_size(size),
    )
    return VideoSource(parsed, settings, queue_size=queue_size, clock=clock)


def _check_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    ok = (
        isinstance(size, tuple | list)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    )
    if not ok:
        raise UsageError(f"size must be (width, height) in positive whole pixels, got {size!r}")
    return int(size[0]), int(size[1])


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise UsageError(f"{name} must be a positive number of seconds, got {value!r}")
