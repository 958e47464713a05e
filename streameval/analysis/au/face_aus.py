"""Per-face AU estimation with a selectable model: mesh geometry, MediaPipe blendshapes, or both combined.

``geometry`` needs only the face stage's 468-point mesh. ``blendshapes`` and ``combined`` also need the Face
Landmarker's 478 landmarks and run its blendshape model on them (about 2 ms a face on one CPU thread). In a run
the face stage tracks with the 478-point mesh whenever these models are chosen
(:func:`streameval.families.stage_meshes`), so the landmarks come with the face (``TrackedFace.landmarks_478``,
on MediaPipe's tracking crop from the previous frame's landmarks, as its Face Landmarker does on video) and
only the blendshape network runs here. A face without them (tracked with the 468-point mesh) gets the 478-point
mesh run on the crop MediaPipe takes from a detection: the face's detector-style box and eye keypoints (about
10 ms more).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streameval.analysis.au.blendshapes import AU_MODELS, AUModel, blendshapes_to_aus, combine_aus
from streameval.analysis.au.estimator import MeshAUEstimator
from streameval.errors import UsageError
from streameval.faces.types import TrackedFace
from streameval.models.base import Image
from streameval.models.face_landmarker import FaceBlendshapes, FaceMesh478
from streameval.models.face_mesh import crop_for_detection

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class FaceAUs:
    aus: F32  # (17,) in AU_NAMES order, 0-5
    blendshapes: F32 | None  # (52,) in BLENDSHAPE_NAMES order, when the model ran
    geometry: F32 | None  # (17,) the geometry's own AUs, when it ran


@dataclass(frozen=True, slots=True)
class BlendshapeModels:
    """The two Face Landmarker networks the blendshapes need (sessions may be shared by both streams)."""

    mesh: FaceMesh478
    blendshapes: FaceBlendshapes

    def scores(self, image: Image, face: TrackedFace) -> F32:
        """(52,) blendshape coefficients of ``face`` on ``image``: from the stage's 478 landmarks when the face has
        them, else from the 478-point mesh run on the face's detection crop."""
        landmarks = face.landmarks_478
        if landmarks is None:
            landmarks, _ = self.mesh.on_crop(image, crop_for_detection(face.detection()))
        return self.blendshapes.scores(landmarks)


class FaceAUEstimator:
    """AUs of one stream's faces with the chosen ``model``; one instance per stream (the geometry's running
    neutral is per stream)."""

    def __init__(
        self, model: AUModel, geometry: MeshAUEstimator | None = None, networks: BlendshapeModels | None = None
    ) -> None:
        if model not in AU_MODELS:
            raise UsageError(f"au_model must be one of {', '.join(AU_MODELS)}, got {model!r}")
        if model != "blendshapes" and geometry is None:
            raise UsageError(f"au_model {model!r} needs the geometry estimator")
        if model != "geometry" and networks is None:
            raise UsageError(f"au_model {model!r} needs the Face Landmarker's mesh and blendshape models")
        self.model = model
        self.geometry = geometry if model != "blendshapes" else None
        self.networks = networks if model != "geometry" else None

    def estimate(self, image: Image, face: TrackedFace) -> FaceAUs:
        geo = None if self.geometry is None else self.geometry.estimate(face.mesh)
        if self.networks is None:
            assert geo is not None  # geometry-only model
            return FaceAUs(geo, None, geo)
        scores = self.networks.scores(image, face)
        learned = blendshapes_to_aus(scores)
        aus = learned if geo is None else combine_aus(geo, learned)
        return FaceAUs(aus.astype(np.float32), scores, geo)
