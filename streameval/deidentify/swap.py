"""Reference face swap: the target portrait's face texture warped onto each frame's face mesh.

The target's 468-point mesh is triangulated once (Delaunay); per frame, every triangle of the target texture is
mapped affinely onto the same triangle of the frame's mesh, so the pasted face takes the frame's pose and
expression (mouth, brows, eyelids) while keeping the target's skin, eyes and features. The frame's own mouth
opening (inside the inner lips) is kept, so teeth and an open mouth stay visible. The paste is blended with a
mask feathered inwards from the face outline, after an optional colour transfer to the frame's face.

This is a simple reference for tests and examples, not a production face swapper: no 3D model, no relighting,
no temporal smoothing, and hair, ears and face shape outside the mesh stay the source's.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy.spatial import Delaunay

from streameval.deidentify.colour import match_colour
from streameval.deidentify.mesh_topology import INNER_LIPS, check_landmarks, interocular
from streameval.deidentify.piecewise import piecewise_affine_warp, polygon_mask
from streameval.errors import InputError
from streameval.models.base import FaceDetector, Image, Landmarker
from streameval.models.face_detector import check_image

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]


def mesh_triangles(points: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """Delaunay triangles of a (468, 2) mesh, without those spanning the mouth opening (all corners inner lip)."""
    pts = check_landmarks(points)
    tris = np.asarray(Delaunay(pts).simplices, dtype=np.int32)
    lips = np.isin(tris, INNER_LIPS).all(axis=1)
    return tris[~lips]


def find_landmarks(image: Image, detector: FaceDetector, landmarker: Landmarker) -> F64 | None:
    """Mesh of the best face in ``image``, or None when the detector finds none."""
    faces = detector.detect(image)
    if not faces:
        return None
    return np.asarray(landmarker.landmarks(image, faces[0]), dtype=np.float64)


class FaceSwapper:
    """Paste the face of ``target`` (RGB uint8 portrait) onto frames, following each frame's face mesh.

    ``target_landmarks`` is the target's (468, 2|3) mesh; when omitted it is found with ``detector`` and
    ``landmarker`` (default: the zoo's BlazeFace and face mesh). ``feather`` is the width of the blend ramp
    at the face outline as a fraction of the inter-ocular distance; ``colour_transfer`` matches the pasted
    face's YCbCr mean and std to the frame's face.
    """

    def __init__(
        self,
        target: Image,
        *,
        target_landmarks: npt.ArrayLike | None = None,
        detector: FaceDetector | None = None,
        landmarker: Landmarker | None = None,
        feather: float = 0.25,
        colour_transfer: bool = True,
    ) -> None:
        check_image(target)
        if not (math.isfinite(feather) and feather >= 0):
            raise ValueError(f"feather must be a finite number >= 0, got {feather!r}")
        if target_landmarks is None:
            if detector is None or landmarker is None:
                from streameval.models.loaders import load_detector, load_landmarker

                detector = detector or load_detector()
                landmarker = landmarker or load_landmarker()
            found = find_landmarks(target, detector, landmarker)
            if found is None:
                raise InputError("no face found in the face-swap target image")
            target_landmarks = found
        pts = check_landmarks(target_landmarks)
        # Keep only the target's face area (plus a margin for bilinear taps): less to filter per frame.
        h, w = target.shape[:2]
        x0 = max(0, math.floor(pts[:, 0].min()) - 4)
        y0 = max(0, math.floor(pts[:, 1].min()) - 4)
        x1 = min(w, math.ceil(pts[:, 0].max()) + 4)
        y1 = min(h, math.ceil(pts[:, 1].max()) + 4)
        self._texture = target[y0:y1, x0:x1].astype(np.float64)
        self._points = pts - (x0, y0)
        self._triangles = mesh_triangles(pts)
        self._scale = interocular(pts)
        self.feather = feather
        self.colour_transfer = colour_transfer

    @property
    def triangles(self) -> npt.NDArray[np.int32]:
        return self._triangles

    def _texture_for(self, scale: float) -> F64:
        """The target texture low-passed for a ``scale``-fold shrink, so bilinear sampling does not alias."""
        if scale <= 1.0:
            return self._texture
        sigma = 0.5 * math.sqrt(scale * scale - 1.0)
        return np.asarray(ndimage.gaussian_filter(self._texture, sigma=(sigma, sigma, 0)), dtype=np.float64)

    def swap(self, image: Image, landmarks: npt.ArrayLike) -> Image:
        """``image`` with the target's face warped onto the face whose (468, 2|3) mesh is ``landmarks``."""
        check_image(image)
        dst = check_landmarks(landmarks)
        h, w = image.shape[:2]
        # Work in the face's bounding box only.
        x0 = max(0, math.floor(dst[:, 0].min()) - 1)
        y0 = max(0, math.floor(dst[:, 1].min()) - 1)
        x1 = min(w, math.ceil(dst[:, 0].max()) + 1)
        y1 = min(h, math.ceil(dst[:, 1].max()) + 1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return image.copy()
        local = dst - (x0, y0)
        ch, cw = y1 - y0, x1 - x0
        texture = self._texture_for(self._scale / max(interocular(dst), 1e-6))
        warped, labels = piecewise_affine_warp(texture, self._points, local, self._triangles, ch, cw)
        mask = (labels >= 0) & ~polygon_mask(local[list(INNER_LIPS)], ch, cw)
        if not mask.any():
            return image.copy()
        frame = image[y0:y1, x0:x1].astype(np.float64)
        if self.colour_transfer:
            warped[mask] = match_colour(warped[mask], frame[mask])
        ramp = max(1.0, self.feather * interocular(dst))
        # Distance to the nearest pixel outside the mask, so the ramp runs inwards from the outline and the mouth.
        inside = np.pad(mask, 1)  # pixels beyond the crop count as outside
        dist = ndimage.distance_transform_edt(inside)[1:-1, 1:-1]
        alpha = np.clip(dist / ramp, 0.0, 1.0)[..., None]
        blended = alpha * warped + (1.0 - alpha) * frame
        out = image.copy()
        out[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        return out
