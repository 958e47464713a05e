"""De-identify a video file frame by frame: decode with PyAV, process, encode H.264 with the same timestamps.

Memory stays bounded (one decoded frame plus the codecs' own buffers). The output keeps every frame's
presentation time, so a time-paired evaluation lines the two videos up frame for frame; the encoder works in
the input's own time base, so variable frame rates and clips whose average rate disagrees with their
timestamps come out with the same times too. The output's extension picks its container (MP4, MOV, Matroska);
audio is dropped. The file is written under a temporary name and renamed when complete, so a crash never leaves
a half video under the final name, and the input itself is never a valid output.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import av.error
import av.video.stream
import numpy as np

from streameval.deidentify.methods import check_method, make_processor
from streameval.errors import InputError, SinkError, UsageError
from streameval.models.base import FaceDetector, Image, Landmarker

log = logging.getLogger(__name__)

#: output container by file extension: each carries H.264 with a timestamp per frame (AVI, for one, has only a
#: fixed frame rate, so it cannot keep the source's times)
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_GRID_TIME_BASE = Fraction(1, 90000)  # for inputs without a time base of their own


@dataclass(frozen=True, slots=True)
class DeidStats:
    """What :func:`deidentify_video` did."""

    method: str
    frames: int  # frames written (= frames decoded)
    face_frames: int  # frames in which at least one face was de-identified
    no_face_frames: int  # frames passed through unchanged because no face was found
    faces: int  # faces processed over all frames
    seconds: float  # wall time of the processing (detection, landmarks, the method), excluding the codecs
    fps: float | None  # the source's average frame rate

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / self.frames if self.frames else 0.0


def _open_input(src: Path) -> av.container.InputContainer:
    if not src.exists():
        raise InputError(f"{src}: no such file")
    if src.is_dir():
        raise InputError(f"{src}: is a directory, not a video")
    try:
        container = av.open(str(src), mode="r")
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"{src}: not a readable video: {exc}") from exc
    if not isinstance(container, av.container.InputContainer) or not container.streams.video:
        container.close()
        raise InputError(f"{src}: no video stream")
    if _is_image_format(container.format.name):
        container.close()
        raise InputError(f"{src}: is a still image, not a video; de-identify a video file")
    return container


def _is_image_format(names: str) -> bool:
    """FFmpeg's demuxers for single images: ``image2`` (by extension) and the ``*_pipe`` probes (png_pipe...)."""
    return any(name == "image2" or name.endswith("_pipe") for name in names.split(","))


def output_format(dst: Path) -> str:
    """The container for ``dst``'s extension; UsageError for one we do not write (never a mislabelled file)."""
    fmt = CONTAINERS.get(dst.suffix.lower())
    if fmt is None:
        given = f"'{dst.suffix}' is not one streameval writes" if dst.suffix else "it has none"
        raise UsageError(f"{dst}: the output's extension picks its container and {given}; use {', '.join(CONTAINERS)}")
    return fmt


def _check_output(dst: Path, src: Path) -> None:
    from streameval.outputs import check_output

    parent = dst.parent if str(dst.parent) else Path(".")
    if not parent.is_dir():
        raise SinkError(f"{dst}: output directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SinkError(f"{dst}: output directory {parent} is not writable")
    if dst.is_dir():
        raise SinkError(f"{dst}: is a directory")
    # the shared output rules: never the input (under any name), never a device or FIFO (exit 2)
    check_output("DST", str(dst), [("input video", str(src))])


def _even(image: Image) -> Image:
    """Pad odd widths/heights by repeating the last column/row: H.264 in yuv420p needs even dimensions."""
    h, w = image.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return image
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def deidentify_video(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    method: str,
    *,
    detector: FaceDetector | None = None,
    landmarker: Landmarker | None = None,
    crf: int = 18,
    **options: Any,
) -> DeidStats:
    """Write the de-identified version of video ``src`` to ``dst`` (H.264, yuv420p, in the container its extension
    names: see :data:`CONTAINERS`) with ``method``.

    ``method`` is 'blur', 'pixelate', 'mask' or 'swap'; ``options`` are the method's own (see
    :data:`streameval.deidentify.methods.OPTIONS`). ``detector``/``landmarker`` default to the zoo's models.
    Frames without a face are written unchanged and counted in :attr:`DeidStats.no_face_frames`.
    """
    src_path, dst_path = Path(src), Path(dst)
    check_method(method, options)
    _check_output(dst_path, src_path)
    fmt = output_format(dst_path)
    with _open_input(src_path) as inp:
        if detector is None or (method == "swap" and landmarker is None):
            from streameval.models.loaders import load_detector, load_landmarker

            detector = detector or load_detector()
            if method == "swap":
                landmarker = landmarker or load_landmarker()
        process = make_processor(method, options, detector, landmarker)
        tmp = dst_path.with_name(f".{dst_path.name}.partial{dst_path.suffix}")
        try:
            stats = _transcode(inp, tmp, fmt, process, method, crf, src_path, dst_path)
            os.replace(tmp, dst_path)
        except OSError as exc:
            raise SinkError(f"{dst_path}: cannot write: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
    log.info(
        "%s: %d frames (%d with a face, %d without) in %.1f s, %.1f ms/frame",
        dst_path,
        stats.frames,
        stats.face_frames,
        stats.no_face_frames,
        stats.seconds,
        stats.ms_per_frame,
    )
    return stats


def _transcode(
    inp: av.container.InputContainer,
    tmp: Path,
    fmt: str,
    process: Any,
    method: str,
    crf: int,
    src: Path,
    dst: Path,
) -> DeidStats:
    vin = inp.streams.video[0]
    rate = vin.average_rate or vin.guessed_rate or Fraction(25)
    # The encoder counts time in the input's own units: in 1/rate units (PyAV's default) frames of a variable
    # rate, or of a clip whose average rate disagrees with its timestamps, round onto the same tick and the
    # muxer refuses them (EINVAL).
    time_base = vin.time_base or _GRID_TIME_BASE
    frames = face_frames = faces = 0
    busy = 0.0
    last_pts: int | None = None
    try:
        out = av.open(str(tmp), mode="w", format=fmt)
    except (av.error.FFmpegError, OSError) as exc:
        raise SinkError(f"{dst}: cannot create: {exc}") from exc
    with out:
        vout: av.video.stream.VideoStream | None = None
        try:
            for frame in inp.decode(vin):
                image = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                t0 = time.perf_counter()
                result = process(image)
                busy += time.perf_counter() - t0
                frames += 1
                faces += result.faces
                face_frames += result.faces > 0
                picture = _even(result.image)
                if vout is None:
                    vout = out.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": "medium"})
                    vout.width, vout.height = picture.shape[1], picture.shape[0]
                    vout.pix_fmt = "yuv420p"
                    vout.codec_context.time_base = time_base
                    vout.time_base = time_base
                    if picture.shape != image.shape:
                        log.warning(
                            "%s: odd frame size %dx%d padded to %dx%d for H.264",
                            src,
                            image.shape[1],
                            image.shape[0],
                            picture.shape[1],
                            picture.shape[0],
                        )
                new = av.VideoFrame.from_ndarray(picture, format="rgb24")
                # Keep the source's presentation times; a stream without them gets a regular grid.
                pts = frame.pts if frame.pts is not None else round((frames - 1) / (rate * time_base))
                if last_pts is not None and pts <= last_pts:
                    raise InputError(
                        f"{src}: frame {frames} is at {float(pts * time_base):.3f} s, not after the previous frame "
                        f"({float(last_pts * time_base):.3f} s); timestamps that repeat or go back cannot be kept"
                    )
                last_pts = new.pts = pts
                new.time_base = time_base
                for packet in vout.encode(new):
                    out.mux(packet)
            if vout is not None:
                for packet in vout.encode():
                    out.mux(packet)
        except av.error.InvalidDataError as exc:
            raise InputError(f"{src}: corrupt or truncated video after {frames} frame(s): {exc}") from exc
    if frames == 0:
        raise InputError(f"{src}: no decodable video frames")
    if frames == 1 and inp.format.name == "gif":  # a GIF is a video only when it is animated
        raise InputError(f"{src}: is a still image, not a video; de-identify a video file")
    return DeidStats(
        method=method,
        frames=frames,
        face_frames=face_frames,
        no_face_frames=frames - face_frames,
        faces=faces,
        seconds=busy,
        fps=float(rate) if rate else None,
    )
