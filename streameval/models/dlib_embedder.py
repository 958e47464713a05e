"""Identity embedding with dlib's 128-d ResNet, aligned the way the ``face_recognition`` library does it.

Pipeline (the same dlib calls as ``face_recognition.face_encodings(..., model="small")``): the detection box
becomes a ``dlib.rectangle``; dlib's 5-point shape predictor finds eye corners and nose base inside it; dlib's
``compute_face_descriptor`` cuts the aligned 150x150 face chip (``get_face_chip``, padding 0.25) from those
points and runs the ResNet. Same person: Euclidean distance < 0.6.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from streameval.errors import MissingExtraError, ModelError
from streameval.models.base import Detection, FloatArray, Image
from streameval.models.face_detector import check_image


def import_dlib() -> Any:
    try:
        import dlib
    except ImportError as exc:
        raise MissingExtraError("models", "dlib-bin", "the dlib face recogniser") from exc
    return dlib


class DlibEmbedder:
    """:class:`~streameval.models.base.Embedder` with dlib's ResNet (metric 'euclidean', threshold 0.6)."""

    name = "dlib_resnet_v1"
    runtime = "dlib"
    metric = "euclidean"
    threshold = 0.6

    def __init__(self, recognition_model: Path, shape_predictor: Path, *, num_jitters: int = 1) -> None:
        if num_jitters < 1:
            raise ValueError(f"num_jitters must be >= 1, got {num_jitters!r}")
        dlib = import_dlib()
        self._dlib = dlib
        try:
            self._encoder = dlib.face_recognition_model_v1(str(recognition_model))
            self._predictor = dlib.shape_predictor(str(shape_predictor))
        except RuntimeError as exc:
            raise ModelError(f"dlib cannot load {recognition_model} / {shape_predictor}: {exc}") from exc
        self.num_jitters = num_jitters
        self._lock = threading.Lock()  # dlib objects are not documented as thread-safe

    def rectangle(self, image: Image, detection: Detection) -> Any:
        x0, y0, x1, y1 = detection.box
        return self._dlib.rectangle(round(x0), round(y0), round(x1), round(y1))

    def embed(self, image: Image, detection: Detection, landmarks: FloatArray | None = None) -> FloatArray:
        """128-d descriptor of the face in ``detection`` (``landmarks`` unused: dlib aligns with its own 5 points)."""
        check_image(image)
        img = np.ascontiguousarray(image)
        with self._lock:
            shape = self._predictor(img, self.rectangle(img, detection))
            vec = self._encoder.compute_face_descriptor(img, shape, self.num_jitters)
        return np.asarray(vec, dtype=np.float32)
