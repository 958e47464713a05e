"""What the face stage hands to the analysers: the tracked faces of one frame, and of both frames of a pair."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streameval.frames import FramePair
from streameval.models.base import Detection, FloatArray

# MediaPipe mesh indices of the points BlazeFace reports as keypoints, in BlazeFace's order: right eye, left eye
# (pupil centres approximated by the midpoint of the eye corners), nose tip, mouth centre, right ear tragion,
# left ear tragion. Embedders and crops that were written for detector keypoints read these.
_EYE_RIGHT = (33, 133)
_EYE_LEFT = (362, 263)
_NOSE_TIP = 1
_MOUTH = (13, 14)
_EAR_RIGHT = 234
_EAR_LEFT = 454


def mesh_keypoints(mesh: FloatArray) -> FloatArray:
    """BlazeFace-style six keypoints (x, y) derived from a 468-point mesh."""
    xy = np.asarray(mesh, np.float32)[:, :2]
    return np.stack(
        [
            xy[list(_EYE_RIGHT)].mean(axis=0),
            xy[list(_EYE_LEFT)].mean(axis=0),
            xy[_NOSE_TIP],
            xy[list(_MOUTH)].mean(axis=0),
            xy[_EAR_RIGHT],
            xy[_EAR_LEFT],
        ]
    ).astype(np.float32)


def mesh_box(mesh: FloatArray) -> tuple[float, float, float, float]:
    """Axis-aligned bounding box (x0, y0, x1, y1) of the mesh's points."""
    xy = np.asarray(mesh, np.float64)[:, :2]
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


@dataclass(frozen=True, slots=True)
class TrackedFace:
    """One face on one frame, followed by the face stage.

    ``box`` is the detector-style face box: on frames where the detector ran and matched this face it is the
    detector's own box; on tracked frames it is the last detector box carried along with the mesh's eye corners
    and nose (which do not move with expressions), so analysers written for detector boxes (dlib's 5-point
    alignment, the reality crop) keep seeing boxes of the same shape.
    """

    track_id: int
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    mesh: FloatArray  # (468, 3): x, y in image pixels, z relative depth in pixels
    presence: float  # the mesh network's face-presence probability
    score: float  # detector score of the detection that started or last confirmed the track
    detected: bool  # the detector found this face on this very frame
    # (478, 3) like ``mesh``, irises included, when the stage tracks with the Face Landmarker's 478-point mesh (the
    # blendshape AU models need it); ``mesh`` is then its first 468 points
    landmarks_478: FloatArray | None = None

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    def detection(self) -> Detection:
        """The face as a :class:`Detection` (box and six mesh-derived keypoints) for code written for detectors."""
        return Detection(box=self.box, score=self.score, keypoints=mesh_keypoints(self.mesh))


@dataclass(frozen=True, slots=True)
class FrameFaces:
    """The faces of one frame. ``primary`` is the primary subject's face (see :mod:`streameval.faces.tracker`
    for how it is chosen), None when the frame has no face."""

    faces: tuple[TrackedFace, ...] = ()
    primary: TrackedFace | None = None
    detector_ran: bool = False
    cut: bool = False  # a shot change was detected at this frame (tracks were restarted)

    @property
    def count(self) -> int:
        return len(self.faces)


@dataclass(frozen=True, slots=True)
class PairFaces:
    source: FrameFaces
    deid: FrameFaces

    def side(self, name: str) -> FrameFaces:
        if name == "source":
            return self.source
        if name == "deid":
            return self.deid
        raise ValueError(f"side must be 'source' or 'deid', got {name!r}")


def faces_of(pair: FramePair) -> PairFaces:
    """The face stage's faces of a pair; a face analyser given a pair the stage has not seen is a wiring bug."""
    if pair.faces is None:
        raise RuntimeError(f"pair at t={pair.t:.3f} s reached a face analyser without going through the face stage")
    return pair.faces
