"""Fixtures: decoded videos (the model zoo and the example set are in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

Frames = list[npt.NDArray[np.uint8]]


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
