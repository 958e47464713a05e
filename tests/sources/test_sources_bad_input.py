"""Bad inputs end in a one-line InputError, or in stats that say what went wrong; never a crash or a hang."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from streameval.errors import InputError, UsageError
from streameval.frames import Frame
from streameval.sources import SourceStats, open_source
from tests.videos import CASES, decode_index, write_audio_only, write_video, write_zero_frames

H264 = next(c for c in CASES if c.name == "h264_mp4_25")
MPEG2_TS = next(c for c in CASES if c.name == "mpeg2_ts_25")


async def _read(path: Path) -> tuple[list[Frame], SourceStats]:
    source = open_source(str(path))
    async with source:
        frames = [frame async for frame in source]
    return frames, source.stats


def _one_line_error(path: Path) -> str:
    with pytest.raises(InputError) as info:
        asyncio.run(_read(path))
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_file_raises_at_open(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        open_source(str(tmp_path / "nope.mp4"))


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(random.Random(0).randbytes(5000))
    assert "not a readable video" in _one_line_error(path)


def test_directory_is_not_a_video(tmp_path: Path) -> None:
    assert "directory" in _one_line_error(tmp_path)


def test_audio_only_file(tmp_path: Path) -> None:
    assert "no video stream" in _one_line_error(write_audio_only(tmp_path / "tone.wav"))


def test_zero_frame_file(tmp_path: Path) -> None:
    assert "no video frames" in _one_line_error(write_zero_frames(tmp_path / "empty.avi"))


def test_mp4_truncated_before_its_index_is_unreadable(tmp_path: Path) -> None:
    # A plain MP4 writes its index (moov) last: cut it off and nothing can be decoded.
    full = write_video(tmp_path / "plain.mp4", H264).read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(full[: len(full) * 6 // 10])
    assert "not a readable video" in _one_line_error(path)


def test_faststart_mp4_truncated_decodes_a_prefix_and_says_so(tmp_path: Path) -> None:
    full = write_video(tmp_path / "fs.mp4", H264, container_options={"movflags": "+faststart"}).read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(full[: len(full) * 6 // 10])
    frames, stats = asyncio.run(_read(path))
    assert 0 < len(frames) < H264.frames
    assert [decode_index(f.image) for f in frames] == list(range(len(frames)))  # what is there is right
    assert stats.end_reason == "truncated"


def test_corrupted_transport_stream_is_decoded_around_the_damage(tmp_path: Path) -> None:
    data = bytearray(write_video(tmp_path / "a.ts", MPEG2_TS).read_bytes())
    rng = random.Random(1)
    start = len(data) // 3
    data[start : start + 3000] = rng.randbytes(3000)
    path = tmp_path / "damaged.ts"
    path.write_bytes(bytes(data))
    frames, stats = asyncio.run(_read(path))
    indices = [decode_index(f.image) for f in frames]
    assert 0 < len(frames) < MPEG2_TS.frames
    assert indices[:3] == [0, 1, 2] and indices[-1] == MPEG2_TS.frames - 1  # both sides of the damage
    assert stats.errors >= 1  # the demuxer flagged the damaged packets
    assert stats.end_reason == "eof"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"read_timeout": 0}, "read_timeout"),
        ({"max_backoff": -1.0}, "max_backoff"),
        ({"max_retries": -2}, "max_retries"),
        ({"queue_size": 0}, "queue_size"),
        ({"give_up_after": float("nan")}, "give_up_after"),
    ],
)
def test_bad_arguments_are_usage_errors(kwargs: dict[str, float], message: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=message):
        open_source("udp://127.0.0.1:9", **kwargs)  # type: ignore[arg-type]


def test_unsupported_scheme_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="gopher"):
        open_source("gopher://example.org/video")
