"""Pose normalisation of MediaPipe 468-point face meshes (pure numpy).

A mesh arrives in image pixels (x right, y down, z away from the camera; MediaPipe's relative depth in pixel
scale). We flip y and z so the face frame reads naturally (y up, z towards the viewer; still right-handed) and
fit a least-squares 3D *affine* map of a set of rigid landmarks onto the canonical neutral mesh. Rigid means
they hardly move with expression: nose bridge and tip, the eye corners, forehead and the upper face contour.
Everything measured afterwards is in the canonical frame, whose unit is the canonical inter-ocular distance
(outer eye corners), so head pose, image position and face size drop out.

Why affine and not a similarity (rotation + scale): MediaPipe's depth from one small frame is imprecise, so a
rigid 3D rotation leaves part of a head pitch as a vertical squash of the face (on carphone, closed-mouth
frames showed a spurious jaw-drop spread of 0.065 IOD with a similarity, and jaw drop vs lip gap correlated
0.60; with the affine map 0.057 and 0.84). An affine map of the upper face also absorbs the subject's upper-face
proportions, which helps identity independence. It contains every similarity, so rotation, scale and
translation invariance is exact up to rounding. ``similarity_fit`` remains for building the canonical mesh.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from streameval.errors import InputError

F64 = npt.NDArray[np.float64]

N_LANDMARKS = 468

# Landmarks that expression barely moves (MediaPipe face-mesh indices).
RIGID = (
    # midline: forehead, glabella-free bridge, nose
    10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1,
    # eye corners (outer, inner) both sides
    33, 133, 263, 362,
    # upper face contour / temples, both sides
    127, 356, 162, 389, 21, 251, 54, 284, 103, 332, 67, 297, 109, 338,
    # nose wings' upper part and bridge sides
    122, 351, 196, 419, 3, 248, 236, 456,
)  # fmt: skip

# Flip image y (down) and depth z (away) so the face frame has y up and z towards the viewer.
_FLIP = np.array([1.0, -1.0, -1.0])


def check_landmarks(landmarks: npt.ArrayLike) -> F64:
    """Validate one mesh or a batch of meshes and return it as float64 (..., 468, 3)."""
    arr = np.asarray(landmarks, dtype=np.float64)
    if arr.ndim < 2 or arr.shape[-2:] != (N_LANDMARKS, 3):
        raise InputError(f"landmarks must have shape (468, 3) or (N, 468, 3), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError("landmarks contain NaN or infinite values")
    return arr


def similarity_fit(src: F64, dst: F64) -> tuple[float, F64, F64]:
    """Least-squares similarity (scale, rotation R, translation t) with dst ≈ scale * src @ R.T + t (Umeyama)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # forbid reflections
        sign[-1] = -1.0
    rot = (u * sign) @ vt
    var_s = float((s0**2).sum() / len(src))
    if var_s <= 0.0:
        raise InputError("degenerate mesh: all rigid landmarks coincide")
    scale = float((sig * sign).sum() / var_s)
    return scale, rot, mu_d - scale * rot @ mu_s


def align(landmarks: npt.ArrayLike, canonical: F64) -> F64:
    """One mesh (468, 3) in pixels → the same mesh in the canonical frame (IOD units, frontal)."""
    pts = check_landmarks(landmarks)
    if pts.ndim != 2:
        raise InputError(f"align takes one mesh (468, 3), got {pts.shape}")
    pts = pts * _FLIP
    idx = list(RIGID)
    return affine_fit_apply(pts, idx, canonical)


def affine_fit_apply(pts: F64, idx: list[int], canonical: F64) -> F64:
    """Least-squares 3D affine map of ``pts[idx]`` onto ``canonical[idx]``, applied to all of ``pts``."""
    homog = np.concatenate([pts, np.ones((len(pts), 1))], axis=1)
    coef, _, rank, _ = np.linalg.lstsq(homog[idx], canonical[idx], rcond=None)
    if rank < 4:
        raise InputError("degenerate mesh: the rigid landmarks do not span 3D")
    out: F64 = homog @ coef
    return out
