"""MediaPipe Face Landmarker's second stage: the 478-point mesh (irises included) and the 52 face blendshapes.

The 478-point network sees a 256x256 crop in [0, 1] taken as for the 468-point mesh (centre and side from the
face's landmarks, rotation from the outer eye corners; :func:`~streameval.models.face_mesh.crop_for_mesh`) and
returns 478 x (x, y, z) in crop pixels and a face-presence logit. The blendshape network takes the x, y of 146 of
those landmarks in *image* pixels (MediaPipe's FaceBlendshapesGraph scales its normalised landmarks by the image
size), shape (1, 146, 2); it centres and scales them itself, so the crop does not enter its input.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from streameval import imaging
from streameval.errors import InputError
from streameval.models.base import Detection, FloatArray, Image
from streameval.models.face_detector import check_image
from streameval.models.face_mesh import Crop, crop_for_detection, project_landmarks

INPUT_SIZE = 256
NUM_LANDMARKS = 478

# The landmarks the blendshape model reads, in the order it reads them (the model's input contract, as
# MediaPipe's FaceBlendshapesGraph selects them from the 478).
BLENDSHAPE_LANDMARKS: tuple[int, ...] = (
    *(0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70),
    *(78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149),
    *(150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195),
    *(197, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300),
    *(308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375),
    *(377, 378, 379, 380, 381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454),
    *(466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477),
)

# The 52 outputs in order (ARKit's names; index 0 is MediaPipe's "_neutral", not an ARKit shape).
BLENDSHAPE_NAMES: tuple[str, ...] = (
    *("_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight"),
    *("cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft"),
    *("eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft"),
    *("eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft"),
    *("jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft"),
    *("mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft"),
    *("mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower"),
    *("mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight"),
    *("mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight"),
)


def _sigmoid(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-float(np.clip(logit, -80, 80))))


class FaceMesh478:
    """The Face Landmarker's 478-point mesh network (ONNX)."""

    name = "mediapipe_face_landmarker_mesh"

    def __init__(self, session: Any) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        by_name = {o.name: o for o in session.get_outputs()}
        if not {"Identity", "Identity_1"} <= set(by_name):
            raise InputError(f"not the Face Landmarker mesh model: outputs {sorted(by_name)}")
        self._points, self._presence = "Identity", "Identity_1"

    def raw(self, crop_image: FloatArray | Image) -> tuple[FloatArray, float]:
        """Network on one 256x256 crop in [0, 255]: (478, 3) in crop pixels, face presence in [0, 1]."""
        x = (np.asarray(crop_image, np.float32) / 255.0)[None]
        pts, flag = self._session.run([self._points, self._presence], {self._input: x})
        return np.asarray(pts, np.float32).reshape(NUM_LANDMARKS, 3), _sigmoid(np.asarray(flag).reshape(-1)[0])

    def on_crop(self, image: Image, crop: Crop) -> tuple[FloatArray, float]:
        """(478, 3) landmarks in image pixels and the face-presence probability of the face inside ``crop``."""
        check_image(image)
        patch = imaging.warp_affine(image, crop.matrix(INPUT_SIZE), (INPUT_SIZE, INPUT_SIZE), np.uint8)
        pts, presence = self.raw(patch)
        return project_landmarks(pts, crop, INPUT_SIZE), presence

    def landmarks_and_presence(self, image: Image, detection: Detection) -> tuple[FloatArray, float]:
        """(478, 3) landmarks and presence on the crop MediaPipe takes from a detection (box and eye keypoints);
        with :meth:`on_crop` this is the interface the face stage's tracker needs, so it can track with this
        network instead of the 468-point mesh."""
        return self.on_crop(image, crop_for_detection(detection))


def blendshape_input(landmarks: FloatArray) -> FloatArray:
    """(478, >=2) landmarks in image pixels -> the blendshape model's input (1, 146, 2) float32."""
    pts = np.asarray(landmarks, np.float32)
    if pts.ndim != 2 or pts.shape[0] != NUM_LANDMARKS or pts.shape[1] < 2:
        raise InputError(f"blendshapes need the 478-point mesh, got landmarks of shape {pts.shape}")
    return np.ascontiguousarray(pts[list(BLENDSHAPE_LANDMARKS), :2])[None]


class FaceBlendshapes:
    """The 52 blendshape coefficients (each in [0, 1]) of one face from its 478 landmarks."""

    name = "mediapipe_face_blendshapes"

    def __init__(self, session: Any) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self._output = session.get_outputs()[0].name

    def scores(self, landmarks: FloatArray) -> FloatArray:
        """(478, 3) landmarks in image pixels -> (52,) float32 in ``BLENDSHAPE_NAMES`` order."""
        out = self._session.run([self._output], {self._input: blendshape_input(landmarks)})[0]
        return np.asarray(out, np.float32).reshape(len(BLENDSHAPE_NAMES))
