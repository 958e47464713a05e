"""Reference de-identifiers (blur, pixelation, black mask, face swap) and the bundled example videos.

The names below load on first use (PEP 562), so importing a light submodule such as ``deidentify.cli`` for
the command line's help does not import numpy, scipy and the face models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streameval.deidentify.filters import blur_faces, mask_faces, pixelate_faces
    from streameval.deidentify.methods import METHODS
    from streameval.deidentify.swap import FaceSwapper
    from streameval.deidentify.video import DeidStats, deidentify_video

_WHERE = {
    "METHODS": "defaults",
    "DeidStats": "video",
    "FaceSwapper": "swap",
    "blur_faces": "filters",
    "deidentify_video": "video",
    "mask_faces": "filters",
    "pixelate_faces": "filters",
}

__all__ = ["METHODS", "DeidStats", "FaceSwapper", "blur_faces", "deidentify_video", "mask_faces", "pixelate_faces"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
