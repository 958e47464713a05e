"""The default identity path (dlib's alignment in numpy/OpenCV + its ResNet on onnxruntime) against dlib itself.

Both backends get the same BlazeFace boxes on real faces (the carphone clip at its size and upscaled to
1280x720, where dlib's chip extraction goes through its image pyramid, and the astronaut portrait); the
descriptors and every pairwise distance are compared. Measured: descriptors within 6.8e-5, distances within
1.3e-4 (OpenCV's float32 bilinear step moves about 1 chip value in 10^5 by one grey level). Acceptance: 1e-4 and
1e-3 (the issue's targets).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from streameval.models.loaders import load_detector, load_dlib_embedder, load_dlib_onnx_embedder

Frames = list[npt.NDArray[np.uint8]]


@pytest.fixture(scope="module")
def faces(
    models_dir: Path, carphone: Frames, astronaut_image: npt.NDArray[np.uint8]
) -> list[tuple[np.ndarray, object]]:
    detector = load_detector(models_dir, device="cpu")
    images = [*carphone[::8], astronaut_image]
    images += [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_LINEAR) for f in carphone[::30]]
    out = []
    for image in images:
        found = detector.detect(image)
        assert found, "every test image has a face"
        out.append((image, found[0]))
    return out


def test_onnx_path_agrees_with_dlib(models_dir: Path, faces: list[tuple[np.ndarray, object]]) -> None:
    reference = load_dlib_embedder(models_dir)
    onnx = load_dlib_onnx_embedder(models_dir, device="cpu")
    ours = np.stack([onnx.embed(image, det) for image, det in faces])  # type: ignore[arg-type]
    theirs = np.stack([reference.embed(image, det) for image, det in faces])  # type: ignore[arg-type]
    descriptor_diff = float(np.abs(ours - theirs).max())
    pairs = list(itertools.combinations(range(len(faces)), 2))
    dist_ours = np.array([np.linalg.norm(ours[i] - ours[j]) for i, j in pairs])
    dist_theirs = np.array([np.linalg.norm(theirs[i].astype(np.float64) - theirs[j]) for i, j in pairs])
    distance_diff = float(np.abs(dist_ours - dist_theirs).max())
    assert descriptor_diff <= 1e-4, descriptor_diff
    assert distance_diff <= 1e-3, distance_diff
    # the same verdicts at dlib's threshold
    assert np.array_equal(dist_ours <= 0.6, dist_theirs <= 0.6)
    # and the identities are told apart: the astronaut (index 15) is far from every carphone face
    astro = [d for (i, j), d in zip(pairs, dist_ours, strict=True) if 15 in (i, j)]
    same = [d for (i, j), d in zip(pairs, dist_ours, strict=True) if 15 not in (i, j)]
    assert min(astro) > 0.6 > max(same)


def test_names_its_runtime(models_dir: Path) -> None:
    onnx = load_dlib_onnx_embedder(models_dir, device="cpu")
    assert (onnx.name, onnx.runtime, onnx.metric, onnx.threshold) == ("dlib_resnet_v1", "onnxruntime", "euclidean", 0.6)
