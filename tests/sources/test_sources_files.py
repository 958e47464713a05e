"""File sources: every generated codec/container decodes to the right frames, times and sizes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streameval.datasets import example_video
from streameval.frames import Frame
from streameval.sources import SourceStats, VideoSource, open_source
from tests.videos import CASES, VideoCase, decode_index, write_video

# Matroska/WebM store timestamps in milliseconds, so pts there are rounded to 1 ms; the others are exact.
PTS_TOLERANCE = 1e-3 + 1e-9


async def _read_all(source: VideoSource) -> tuple[list[Frame], SourceStats]:
    async with source:
        frames = [frame async for frame in source]
    return frames, source.stats


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    return {case.name: write_video(folder / case.filename, case) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_generated_video_decodes_exactly(case: VideoCase, videos: dict[str, Path]) -> None:
    source = open_source(str(videos[case.name]))
    frames, stats = asyncio.run(_read_all(source))

    assert len(frames) == case.frames
    assert [decode_index(f.image) for f in frames] == list(range(case.frames))  # frame identity from pixels
    assert [f.index for f in frames] == list(range(case.frames))
    for i, frame in enumerate(frames):
        assert frame.image.shape == (case.height, case.width, 3)
        assert frame.image.dtype.name == "uint8"
        assert frame.pts == pytest.approx(i / float(case.fps), abs=PTS_TOLERANCE)
    arrivals = [f.arrival for f in frames]
    assert arrivals == sorted(arrivals)
    assert stats.frames_decoded == stats.frames_delivered == case.frames
    assert stats.frames_dropped == 0
    assert stats.end_reason == "eof"
    info = source.info
    assert info is not None
    assert (info.width, info.height) == (case.width, case.height)
    assert info.fps == pytest.approx(float(case.fps), rel=1e-6)


def test_pts_rebased_to_first_frame_and_raw_offset_kept(videos: dict[str, Path]) -> None:
    # MPEG-TS timestamps start away from zero; Frame.pts starts at 0 and raw = pts + pts_offset.
    source = open_source(str(videos["mpeg2_ts_25"]))
    frames, stats = asyncio.run(_read_all(source))
    assert frames[0].pts == 0.0
    assert source.info is not None and source.info.start_time is not None
    assert stats.pts_offset == pytest.approx(source.info.start_time, abs=1e-6)
    assert stats.pts_offset is not None and stats.pts_offset > 0


def test_carphone_example_video() -> None:
    frames, stats = asyncio.run(_read_all(open_source(str(example_video("carphone_pristine")))))
    assert len(frames) == 120
    assert all(f.image.shape == (144, 176, 3) for f in frames)
    assert frames[-1].pts == pytest.approx(119 * 1001 / 30000, abs=1e-6)  # 29.97 fps
    assert stats.end_reason == "eof"


def test_slow_consumer_blocks_file_replay_without_loss(videos: dict[str, Path]) -> None:
    # A non-live source must not drop: the decoder waits on the bounded queue while the consumer sleeps.
    async def slow() -> tuple[list[int], SourceStats, int]:
        source = open_source(str(videos["h264_mp4_25"]), queue_size=2)
        seen: list[int] = []
        peak = 0
        async with source:
            async for frame in source:
                await asyncio.sleep(0.005)
                stats = source.stats
                peak = max(peak, stats.frames_decoded - stats.frames_delivered)
                seen.append(decode_index(frame.image))
        return seen, source.stats, peak

    seen, stats, peak = asyncio.run(slow())
    assert seen == list(range(30))
    assert stats.frames_dropped == 0
    # At most the queue plus the frame the decoder holds while it waits for room.
    assert peak <= 2 + 1


def test_close_early_stops_thread_and_marks_closed(videos: dict[str, Path]) -> None:
    async def first_three() -> tuple[list[int], VideoSource]:
        source = open_source(str(videos["mpeg4_avi_30"]), queue_size=1)
        got: list[int] = []
        async with source:
            async for frame in source:
                got.append(frame.index)
                if len(got) == 3:
                    break
        return got, source

    got, source = asyncio.run(first_three())
    assert got == [0, 1, 2]
    assert source.stats.end_reason == "closed"
    assert source._thread is not None and not source._thread.is_alive()


def test_cancellation_closes_source(videos: dict[str, Path]) -> None:
    async def cancelled() -> VideoSource:
        source = open_source(str(videos["h264_mp4_25"]), queue_size=1)

        async def consume() -> None:
            async with source:
                async for _frame in source:
                    await asyncio.sleep(10)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return source

    source = asyncio.run(cancelled())
    assert source._thread is not None and not source._thread.is_alive()
    assert source.stats.end_reason == "closed"


_PIPE_READER = """
import asyncio, sys
from streameval.sources import open_source
from tests.videos import decode_index

async def main():
    source = open_source("-", live=False)
    async with source:
        indices = [decode_index(frame.image) async for frame in source]
    print(source.spec.kind, source.stats.end_reason, indices)

asyncio.run(main())
"""


def test_stdin_pipe(videos: dict[str, Path]) -> None:
    # "-" reads a stream from stdin (here an MPEG-TS file piped into a child interpreter).
    root = Path(__file__).resolve().parents[2]
    with open(videos["mpeg2_ts_25"], "rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-c", _PIPE_READER],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"pipe eof {list(range(25))}"
