"""dlib's face recogniser without dlib: its 5-point alignment in numpy/OpenCV and its ResNet on onnxruntime.

The same three steps as ``face_recognition.face_encodings`` (and :class:`~streameval.models.dlib_embedder.
DlibEmbedder`, which stays as the reference backend): dlib's 5-point shape predictor inside the face box
(:mod:`streameval.models.dlib_shape`), the 150x150 chip with 25 % padding (:mod:`streameval.models.face_chip`),
the 128-d ResNet descriptor (the ONNX graph of :mod:`streameval.models.dlib_resnet_onnx`). Runs on CUDA where
onnxruntime-gpu is installed. Same person: Euclidean distance < 0.6.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streameval.models.base import Detection, FloatArray, Image
from streameval.models.dlib_resnet_onnx import INPUT_NAME, OUTPUT_NAME
from streameval.models.dlib_shape import ShapePredictor
from streameval.models.face_chip import extract_chip
from streameval.models.face_detector import check_image
from streameval.models.runtime import create_session

CHIP_SIZE = 150
CHIP_PADDING = 0.25


class OnnxDlibEmbedder:
    """:class:`~streameval.models.base.Embedder` with dlib's ResNet on onnxruntime (metric 'euclidean',
    threshold 0.6). ``landmarks`` are not used: the alignment is dlib's own 5 points inside the box."""

    name = "dlib_resnet_v1"
    runtime = "onnxruntime"
    metric = "euclidean"
    threshold = 0.6

    def __init__(self, resnet_onnx: Path, shape_predictor: Path, *, device: str = "auto", threads: int | None = None):
        self._session = create_session(resnet_onnx, device=device, threads=threads, role="embedder")
        self._predictor = ShapePredictor(shape_predictor)

    def chip(self, image: Image, detection: Detection) -> Image:
        """The aligned 150x150 face chip dlib's recogniser sees."""
        return self.chip_at(image, self.align(image, detection))

    def align(self, image: Image, detection: Detection) -> FloatArray:
        """dlib's five landmarks of the face in ``detection``: the alignment a chip is cut at."""
        check_image(image)
        points: FloatArray = np.asarray(self._predictor.predict(image, detection.box), np.float64)
        return points

    def chip_at(self, image: Image, points: FloatArray) -> Image:
        """The chip cut from ``image`` at given landmarks (another frame's alignment, for the attacker's view)."""
        check_image(image)
        return extract_chip(image, points, size=CHIP_SIZE, padding=CHIP_PADDING)

    def embed_aligned(self, images: list[Image], points: FloatArray) -> FloatArray:
        """Descriptors (N, 128) of the chips cut from each image at the same landmarks, in one batch."""
        return self.describe([self.chip_at(image, points) for image in images])

    def describe(self, chips: list[Image]) -> FloatArray:
        """Descriptors (N, 128) of aligned chips, in one batch."""
        batch = np.stack(chips).astype(np.float32)
        (out,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        return np.asarray(out, np.float32)

    def embed(self, image: Image, detection: Detection, landmarks: FloatArray | None = None) -> FloatArray:
        """128-d descriptor of the face in ``detection``."""
        descriptor: FloatArray = self.describe([self.chip(image, detection)])[0]
        return descriptor
