"""Shared fixtures: the built model zoo and decoded example media.

Tests use the zoo built by ``streameval models build`` (CI runs it before pytest). When it is missing or
does not verify, the tests that need it fail with that instruction instead of skipping silently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from streameval.datasets import astronaut, example_video
from streameval.models import zoo

Frames = list[npt.NDArray[np.uint8]]


@pytest.fixture(scope="session")
def models_dir() -> Path:
    target = zoo.resolve_models_dir()
    bad = [s for s in zoo.verify(target, ["face_detector", "face_mesh", "dlib_resnet"]) if not s.ok]
    if bad:
        detail = "; ".join(f"{s.name}: {', '.join(s.problems)}" for s in bad)
        pytest.fail(
            f"model zoo in {target} is not built ({detail}): run `streameval models build` "
            "(or `python -m streameval.models build`) before the tests",
            pytrace=False,
        )
    return target


def decode(name: str, limit: int | None = None) -> Frames:
    import av

    frames: Frames = []
    with av.open(str(example_video(name))) as container:
        for frame in container.decode(video=0):
            frames.append(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
            if limit is not None and len(frames) >= limit:
                break
    return frames


@pytest.fixture(scope="session")
def carphone() -> Frames:
    return decode("carphone_pristine")


@pytest.fixture(scope="session")
def bikes() -> Frames:
    return decode("bikes")


@pytest.fixture(scope="session")
def astronaut_image() -> npt.NDArray[np.uint8]:
    return astronaut()
