"""Shared face-finding step of the face analysers: detect, count, keep the largest face.

Each analysis lane is a separate thread with its own state, so every face analyser owns a detector (BlazeFace
costs ~10 ms per frame on the CPU); this module only holds the common choice of *which* face is analysed.
"""

from __future__ import annotations

from dataclasses import dataclass

from streameval.models.base import Detection, FaceDetector, Image


@dataclass(frozen=True, slots=True)
class FoundFace:
    """Outcome of face finding on one frame: how many faces, and the one analysed (None when there is none)."""

    count: int
    face: Detection | None


def largest(detections: list[Detection]) -> Detection | None:
    """The face with the largest box area; ties keep the detector's order (best score first)."""
    best: Detection | None = None
    for det in detections:
        if best is None or det.area > best.area:
            best = det
    return best


def find_face(detector: FaceDetector, image: Image) -> FoundFace:
    faces = detector.detect(image)
    return FoundFace(len(faces), largest(faces))
