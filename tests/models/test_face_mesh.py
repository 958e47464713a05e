"""Face-mesh crop geometry against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streameval.errors import InputError
from streameval.models.base import Detection
from streameval.models.face_mesh import Crop, crop_for_detection, project_landmarks


def _detection(right_eye: tuple[float, float], left_eye: tuple[float, float]) -> Detection:
    kps = np.array([right_eye, left_eye] + [(0.0, 0.0)] * 4, np.float32)
    return Detection(box=(40.0, 20.0, 80.0, 80.0), score=0.9, keypoints=kps)


def test_crop_is_centred_expanded_square_and_follows_the_eyes() -> None:
    crop = crop_for_detection(_detection((50, 40), (70, 40)))
    assert crop.centre == (60.0, 50.0)
    assert crop.side == pytest.approx(60 * 1.5)
    assert crop.angle == pytest.approx(0.0)
    tilted = crop_for_detection(_detection((50, 40), (60, 50)))  # left eye lower: head rolled clockwise
    assert tilted.angle == pytest.approx(math.pi / 4)


def test_projection_hand_computed() -> None:
    crop = Crop(centre=(100.0, 200.0), side=96.0, angle=math.pi / 2)
    raw = np.array([[96.0, 96.0, 10.0], [192.0, 96.0, -4.0]], np.float32)  # crop centre; right edge middle
    out = project_landmarks(raw, crop, size=192)
    # half a crop side along the crop x axis, which points down the image (+y) at 90 degrees
    np.testing.assert_allclose(out, [[100, 200, 5.0], [100, 248, -2.0]], atol=1e-4)


def test_needs_eye_keypoints() -> None:
    with pytest.raises(InputError, match="eye keypoints"):
        crop_for_detection(Detection(box=(0, 0, 10, 10), score=0.9))
