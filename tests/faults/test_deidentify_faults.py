"""Issue 10, case 17: `streameval deidentify` on variable frame rates, odd average rates, still images, output
names whose extension is not the container, and an output that is the input.

Fixtures are written here with PyAV: irregular presentation times (VFR), a 30 fps clip with a 3 s gap (its
average rate, 7.5, disagrees with its timestamps), concatenated MPEG-TS segments (timestamps going back) and
still images. The frames hold no face, so no model runs on them beyond the detector.
"""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import av.video.stream
import numpy as np
import pytest

from tests.videos import index_image, mpegts_bytes

VFR_TIMES_MS = (0, 33, 50, 120, 140, 300, 310, 330, 500, 520, 560, 700)


def write_timed(path: Path, pts: list[int], time_base: Fraction, rate: Fraction | None = None) -> Path:
    """H.264 frames at exactly ``pts`` (in ``time_base``): the encoder counts in that unit, so nothing rounds."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
        for i, t in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(index_image(i, 160, 120), format="rgb24")
            frame.pts, frame.time_base = t, time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def times(path: Path) -> tuple[str, list[float]]:
    """Container format name and every frame's presentation time in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        out = []
        for frame in container.decode(stream):
            assert frame.pts is not None and frame.time_base is not None
            out.append(float(frame.pts * frame.time_base))
        return container.format.name, out


def deidentify(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streameval", "deidentify", *map(str, args), "--method", "blur"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=dict(os.environ),
    )


def one_line(run: subprocess.CompletedProcess[str]) -> str:
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    return lines[0]


@pytest.fixture()
def vfr(tmp_path: Path) -> Path:
    return write_timed(tmp_path / "vfr.mp4", list(VFR_TIMES_MS), Fraction(1, 1000))


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_variable_frame_rate_keeps_every_timestamp(models_dir: Path, vfr: Path, tmp_path: Path, suffix: str) -> None:
    dst = tmp_path / f"out{suffix}"
    run = deidentify(vfr, dst)
    assert run.returncode == 0, run.stderr
    assert "12 frames" in run.stdout
    fmt, got = times(dst)
    assert {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}[suffix] in fmt.split(",")
    np.testing.assert_allclose(got, [t / 1000 for t in VFR_TIMES_MS], atol=1e-6)


def test_average_rate_that_disagrees_with_the_timestamps(models_dir: Path, tmp_path: Path) -> None:
    base = Fraction(1, 15360)
    pts = [i * 512 for i in range(20)] + [round((3 + i / 30) / base) for i in range(20, 30)]
    src = write_timed(tmp_path / "gap.mp4", pts, base, rate=Fraction(30))
    with av.open(str(src)) as container:
        assert container.streams.video[0].average_rate == Fraction(15, 2)  # 30 frames over 4 s, yet 30 fps
    run = deidentify(src, tmp_path / "out.mp4")
    assert run.returncode == 0, run.stderr
    np.testing.assert_allclose(times(tmp_path / "out.mp4")[1], times(src)[1], atol=1e-6)


def test_timestamps_going_back_are_an_input_error(models_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "concat.ts"
    src.write_bytes(mpegts_bytes(10) + mpegts_bytes(10))  # the second segment starts at 0 again
    run = deidentify(src, tmp_path / "out.mp4")
    assert run.returncode == 3
    assert "not after the previous frame" in one_line(run)
    assert not list(tmp_path.glob("*out.mp4*"))


@pytest.mark.parametrize("name", ["o.avi", "o.webm", "o.MP4.txt", "noextension"])
def test_output_extension_must_name_a_container_we_write(vfr: Path, tmp_path: Path, name: str) -> None:
    run = deidentify(vfr, tmp_path / name)
    assert run.returncode == 2
    line = one_line(run)
    assert "extension picks its container" in line and ".mp4, .m4v, .mov, .mkv" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vfr.mp4"]


def test_upper_case_extension_is_accepted(models_dir: Path, vfr: Path, tmp_path: Path) -> None:
    run = deidentify(vfr, tmp_path / "OUT.MKV")
    assert run.returncode == 0, run.stderr
    assert "matroska" in times(tmp_path / "OUT.MKV")[0]


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_still_image_is_an_input_error(tmp_path: Path, suffix: str) -> None:
    image = tmp_path / f"portrait{suffix}"
    with av.open(str(image), mode="w") as container:  # image2 writer: one picture
        stream = container.add_stream("png" if suffix == ".png" else "mjpeg")
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height = 160, 120
        stream.pix_fmt = "rgb24" if suffix == ".png" else "yuvj420p"
        frame = av.VideoFrame.from_ndarray(index_image(1, 160, 120), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    run = deidentify(image, tmp_path / "out.mp4")
    assert run.returncode == 3
    assert "is a still image, not a video" in one_line(run)
    assert not list(tmp_path.glob("*out.mp4*"))


def test_output_that_is_the_input_is_refused_before_anything_is_written(vfr: Path, tmp_path: Path) -> None:
    before = vfr.read_bytes()
    link = tmp_path / "link.mp4"
    os.link(vfr, link)
    spellings = [vfr, tmp_path / "." / "sub" / ".." / "vfr.mp4", link]
    (tmp_path / "sub").mkdir()
    for dst in spellings:
        run = deidentify(vfr, dst)
        assert run.returncode == 2
        assert "is the input video" in one_line(run)
    assert vfr.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.mp4", "sub", "vfr.mp4"]
