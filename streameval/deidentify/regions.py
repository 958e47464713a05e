"""The pixel rectangle a blur, pixelation or mask covers for one detected face."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from streameval.models.base import Detection

Bounds = tuple[int, int, int, int]  # x0, y0, x1, y1: columns x0..x1-1, rows y0..y1-1


def face_bounds(detection: Detection, height: int, width: int, margin: float = 0.2) -> Bounds | None:
    """Integer pixel bounds of the detection box grown by ``margin`` x its size on each side, clipped to the image.

    BlazeFace boxes run from the brows to the chin; the margin takes in the forehead, ears and jaw line so the
    identity cues around the box go too. ``None`` when nothing of the box lies inside the image.
    """
    if margin < 0 or not math.isfinite(margin):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    x0, y0, x1, y1 = detection.box
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    bx0 = max(0, math.floor(x0 - dx))
    by0 = max(0, math.floor(y0 - dy))
    bx1 = min(width, math.ceil(x1 + dx))
    by1 = min(height, math.ceil(y1 + dy))
    if bx1 <= bx0 or by1 <= by0:
        return None
    return bx0, by0, bx1, by1


def region_mask(height: int, width: int, detections: list[Detection], margin: float = 0.2) -> npt.NDArray[np.bool_]:
    """Boolean (H, W) mask of the union of the faces' bounds."""
    mask = np.zeros((height, width), dtype=bool)
    for det in detections:
        b = face_bounds(det, height, width, margin)
        if b is not None:
            mask[b[1] : b[3], b[0] : b[2]] = True
    return mask
