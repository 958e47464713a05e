"""Head rotation from a face mesh, as OpenFace reports it (``pose_Rx``, ``pose_Ry``, ``pose_Rz``, radians).

OpenFace's rotation takes the head frame to the camera frame (x right, y down, z away from the camera; identity
for a face looking straight into the camera) and is written as Euler angles with ``R = Rx(pose_Rx) @
Ry(pose_Ry) @ Rz(pose_Rz)``. The MediaPipe mesh is in the same camera axes (image pixels, z growing away from the
camera), so the rotation is the least-squares similarity of the canonical face's rigid landmarks onto the mesh's.
MediaPipe's depth from one frame is imprecise (see :mod:`~streameval.analysis.au.geometry`), so pitch and yaw
are approximate; roll (in the image plane) is not affected.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import numpy.typing as npt

from streameval.analysis.au.canonical import CANONICAL
from streameval.analysis.au.geometry import RIGID, check_landmarks, similarity_fit

F64 = npt.NDArray[np.float64]

# the canonical face has y up and z towards the viewer; the head frame at rest has the camera's axes
_TO_CAMERA_AXES = np.array([1.0, -1.0, -1.0])


@cache
def _canonical_in_camera_axes() -> F64:
    rigid: F64 = np.asarray(CANONICAL, dtype=np.float64)[list(RIGID)] * _TO_CAMERA_AXES
    return rigid


def rotation_to_euler(rot: npt.ArrayLike) -> tuple[float, float, float]:
    """(rx, ry, rz) in radians with ``rot = Rx(rx) @ Ry(ry) @ Rz(rz)``."""
    r = np.asarray(rot, dtype=np.float64)
    ry = math.asin(float(np.clip(r[0, 2], -1.0, 1.0)))
    rx = math.atan2(-float(r[1, 2]), float(r[2, 2]))
    rz = math.atan2(-float(r[0, 1]), float(r[0, 0]))
    return rx, ry, rz


def euler_to_rotation(rx: float, ry: float, rz: float) -> F64:
    """``Rx(rx) @ Ry(ry) @ Rz(rz)``, the inverse of :func:`rotation_to_euler` (for |ry| < pi/2)."""
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    x = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    y = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    z = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    out: F64 = x @ y @ z
    return out


def head_pose(landmarks: npt.ArrayLike) -> tuple[float, float, float]:
    """(pose_Rx, pose_Ry, pose_Rz) in radians of one (468, 3) mesh in image pixels."""
    pts = check_landmarks(landmarks)
    if pts.ndim != 2:
        raise ValueError(f"head_pose takes one mesh (468, 3), got {pts.shape}")
    _, rot, _ = similarity_fit(_canonical_in_camera_axes(), pts[list(RIGID)])
    return rotation_to_euler(rot)
