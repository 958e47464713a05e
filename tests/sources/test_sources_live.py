"""Live sources over loopback sockets: frames arrive, outages reconnect and are counted, nothing hangs."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time

import pytest

from streameval.errors import InputError
from streameval.frames import Frame
from streameval.sources import SourceStats, VideoSource, open_source
from tests.sources.fakes import TcpServer, UdpSender, free_port
from tests.videos import decode_index, mpegts_bytes

FPS = 25


async def _collect(source: VideoSource, *, delay: float = 0.0, limit: float = 30.0) -> tuple[list[Frame], int]:
    """All frames until the source ends (bounded by ``limit`` seconds); also the largest queue length seen."""
    frames: list[Frame] = []
    peak = 0

    async def run() -> None:
        nonlocal peak
        async with source:
            async for frame in source:
                frames.append(frame)
                peak = max(peak, len(source._handover))
                if delay:
                    await asyncio.sleep(delay)

    await asyncio.wait_for(run(), limit)
    return frames, peak


def test_udp_stream_then_sender_stops_counts_stall_and_gives_up() -> None:
    port = free_port(socket.SOCK_DGRAM)
    sender = UdpSender(port, [(mpegts_bytes(25, fps=FPS), 1.0, 0.0)])
    source = open_source(f"udp://127.0.0.1:{port}", read_timeout=1.0, base_backoff=0.05, max_backoff=0.1, max_retries=2)

    async def main() -> tuple[list[Frame], float]:
        task = asyncio.create_task(_collect(source, limit=20))
        await asyncio.sleep(0.1)  # let the receiver bind before the first datagram
        sender.start()
        frames, _ = await task
        return frames, time.monotonic()

    start = time.monotonic()
    try:
        frames, end = asyncio.run(main())
    finally:
        sender.close()
    stats = source.stats
    assert source.live and source.info is not None and source.info.codec == "mpeg2video"
    # The decoder syncs on the first keyframe (GOP 5) so a few leading frames may be lost, none after.
    # A slow wake-up of the consumer may cost counted drops (live policy), but no frame goes missing unseen.
    indices = [decode_index(f.image) for f in frames]
    assert len(frames) >= 10
    first_decoded = indices[-1] - stats.frames_decoded + 1
    assert first_decoded >= 0 and indices == sorted(set(indices)) and indices[0] >= first_decoded
    assert stats.frames_decoded == len(frames) + stats.frames_dropped
    assert [round(f.pts * FPS) for f in frames] == [i - first_decoded for i in indices]
    assert stats.stalls >= 1  # the silent socket timed out instead of hanging
    assert stats.reconnects == 2  # max_retries reopen attempts after the stall, then it gives up
    assert stats.end_reason == "gave_up"
    assert end - start < 10.0


def test_tcp_reconnects_after_eof_with_continuous_pts() -> None:
    # Connection 1 carries frames 0..19, connection 2 frames 100..119; then the server refuses connections.
    server = TcpServer([(mpegts_bytes(20, fps=FPS), 0.8), (mpegts_bytes(20, fps=FPS, first=100), 0.8)]).start()
    source = open_source(
        f"tcp://127.0.0.1:{server.port}", read_timeout=1.0, base_backoff=0.3, max_backoff=0.3, max_retries=2
    )
    try:
        frames, _ = asyncio.run(_collect(source, limit=20))
    finally:
        server.close()
    stats = source.stats
    indices = [decode_index(f.image) for f in frames]
    first = [i for i in indices if i < 100]
    second = [i for i in indices if i >= 100]
    assert first == list(range(20)) and second == list(range(100, 120))  # TCP loses nothing
    assert [f.index for f in frames] == list(range(40))
    assert stats.gaps == 1
    # Outage = rest of connection 1's pacing + backoff + connect + probing: at least the 0.3 s backoff.
    assert 0.3 <= stats.gap_seconds < 3.0
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in itertools.pairwise(pts))  # stream time never goes backwards
    jump = pts[20] - pts[19]
    arrival_gap = frames[20].arrival - frames[19].arrival
    # Across the reconnect, stream time advances by the wall time that passed (stated tolerance 0.1 s).
    assert jump == pytest.approx(arrival_gap, abs=0.1)
    assert stats.reconnects >= 2 and stats.end_reason == "gave_up"


def test_slow_consumer_of_live_stream_drops_oldest_and_stays_bounded() -> None:
    port = free_port(socket.SOCK_DGRAM)
    sender = UdpSender(port, [(mpegts_bytes(40, fps=FPS), 1.6, 0.0)])
    source = open_source(f"udp://127.0.0.1:{port}", read_timeout=1.0, queue_size=3, max_retries=0)

    async def main() -> tuple[list[Frame], int]:
        task = asyncio.create_task(_collect(source, delay=0.2, limit=20))
        await asyncio.sleep(0.1)
        sender.start()
        return await task

    try:
        frames, peak = asyncio.run(main())
    finally:
        sender.close()
    stats = source.stats
    assert peak <= 3  # the hand-over queue never grows beyond its size
    assert stats.frames_dropped > 0
    assert stats.frames_decoded == stats.frames_delivered + stats.frames_dropped
    assert len(frames) == stats.frames_delivered
    # The consumer saw frames in order, skipping the dropped ones.
    indices = [decode_index(f.image) for f in frames]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert indices[-1] - indices[0] + 1 > len(frames)


def test_close_returns_promptly_while_a_live_read_is_blocked() -> None:
    port = free_port(socket.SOCK_DGRAM)  # nobody sends: the open blocks in FFmpeg's probe
    source = open_source(f"udp://127.0.0.1:{port}", read_timeout=1.5)

    async def main() -> float:
        async with source:
            assert source.info is None  # live: entering does not wait for the connection
            await asyncio.sleep(0.2)
            start = time.monotonic()
        return time.monotonic() - start

    closing = asyncio.run(main())
    assert closing < 2.5
    thread = source._thread
    assert thread is not None
    thread.join(3.0)  # the blocked read ends within read_timeout, then the thread releases the container
    assert not thread.is_alive()
    assert source.stats.end_reason == "closed"


def test_unreachable_url_in_replay_mode_is_an_input_error() -> None:
    port = free_port(socket.SOCK_STREAM)  # nothing listens there

    async def main() -> None:
        async with open_source(f"tcp://127.0.0.1:{port}", live=False, read_timeout=2.0):
            pass

    with pytest.raises(InputError, match="cannot open"):
        asyncio.run(main())


def test_unreachable_url_in_live_mode_retries_then_raises() -> None:
    port = free_port(socket.SOCK_STREAM)
    source = open_source(f"tcp://127.0.0.1:{port}", read_timeout=1.0, base_backoff=0.05, max_retries=3)
    with pytest.raises(InputError, match="no video frames"):
        asyncio.run(_collect(source, limit=10))
    stats: SourceStats = source.stats
    assert stats.reconnects == 3 and stats.errors == 4
    assert stats.end_reason == "gave_up"


def test_give_up_after_bounds_retry_time() -> None:
    port = free_port(socket.SOCK_STREAM)  # refused at once: only the backoff waits take time
    source = open_source(f"tcp://127.0.0.1:{port}", base_backoff=0.1, max_backoff=0.1, give_up_after=0.5)
    start = time.monotonic()
    with pytest.raises(InputError, match="no video frames"):
        asyncio.run(_collect(source, limit=10))
    elapsed = time.monotonic() - start
    assert 0.5 <= elapsed < 3.0
    # Attempts at t = 0, 0.1, 0.2, ... until 0.5 s have passed: about five reopen attempts.
    assert 3 <= source.stats.reconnects <= 6 and source.stats.end_reason == "gave_up"
