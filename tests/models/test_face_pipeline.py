"""Detector + mesh on real media: a face on every carphone frame and on the astronaut, none on bikes."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from streameval.models.base import FaceDetector, Landmarker
from streameval.models.loaders import load_detector, load_landmarker

Frames = list[np.ndarray]

# MediaPipe mesh indices of the eye corners (subject's right eye: 33, 133; left eye: 362, 263)
RIGHT_EYE = (33, 133)
LEFT_EYE = (362, 263)


def _check_face(image: np.ndarray, detector: FaceDetector, landmarker: Landmarker) -> float:
    """Detect, run the mesh, and check the two models agree; return the face-presence probability."""
    faces = detector.detect(image)
    assert faces, "no face found"
    det = faces[0]
    assert all(a.score >= b.score for a, b in itertools.pairwise(faces))
    pts, presence = landmarker.landmarks_and_presence(image, det)  # type: ignore[attr-defined]
    assert pts.shape == (468, 3) and np.isfinite(pts).all()
    x0, y0, x1, y1 = det.box
    size = max(x1 - x0, y1 - y0)
    # the mesh's eye centres agree with the detector's independent eye keypoints within 15% of the face size
    right = pts[list(RIGHT_EYE), :2].mean(axis=0)
    left = pts[list(LEFT_EYE), :2].mean(axis=0)
    assert np.linalg.norm(right - det.keypoints[0]) < 0.15 * size
    assert np.linalg.norm(left - det.keypoints[1]) < 0.15 * size
    # nearly all mesh points lie in the (slightly grown) detection box
    inside = (
        (pts[:, 0] > x0 - 0.25 * size)
        & (pts[:, 0] < x1 + 0.25 * size)
        & (pts[:, 1] > y0 - 0.25 * size)
        & (pts[:, 1] < y1 + 0.25 * size)
    )
    assert inside.mean() > 0.95
    return float(presence)


@pytest.fixture(scope="module")
def models(models_dir: Path) -> tuple[FaceDetector, Landmarker]:
    return load_detector(models_dir, device="cpu"), load_landmarker(models_dir, device="cpu")


def test_face_on_every_carphone_frame(models: tuple[FaceDetector, Landmarker], carphone: Frames) -> None:
    detector, landmarker = models
    assert len(carphone) == 120
    presences = [_check_face(frame, detector, landmarker) for frame in carphone]
    assert min(presences) > 0.5


def test_face_on_astronaut(models: tuple[FaceDetector, Landmarker], astronaut_image: np.ndarray) -> None:
    detector, landmarker = models
    faces = detector.detect(astronaut_image)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].box
    assert 150 < (x0 + x1) / 2 < 300 and 80 < (y0 + y1) / 2 < 200  # Eileen Collins' face, upper centre
    assert _check_face(astronaut_image, detector, landmarker) > 0.9


def test_small_face_found_by_the_tiled_pass(models_dir: Path, astronaut_image: np.ndarray) -> None:
    # the portrait pasted into a 1280x720 grey canvas: the face (~95 px) is ~7% of the longer side
    canvas = np.full((720, 1280, 3), 90, np.uint8)
    canvas[100:612, 600:1112] = astronaut_image
    plain = load_detector(models_dir, device="cpu")
    tiled = load_detector(models_dir, device="cpu", tiles=3)
    assert plain.detect(canvas) == []
    faces = tiled.detect(canvas)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].box
    # same face as found on the portrait alone (centre ~ (225, 128) there)
    ref = plain.detect(astronaut_image)[0].box
    np.testing.assert_allclose(
        [(x0 + x1) / 2, (y0 + y1) / 2], [600 + (ref[0] + ref[2]) / 2, 100 + (ref[1] + ref[3]) / 2], atol=10
    )


def test_no_false_detections_on_bikes(models: tuple[FaceDetector, Landmarker], bikes: Frames) -> None:
    detector, _ = models
    found = {i: detector.detect(frame) for i, frame in enumerate(bikes)}
    false = {i: [round(d.score, 3) for d in faces] for i, faces in found.items() if faces}
    print(f"bikes.mp4: {len(false)} of {len(bikes)} face-free frames with a detection at min_score 0.6: {false}")
    assert not false
