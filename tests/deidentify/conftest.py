"""Fixtures: the built model zoo, the example set made once per session, decoded videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from streameval.models import zoo

Frames = list[npt.NDArray[np.uint8]]


@pytest.fixture(scope="session")
def models_dir() -> Path:
    target = zoo.resolve_models_dir()
    bad = [s for s in zoo.verify(target, ["face_detector", "face_mesh", "dlib_resnet"]) if not s.ok]
    if bad:
        detail = "; ".join(f"{s.name}: {', '.join(s.problems)}" for s in bad)
        pytest.fail(
            f"model zoo in {target} is not built ({detail}): run `streameval models build` before the tests",
            pytrace=False,
        )
    return target


@pytest.fixture(scope="session")
def examples(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``make_examples`` into a fresh directory: all four carphone videos (about 15 s on 2 cores)."""
    from streameval.deidentify.examples import make_examples

    return make_examples(tmp_path_factory.mktemp("example_out"))


Decoded = tuple[Frames, list[float], float]


def decode(path: Path) -> Decoded:
    """Frames (RGB), their presentation times in seconds, and the stream's average frame rate."""
    import av

    frames: Frames = []
    times: list[float] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 0)
        for frame in container.decode(stream):
            frames.append(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
            assert frame.pts is not None and frame.time_base is not None
            times.append(float(frame.pts * frame.time_base))
    return frames, times, rate
