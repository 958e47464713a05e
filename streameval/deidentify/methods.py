"""The de-identification methods by name: each turns its options into a per-frame processor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from streameval.deidentify.defaults import METHODS, OPTIONS
from streameval.deidentify.filters import blur_faces, mask_faces, pixelate_faces
from streameval.deidentify.swap import FaceSwapper
from streameval.errors import UsageError
from streameval.models.base import FaceDetector, Image, Landmarker

__all__ = ["METHODS", "OPTIONS", "FrameProcessor", "FrameResult", "check_method", "make_processor"]


@dataclass(frozen=True, slots=True)
class FrameResult:
    image: Image
    faces: int  # faces processed in this frame (0: passed through unchanged)


FrameProcessor = Callable[[Image], FrameResult]


def check_method(method: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The method's full option set (defaults filled in); UsageError for an unknown method or option."""
    if method not in OPTIONS:
        raise UsageError(f"unknown de-identification method {method!r}; choose one of {', '.join(METHODS)}")
    unknown = sorted(set(options) - set(OPTIONS[method]))
    if unknown:
        raise UsageError(
            f"method {method!r} takes no option(s) {', '.join(unknown)}; "
            f"it takes {', '.join(OPTIONS[method]) or 'none'}"
        )
    return {**OPTIONS[method], **options}


def make_processor(
    method: str, options: Mapping[str, Any], detector: FaceDetector, landmarker: Landmarker | None
) -> FrameProcessor:
    """Per-frame processor for ``method``; faces come from ``detector`` (and ``landmarker`` for the swap)."""
    opts = check_method(method, options)
    try:
        if method == "blur":
            blur_faces(np.zeros((2, 2, 3), np.uint8), [], **opts)  # validate options before the first frame

            def blur(image: Image) -> FrameResult:
                faces = detector.detect(image)
                return FrameResult(blur_faces(image, faces, **opts) if faces else image, len(faces))

            return blur
        if method == "pixelate":
            pixelate_faces(np.zeros((2, 2, 3), np.uint8), [], **opts)

            def pixelate(image: Image) -> FrameResult:
                faces = detector.detect(image)
                return FrameResult(pixelate_faces(image, faces, **opts) if faces else image, len(faces))

            return pixelate
        if method == "mask":
            mask_faces(np.zeros((2, 2, 3), np.uint8), [], **opts)

            def mask(image: Image) -> FrameResult:
                faces = detector.detect(image)
                return FrameResult(mask_faces(image, faces, **opts) if faces else image, len(faces))

            return mask
    except ValueError as exc:
        raise UsageError(f"{method}: {exc}") from exc
    return _swap_processor(opts, detector, landmarker)


def _swap_processor(opts: Mapping[str, Any], detector: FaceDetector, landmarker: Landmarker | None) -> FrameProcessor:
    if landmarker is None:
        raise UsageError("the swap method needs a landmarker")
    target = opts["target"]
    if target is None:
        from streameval.datasets import astronaut

        target = astronaut()
    try:
        swapper = FaceSwapper(
            np.asarray(target),
            detector=detector,
            landmarker=landmarker,
            feather=float(opts["feather"]),
            colour_transfer=bool(opts["colour_transfer"]),
        )
    except ValueError as exc:
        raise UsageError(f"swap: {exc}") from exc

    def swap(image: Image) -> FrameResult:
        faces = detector.detect(image)
        if not faces:
            return FrameResult(image, 0)
        return FrameResult(swapper.swap(image, landmarker.landmarks(image, faces[0])), 1)

    return swap
