"""Named landmark indices of the MediaPipe 468-point face mesh and the measures built on them."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NUM_LANDMARKS = 468

# Inner lip contour, in order round the mouth opening (upper lip left to right, then lower lip back).
INNER_LIPS: tuple[int, ...] = (
    78,
    191,
    80,
    81,
    82,
    13,
    312,
    311,
    310,
    415,
    308,
    324,
    318,
    402,
    317,
    14,
    87,
    178,
    88,
    95,
)
UPPER_LIP_CENTRE = 13  # inner edge of the upper lip on the midline
LOWER_LIP_CENTRE = 14  # inner edge of the lower lip on the midline
RIGHT_EYE_OUTER = 33  # subject's right eye, outer corner
LEFT_EYE_OUTER = 263  # subject's left eye, outer corner


def check_landmarks(landmarks: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The (468, 2) x, y part of a (468, 2 or 3) landmark array, as float64; ValueError otherwise."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] != NUM_LANDMARKS or pts.shape[1] not in (2, 3):
        raise ValueError(f"expected MediaPipe landmarks of shape ({NUM_LANDMARKS}, 2 or 3), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("landmarks contain NaN or infinite values")
    return pts[:, :2]


def interocular(landmarks: npt.ArrayLike) -> float:
    """Distance between the outer eye corners, the scale that makes mesh measures size-free."""
    pts = check_landmarks(landmarks)
    return float(np.linalg.norm(pts[RIGHT_EYE_OUTER] - pts[LEFT_EYE_OUTER]))


def mouth_opening(landmarks: npt.ArrayLike) -> float:
    """Inner-lip gap on the midline divided by the inter-ocular distance (0 for a closed mouth)."""
    pts = check_landmarks(landmarks)
    gap = float(np.linalg.norm(pts[UPPER_LIP_CENTRE] - pts[LOWER_LIP_CENTRE]))
    return gap / max(interocular(pts), 1e-9)
