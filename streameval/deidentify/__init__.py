"""Reference de-identifiers (blur, pixelation, black mask, face swap) and the bundled example videos."""

from __future__ import annotations

from streameval.deidentify.filters import blur_faces, mask_faces, pixelate_faces
from streameval.deidentify.methods import METHODS
from streameval.deidentify.swap import FaceSwapper
from streameval.deidentify.video import DeidStats, deidentify_video

__all__ = ["METHODS", "DeidStats", "FaceSwapper", "blur_faces", "deidentify_video", "mask_faces", "pixelate_faces"]
