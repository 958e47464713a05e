"""Generate small test videos with PyAV whose pixels encode the frame index.

Each frame is mid-grey with a row of ``BITS`` blocks of ``BLOCK`` pixels at the top-left; block ``b`` is white
when bit ``b`` of the frame index is set, else black. 16-pixel blocks aligned to the codec macroblocks survive
every lossy codec used here, so ``decode_index`` recovers the index exactly from a decoded frame. A diagonal
gradient below the code row changes with the index too, so encoders never see static content.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.video.stream
import numpy as np
import numpy.typing as npt

BLOCK = 16
BITS = 10  # indices up to 1023; frames must be at least BITS * BLOCK = 160 px wide


@dataclass(frozen=True)
class VideoCase:
    """One codec/container combination to generate."""

    name: str
    suffix: str
    codec: str
    pix_fmt: str
    fps: Fraction
    width: int = 160
    height: int = 120
    frames: int = 30
    options: tuple[tuple[str, str], ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.name}{self.suffix}"


NTSC = Fraction(30000, 1001)

CASES: tuple[VideoCase, ...] = (
    VideoCase("h264_mp4_25", ".mp4", "libx264", "yuv420p", Fraction(25), 160, 120, 30, (("preset", "ultrafast"),)),
    VideoCase("h264_mp4_ntsc", ".mp4", "libx264", "yuv420p", NTSC, 176, 144, 24, (("preset", "ultrafast"),)),
    VideoCase("mpeg4_avi_30", ".avi", "mpeg4", "yuv420p", Fraction(30), 320, 240, 20),
    VideoCase("vp9_webm_25", ".webm", "libvpx-vp9", "yuv420p", Fraction(25), 160, 128, 12, (("cpu-used", "8"),)),
    VideoCase("vp8_webm_30", ".webm", "libvpx", "yuv420p", Fraction(30), 192, 144, 12),
    VideoCase("mjpeg_mkv_ntsc", ".mkv", "mjpeg", "yuvj420p", NTSC, 160, 120, 20),
    VideoCase("mpeg2_ts_25", ".ts", "mpeg2video", "yuv420p", Fraction(25), 192, 112, 25),
)


def index_image(index: int, width: int, height: int) -> npt.NDArray[np.uint8]:
    """RGB frame whose top code row encodes ``index`` (see module docstring)."""
    if width < BITS * BLOCK or height < 2 * BLOCK:
        raise ValueError(f"frame {width}x{height} too small for the index code")
    if not 0 <= index < 2**BITS:
        raise ValueError(f"index {index} does not fit in {BITS} bits")
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.empty((height, width, 3), np.uint8)
    image[...] = ((xx + yy + 4 * index) % 128 + 64).astype(np.uint8)[..., None]
    image[:BLOCK] = 128
    for bit in range(BITS):
        value = 235 if (index >> bit) & 1 else 20
        image[:BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = value
    return image


def decode_index(image: npt.NDArray[np.uint8]) -> int:
    """Read the index back from the centre 8x8 pixels of each code block."""
    index = 0
    lo, hi = BLOCK // 4, BLOCK - BLOCK // 4
    for bit in range(BITS):
        block = image[lo:hi, bit * BLOCK + lo : bit * BLOCK + hi]
        if float(block.mean()) > 128.0:
            index |= 1 << bit
    return index


def _encode(container: av.container.OutputContainer, case: VideoCase, first: int = 0, gop: int | None = None) -> None:
    stream = container.add_stream(case.codec, rate=case.fps, options=dict(case.options))
    assert isinstance(stream, av.video.stream.VideoStream)
    stream.width = case.width
    stream.height = case.height
    stream.pix_fmt = case.pix_fmt
    if gop is not None:
        stream.codec_context.gop_size = gop
    for i in range(first, first + case.frames):
        frame = av.VideoFrame.from_ndarray(index_image(i, case.width, case.height), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_video(path: Path, case: VideoCase, *, container_options: dict[str, str] | None = None) -> Path:
    """Write ``case`` to ``path``; frame ``i`` encodes index ``i`` and has pts ``i / fps``."""
    with av.open(str(path), mode="w", options=container_options or {}) as container:
        _encode(container, case)
    return path


def mpegts_bytes(frames: int, *, fps: int = 25, width: int = 160, height: int = 112, first: int = 0) -> bytes:
    """An MPEG-TS (mpeg2video, GOP of 5) held in memory, for streaming over a socket."""
    case = VideoCase("live", ".ts", "mpeg2video", "yuv420p", Fraction(fps), width, height, frames)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mpegts") as container:
        _encode(container, case, first=first, gop=5)
    return buffer.getvalue()


def write_audio_only(path: Path, seconds: float = 0.5) -> Path:
    """A WAV file with a 440 Hz tone and no video stream."""
    rate = 16000
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate)
        t = np.arange(int(rate * seconds)) / rate
        samples = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_zero_frames(path: Path) -> Path:
    """A container (format from the suffix) with a declared video stream that holds no frame at all."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = 160
        stream.height = 120
        stream.pix_fmt = "yuv420p"
        container.start_encoding()  # write the header even though no packet follows
    return path


def decode_rgb(path: Path, limit: int | None = None) -> list[npt.NDArray[np.uint8]]:
    """The first ``limit`` (default all) frames of a video as RGB arrays."""
    frames: list[npt.NDArray[np.uint8]] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
            if limit is not None and len(frames) >= limit:
                break
    return frames


def write_shown(
    path: Path, shown: list[tuple[int, float]], *, fps: int = 25, width: int = 160, height: int = 120
) -> Path:
    """An H.264 video whose frames show content ``index`` at time ``t`` seconds, for each ``(index, t)``.

    Times may have gaps (dropped frames) or another rate than ``fps`` (the nominal rate written in the header).
    """
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps), options={"preset": "ultrafast"})
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for index, t in shown:
            frame = av.VideoFrame.from_ndarray(index_image(index, width, height), format="rgb24")
            frame.pts = round(t * 1000)
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
