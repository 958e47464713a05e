"""Converted ONNX models against their source runtime (the TFLite interpreter) on real inputs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from streameval import imaging
from streameval.models import builders
from streameval.models.face_detector import letterbox
from streameval.models.face_mesh import INPUT_SIZE, crop_for_detection
from streameval.models.loaders import load_detector, load_landmarker
from streameval.models.runtime import create_session

Frames = list[np.ndarray]

log = logging.getLogger(__name__)


def _tflite(member: str, tmp_path: Path) -> object:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(builders.source_tflite(member, tmp_path)))
    interp.allocate_tensors()
    return interp


def _run_tflite(interp: object, x: np.ndarray) -> dict[str, np.ndarray]:
    it = interp  # the interpreter is untyped
    inp = it.get_input_details()[0]  # type: ignore[attr-defined]
    it.set_tensor(inp["index"], x)  # type: ignore[attr-defined]
    it.invoke()  # type: ignore[attr-defined]
    return {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}  # type: ignore[attr-defined]


def test_detector_onnx_matches_tflite(
    models_dir: Path, carphone: Frames, astronaut_image: np.ndarray, tmp_path: Path
) -> None:
    interp = _tflite(builders.FACE_DETECTION_MEMBER, tmp_path)
    session = create_session(models_dir / "face_detection_short_range.onnx", device="cpu")
    images = [*carphone[::10], astronaut_image]
    worst = 0.0
    for image in images:
        x = (letterbox(image)[0] / 127.5 - 1.0).astype(np.float32)[None]
        ref = _run_tflite(interp, x)
        got = dict(
            zip(
                ["regressors", "classificators"],
                session.run(["regressors", "classificators"], {"input": x}),
                strict=True,
            )
        )
        for name in ("regressors", "classificators"):
            worst = max(worst, float(np.abs(got[name] - ref[name]).max()))
    log.warning("face detector ONNX vs TFLite: max abs diff %.2e over %d real images", worst, len(images))
    print(f"face detector ONNX vs TFLite max abs diff: {worst:.2e}")
    assert worst < 2e-3  # regressors are in 128-px units, logits unbounded


def test_mesh_onnx_matches_tflite(
    models_dir: Path, carphone: Frames, astronaut_image: np.ndarray, tmp_path: Path
) -> None:
    interp = _tflite(builders.FACE_MESH_MEMBER, tmp_path)
    session = create_session(models_dir / "face_landmark.onnx", device="cpu")
    detector = load_detector(models_dir, device="cpu")
    images = [*carphone[::10], astronaut_image]
    worst = 0.0
    for image in images:
        crop = crop_for_detection(detector.detect(image)[0])
        x = (imaging.warp_affine(image, crop.matrix(), (INPUT_SIZE, INPUT_SIZE)) / 255.0).astype(np.float32)[None]
        ref = _run_tflite(interp, x)
        got = session.run(["conv2d_21", "conv2d_31"], {"input_1": x})
        worst = max(
            worst, float(np.abs(got[0] - ref["conv2d_21"]).max()), float(np.abs(got[1] - ref["conv2d_31"]).max())
        )
    print(f"face mesh ONNX vs TFLite max abs diff: {worst:.2e}")
    assert worst < 5e-3  # landmark outputs are in 192-px crop pixels


def test_landmarker_uses_the_converted_model(models_dir: Path, astronaut_image: np.ndarray) -> None:
    lm = load_landmarker(models_dir, device="cpu")
    det = load_detector(models_dir, device="cpu").detect(astronaut_image)[0]
    pts, presence = lm.landmarks_and_presence(astronaut_image, det)
    assert pts.shape == (468, 3) and presence > 0.9
    with pytest.raises(Exception, match="RGB uint8"):
        lm.landmarks(astronaut_image.astype(np.float32), det)


def _task_tflite(member: str, tmp_path: Path) -> object:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(builders.source_task_tflite(member, tmp_path)))
    interp.allocate_tensors()
    return interp


def _meshes_478(models_dir: Path, images: Frames) -> list[tuple[np.ndarray, np.ndarray]]:
    """(256x256 crop in [0, 1], its 478 landmarks in image pixels) of the first face of each image."""
    from streameval.models.face_landmarker import INPUT_SIZE as SIZE_478
    from streameval.models.face_mesh import crop_for_mesh
    from streameval.models.loaders import load_mesh_478

    detector, mesh = load_detector(models_dir, device="cpu"), load_landmarker(models_dir, device="cpu")
    mesh478 = load_mesh_478(models_dir, device="cpu")
    out = []
    for image in images:
        crop = crop_for_mesh(mesh.landmarks(image, detector.detect(image)[0]))
        patch = imaging.warp_affine(image, crop.matrix(SIZE_478), (SIZE_478, SIZE_478), np.uint8)
        out.append(((patch / 255.0).astype(np.float32)[None], mesh478.on_crop(image, crop)[0]))
    return out


def test_mesh_478_onnx_matches_tflite(
    models_dir: Path, carphone: Frames, astronaut_image: np.ndarray, tmp_path: Path
) -> None:
    interp = _task_tflite(builders.MESH478_MEMBER, tmp_path)
    session = create_session(models_dir / "face_landmarks_detector.onnx", device="cpu")
    worst = 0.0
    for x, _ in _meshes_478(models_dir, [*carphone[::10], astronaut_image]):
        ref = _run_tflite(interp, x)
        got = session.run(["Identity", "Identity_1"], {"input_12": x})
        worst = max(
            worst, float(np.abs(got[0] - ref["Identity"]).max()), float(np.abs(got[1] - ref["Identity_1"]).max())
        )
    print(f"478-point mesh ONNX vs TFLite max abs diff: {worst:.2e}")
    assert worst < 5e-3  # landmark outputs are in 256-px crop pixels


def test_blendshapes_onnx_matches_tflite(
    models_dir: Path, carphone: Frames, astronaut_image: np.ndarray, tmp_path: Path
) -> None:
    from streameval.models.face_landmarker import blendshape_input

    interp = _task_tflite(builders.BLENDSHAPES_MEMBER, tmp_path)
    session = create_session(models_dir / "face_blendshapes.onnx", device="cpu")
    worst, spread = 0.0, []
    for _, landmarks in _meshes_478(models_dir, [*carphone[::10], astronaut_image]):
        x = blendshape_input(landmarks)
        ref = _run_tflite(interp, x)
        (ref_scores,) = ref.values()
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        worst = max(worst, float(np.abs(got.reshape(-1) - ref_scores.reshape(-1)).max()))
        spread.append(got.reshape(-1))
    print(f"blendshapes ONNX vs TFLite max abs diff: {worst:.2e}")
    assert worst < 1e-4  # coefficients in [0, 1]
    assert np.ptp(np.stack(spread), axis=0).max() > 0.3  # real frames move some coefficients a lot
