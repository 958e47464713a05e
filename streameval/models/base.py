"""Small interfaces every model backend implements, so metrics never care which backend runs.

All images are RGB ``uint8`` arrays of shape (H, W, 3). Coordinates are in pixels of the image passed in.
Implementations are synchronous and may be slow: the pipeline calls them from worker threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Detection:
    """One face found by a detector."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    score: float
    keypoints: FloatArray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # (K, 2) x, y

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


@runtime_checkable
class FaceDetector(Protocol):
    name: str

    def detect(self, image: Image) -> list[Detection]:
        """All faces in the image, best first."""
        ...


@runtime_checkable
class Landmarker(Protocol):
    name: str

    def landmarks(self, image: Image, detection: Detection) -> FloatArray:
        """(N, 3) landmarks of the detected face: x, y in image pixels, z relative depth in pixels."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Identity embedder. ``metric`` is 'euclidean' or 'cosine'; ``threshold`` the same-person cut-off."""

    name: str
    metric: str
    threshold: float

    def embed(self, image: Image, detection: Detection, landmarks: FloatArray | None) -> FloatArray:
        """One embedding vector for the face."""
        ...


@runtime_checkable
class VideoFeatureExtractor(Protocol):
    """Clip features (I3D). Input clips: (B, T, H, W, 3) float32 in [-1, 1]."""

    name: str
    clip_length: int
    image_size: int

    def features(self, clips: FloatArray) -> dict[str, FloatArray]:
        """Map of output name ('pool', 'logits') to (B, D) float32 features."""
        ...
