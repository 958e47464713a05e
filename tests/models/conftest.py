"""Decoded example media for the model tests (the zoo fixture ``models_dir`` is in tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from streameval.datasets import astronaut, example_video
from tests.videos import decode_rgb

Frames = list[npt.NDArray[np.uint8]]


def decode(name: str, limit: int | None = None) -> Frames:
    return decode_rgb(example_video(name), limit)


@pytest.fixture(scope="session")
def carphone() -> Frames:
    return decode("carphone_pristine")


@pytest.fixture(scope="session")
def bikes() -> Frames:
    return decode("bikes")


@pytest.fixture(scope="session")
def astronaut_image() -> npt.NDArray[np.uint8]:
    return astronaut()
