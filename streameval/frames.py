"""The unit of data flowing from sources through pairing into analysis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from streameval.faces.types import PairFaces


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded video frame.

    ``pts`` is the presentation time in seconds on the stream's own clock (first frame of a file is usually 0);
    ``index`` counts decoded frames from 0; ``arrival`` is the monotonic wall-clock time (``time.monotonic()``)
    when the frame left the decoder, used to measure lag behind a live source.
    """

    image: npt.NDArray[np.uint8]  # (H, W, 3) RGB
    pts: float
    index: int
    arrival: float

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass(frozen=True, slots=True)
class FramePair:
    """A source frame and the de-identified frame shown at the same stream time.

    ``t`` is the pair's stream time in seconds on the source clock; windows are defined on it. ``faces`` is
    set by the face stage (None on pairs it has not seen, and in runs without face families).
    """

    source: Frame
    deid: Frame
    t: float
    faces: PairFaces | None = None
