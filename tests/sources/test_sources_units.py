"""Pure parts of the sources package, against hand-computed values; pacing with a controllable clock."""

from __future__ import annotations

import asyncio
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest

from streameval.frames import Frame
from streameval.sources import open_source, parse_spec
from streameval.sources.handover import Handover, HandoverClosed
from streameval.sources.timeline import Timeline, backoff_delay, continued_offset, pacing_delay
from tests.sources.fakes import FakeClock
from tests.videos import VideoCase, decode_index, write_video


@pytest.mark.parametrize(
    ("spec", "kind", "target", "fmt", "live", "reconnect"),
    [
        ("clip.mp4", "file", "clip.mp4", None, False, False),
        ("file:///data/clip.mkv", "file", "/data/clip.mkv", None, False, False),
        ("rtsp://cam.local/stream", "url", "rtsp://cam.local/stream", None, True, True),
        ("SRT://10.0.0.1:9000", "url", "SRT://10.0.0.1:9000", None, True, True),
        ("udp://127.0.0.1:5000", "url", "udp://127.0.0.1:5000", None, True, True),
        ("/dev/video0", "device", "/dev/video0", "v4l2", True, True),
        ("-", "pipe", "pipe:0", None, True, False),
    ],
)
def test_parse_spec(spec: str, kind: str, target: str, fmt: str | None, live: bool, reconnect: bool) -> None:
    parsed = parse_spec(spec)
    assert (parsed.kind, parsed.target, parsed.format, parsed.live, parsed.reconnect) == (
        kind,
        target,
        fmt,
        live,
        reconnect,
    )


def test_backoff_doubles_then_caps() -> None:
    assert [backoff_delay(a, base=0.5, maximum=5.0) for a in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff_delay(500, base=0.5, maximum=30.0) == 30.0
    with pytest.raises(ValueError):
        backoff_delay(-1, base=0.5, maximum=1.0)


def test_pacing_delay() -> None:
    assert pacing_delay(2.0, anchor_pts=0.5, anchor_wall=100.0, now=100.5) == pytest.approx(1.0)
    assert pacing_delay(0.5, anchor_pts=0.5, anchor_wall=100.0, now=100.25) == pytest.approx(-0.25)


def test_continued_offset_advances_by_wall_time() -> None:
    # Last frame at stream time 3.0; 2.5 s later a new connection starts at raw pts 7.0 -> its pts is 5.5.
    offset = continued_offset(7.0, last_pts=3.0, elapsed=2.5, frame_interval=0.04)
    assert 7.0 - offset == pytest.approx(5.5)
    # A reconnect faster than one frame still moves time forward by one frame.
    assert 7.0 - continued_offset(7.0, last_pts=3.0, elapsed=0.001, frame_interval=0.04) == pytest.approx(3.04)


def test_timeline_file_rebases_and_fills_missing_pts() -> None:
    timeline = Timeline(25.0, max_jump=None)
    assert [timeline.map(raw, 0.0) for raw in (1.4, 1.44, None, 1.52)] == pytest.approx([0.0, 0.04, 0.08, 0.12])
    assert timeline.offset == pytest.approx(1.4)
    fresh = Timeline(25.0, max_jump=None)
    assert [fresh.map(None, 0.0) for _ in range(3)] == pytest.approx([0.0, 0.04, 0.08])  # index / fps


def test_timeline_live_segments_and_jumps() -> None:
    timeline = Timeline(25.0, max_jump=2.0)
    assert timeline.map(10.0, wall=50.0) == 0.0
    assert timeline.map(10.04, wall=50.04) == pytest.approx(0.04)
    timeline.new_segment()  # reconnect after 3 s; the sender restarted its clock at 0.5
    assert timeline.map(0.5, wall=53.04) == pytest.approx(3.04)
    assert timeline.map(0.54, wall=53.08) == pytest.approx(3.08)
    # A raw jump of 100 s within a segment (wrap or sender restart) re-anchors on wall time too.
    assert timeline.map(100.58, wall=53.12) == pytest.approx(3.12)
    assert timeline.map(100.62, wall=53.16) == pytest.approx(3.16)


def test_handover_drop_oldest_counts_and_keeps_newest() -> None:
    dropped: list[int] = []

    async def main() -> list[int]:
        handover: Handover[int] = Handover(3, drop_oldest=True, on_drop=dropped.append)
        handover.bind(asyncio.get_running_loop())
        for item in range(8):
            assert handover.put(item)
        assert len(handover) == 3
        handover.finish()
        got = []
        try:
            while True:
                got.append(await handover.get())
        except HandoverClosed:
            return got

    assert asyncio.run(main()) == [5, 6, 7]
    assert dropped == [0, 1, 2, 3, 4]


def test_handover_block_waits_for_consumer_and_close_releases_producer() -> None:
    async def main() -> tuple[list[bool], list[int]]:
        handover: Handover[int] = Handover(2, drop_oldest=False)
        handover.bind(asyncio.get_running_loop())
        results: list[bool] = []
        producer = threading.Thread(target=lambda: results.extend(handover.put(i) for i in range(6)))
        producer.start()
        got = [await handover.get(), await handover.get(), await handover.get()]
        await asyncio.sleep(0.05)
        assert len(handover) == 2  # blocked producer: the queue is full, nothing was dropped
        handover.close()
        await asyncio.to_thread(producer.join, 2.0)
        assert not producer.is_alive()
        return results, got

    results, got = asyncio.run(main())
    assert got == [0, 1, 2]
    assert results == [True] * 5 + [False]  # item 5 was waiting for room when the consumer closed


CASE = VideoCase("pace", ".mp4", "libx264", "yuv420p", Fraction(25), 160, 120, 12, (("preset", "ultrafast"),))


async def _read(path: Path, **kwargs: object) -> list[Frame]:
    source = open_source(str(path), **kwargs)  # type: ignore[arg-type]
    async with source:
        return [frame async for frame in source]


def test_realtime_pacing_with_fake_clock(tmp_path: Path) -> None:
    clock = FakeClock(start=500.0)
    frames = asyncio.run(_read(write_video(tmp_path / "p.mp4", CASE), realtime=True, clock=clock))
    assert [decode_index(f.image) for f in frames] == list(range(12))
    # Each frame is released exactly at anchor + pts on the (fake) monotonic clock.
    assert [f.arrival - frames[0].arrival for f in frames] == pytest.approx([f.pts for f in frames], abs=1e-9)
    assert frames[0].arrival == 500.0
    assert sum(clock.waits) == pytest.approx(11 / 25)


def test_fast_replay_never_waits(tmp_path: Path) -> None:
    clock = FakeClock()
    frames = asyncio.run(_read(write_video(tmp_path / "p.mp4", CASE), clock=clock))
    assert len(frames) == 12 and clock.waits == []


def test_realtime_pacing_real_clock_short(tmp_path: Path) -> None:
    # 12 frames at 25 fps: the last frame comes 0.44 s after the first (tolerance 0.1 s for a loaded machine).
    path = write_video(tmp_path / "p.mp4", CASE)
    start = time.monotonic()
    frames = asyncio.run(_read(path, realtime=True))
    elapsed = time.monotonic() - start
    assert frames[-1].arrival - frames[0].arrival == pytest.approx(11 / 25, abs=0.1)
    assert elapsed >= 11 / 25
