"""Face landmarks: MediaPipe 468-point face mesh (ONNX) on a rotated, expanded square crop around a detection.

MediaPipe's front-camera graph derives the crop from BlazeFace: centre of the box, rotation that makes the
line from the right eye (keypoint 0) to the left eye (keypoint 1) horizontal, side = 1.5 x the longer box side.
The network sees that crop at 192x192 in [0, 1] and returns 468 x (x, y, z) in crop pixels plus a face-presence
logit. We map the points back to image pixels (z scaled like x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from streameval import imaging
from streameval.errors import InputError
from streameval.models.base import Detection, FloatArray, Image
from streameval.models.face_detector import check_image
from streameval.models.warp import F64, apply_affine, rotated_crop_matrix

INPUT_SIZE = 192
NUM_LANDMARKS = 468
CROP_SCALE = 1.5


@dataclass(frozen=True, slots=True)
class Crop:
    """Square, rotated region of the image that the mesh network sees."""

    centre: tuple[float, float]
    side: float
    angle: float  # radians, direction of the crop's x axis in the image (y down)

    def matrix(self, size: int = INPUT_SIZE) -> F64:
        return rotated_crop_matrix(self.centre, self.side, self.angle, size)


def crop_for_detection(detection: Detection, scale: float = CROP_SCALE) -> Crop:
    """The crop MediaPipe takes from a BlazeFace detection (needs keypoints 0 and 1: the eyes)."""
    kps = np.asarray(detection.keypoints, dtype=np.float64)
    if kps.shape[0] < 2:
        raise InputError("face mesh needs a detection with eye keypoints (BlazeFace keypoints 0 and 1)")
    x0, y0, x1, y1 = detection.box
    dx, dy = kps[1] - kps[0]
    angle = math.atan2(dy, dx)
    side = max(x1 - x0, y1 - y0) * scale
    if not side > 0:
        raise InputError(f"face mesh needs a non-empty detection box, got {detection.box}")
    return Crop(((x0 + x1) / 2, (y0 + y1) / 2), side, angle)


# MediaPipe's landmarks-to-ROI step: the rotation follows the line between the outer eye corners.
RIGHT_EYE_OUTER = 33
LEFT_EYE_OUTER = 263


def crop_for_mesh(mesh: FloatArray, scale: float = CROP_SCALE) -> Crop:
    """The crop MediaPipe's tracking takes for the next frame from this frame's landmarks: centre of their
    bounding box, rotation from the outer eye corners, side = ``scale`` x the longer side of the box."""
    xy = np.asarray(mesh, dtype=np.float64)[:, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    dx, dy = xy[LEFT_EYE_OUTER] - xy[RIGHT_EYE_OUTER]
    side = float(max(hi - lo)) * scale
    if not side > 0:
        raise InputError("face mesh crop needs landmarks that span an area")
    centre = (lo + hi) / 2
    return Crop((float(centre[0]), float(centre[1])), side, math.atan2(dy, dx))


def project_landmarks(raw: FloatArray, crop: Crop, size: int = INPUT_SIZE) -> FloatArray:
    """Map network output (468, 3) in crop pixels to image pixels; z is scaled by the crop's pixel size."""
    pts = np.asarray(raw, dtype=np.float64).reshape(-1, 3)
    xy = apply_affine(crop.matrix(size), pts[:, :2])
    z = pts[:, 2] * crop.side / size
    return np.column_stack([xy, z]).astype(np.float32)


class FaceMeshLandmarker:
    """:class:`~streameval.models.base.Landmarker` over the converted MediaPipe face mesh."""

    name = "mediapipe_face_mesh"

    def __init__(self, session: Any) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        outputs = session.get_outputs()
        by_size = sorted(outputs, key=lambda o: int(np.prod([d for d in o.shape if isinstance(d, int)])))
        self._presence, self._points = by_size[0].name, by_size[-1].name

    def raw(self, crop_image: FloatArray | Image) -> tuple[FloatArray, float]:
        """Network on one 192x192 crop in [0, 255]: landmarks (468, 3) in crop pixels, face presence in [0, 1]."""
        x = (np.asarray(crop_image, np.float32) / 255.0)[None]
        pts, flag = self._session.run([self._points, self._presence], {self._input: x})
        presence = 1.0 / (1.0 + math.exp(-float(np.clip(np.asarray(flag).reshape(-1)[0], -80, 80))))
        return np.asarray(pts, np.float32).reshape(NUM_LANDMARKS, 3), presence

    def on_crop(self, image: Image, crop: Crop) -> tuple[FloatArray, float]:
        """(468, 3) landmarks in image pixels and the face-presence probability of the face inside ``crop``."""
        check_image(image)
        # A uint8 warp converts nothing but the 192x192 result: at 720p it saves the float copy of the whole
        # crop region (~1.5 ms a face); rounding to whole grey levels moves the input by < 0.002 of its range.
        patch = imaging.warp_affine(image, crop.matrix(), (INPUT_SIZE, INPUT_SIZE), np.uint8)
        pts, presence = self.raw(patch)
        return project_landmarks(pts, crop), presence

    def landmarks_and_presence(self, image: Image, detection: Detection) -> tuple[FloatArray, float]:
        """(468, 3) landmarks in image pixels and the network's face-presence probability."""
        return self.on_crop(image, crop_for_detection(detection))

    def landmarks(self, image: Image, detection: Detection) -> FloatArray:
        """(468, 3) landmarks: x, y in image pixels, z relative depth in pixels (smaller = nearer)."""
        return self.landmarks_and_presence(image, detection)[0]
