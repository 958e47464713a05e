"""Fixtures of the end-to-end face tests: the built zoo (incl. I3D) and generated videos."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from streameval.datasets import example_video
from tests.videos import decode_rgb

Frames = list[npt.NDArray[np.uint8]]


@pytest.fixture(scope="session")
def zoo_ready(models_dir: Path) -> Path:
    return models_dir


decode = decode_rgb


def write_video(path: Path, frames: Frames, fps: int = 30) -> Path:
    """Near-lossless H.264 (qp 0, yuv444p) so detection sees the frames as given."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv444p"
        stream.options = {"qp": "0", "preset": "ultrafast"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def blank(like: npt.NDArray[np.uint8], n: int) -> Frames:
    """Face-free frames: a smooth grey gradient that varies over time (so encoders see motion)."""
    h, w = like.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    return [np.repeat(((60 + (xx + yy + 3 * i) % 120)[..., None]).astype(np.uint8), 3, axis=2) for i in range(n)]


@pytest.fixture(scope="session")
def pristine() -> Path:
    return example_video("carphone_pristine")


@pytest.fixture(scope="session")
def distorted() -> Path:
    return example_video("carphone_distorted")


@pytest.fixture(scope="session")
def leaves_and_returns(tmp_path_factory: pytest.TempPathFactory, pristine: Path) -> Path:
    """30 carphone frames, 30 face-free frames, 30 carphone frames (90 frames, 30 fps)."""
    frames = decode(pristine, 60)
    video = frames[:30] + blank(frames[0], 30) + frames[30:60]
    return write_video(tmp_path_factory.mktemp("faces") / "leaves.mp4", video)


@pytest.fixture(scope="session")
def no_face(tmp_path_factory: pytest.TempPathFactory, pristine: Path) -> Path:
    frames = decode(pristine, 1)
    return write_video(tmp_path_factory.mktemp("faces") / "noface.mp4", blank(frames[0], 24))


def write_png(path: Path, image: npt.NDArray[np.uint8]) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("png")
        stream.width, stream.height = image.shape[1], image.shape[0]
        stream.pix_fmt = "rgb24"
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
