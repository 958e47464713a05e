"""I3D (Kinetics-400, FVD-standard) clip features through onnxruntime.

``prepare_clip`` turns face crops into the network input; ``I3DFeatureExtractor`` runs the ONNX model built by
``streameval.models.i3d_export.build_i3d``. The time length is fixed at 16 frames (the FVD convention).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from streameval import imaging
from streameval.errors import InputError, ModelError
from streameval.models.base import FloatArray, Image
from streameval.models.i3d_export import (
    CLIP_LENGTH,
    IMAGE_SIZE,
    INPUT_NAME,
    NUM_CLASSES,
    ONNX_FILENAME,
    OUTPUT_NAMES,
    POOL_DIM,
)
from streameval.models.runtime import create_session

log = logging.getLogger(__name__)

__all__ = ["ONNX_FILENAME", "I3DFeatureExtractor", "prepare_clip", "resize_bilinear"]


def _axis_weights(src: int, dst: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Half-pixel-centre linear interpolation along one axis, clamped at the borders."""
    pos = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    pos = np.clip(pos, 0.0, src - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, src - 1)
    return lo, hi, pos - lo


def resize_bilinear(image: npt.NDArray[Any], height: int, width: int) -> npt.NDArray[np.float64]:
    """Bilinear resize of an (H, W, C) image to (height, width, C) in float64 (numpy; the reference of the
    OpenCV path, :func:`streameval.imaging.resize`, that ``prepare_clip`` uses).

    Half-pixel centres and edge clamping, no antialiasing: the convention of ``tf.image.resize(..., 'bilinear')``
    that FVD implementations use, and of OpenCV's INTER_LINEAR.
    """
    if image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"image must have shape (H, W, C) with H, W >= 1, got {image.shape}")
    if height < 1 or width < 1:
        raise InputError(f"target size must be positive, got {height}x{width}")
    y0, y1, fy = _axis_weights(image.shape[0], height)
    x0, x1, fx = _axis_weights(image.shape[1], width)
    img = image.astype(np.float64)
    top = img[y0][:, x0] * (1 - fx)[None, :, None] + img[y0][:, x1] * fx[None, :, None]
    bottom = img[y1][:, x0] * (1 - fx)[None, :, None] + img[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]


def prepare_clip(crops: Sequence[Image], image_size: int = IMAGE_SIZE) -> FloatArray:
    """RGB uint8 face crops (any sizes) -> one clip (T, image_size, image_size, 3) float32 in [-1, 1].

    Each crop is resized to a square bilinearly (``resize_bilinear``'s convention, in float32 through OpenCV;
    aspect ratio not kept: crop square boxes upstream if that matters) and scaled by ``x / 127.5 - 1``.
    """
    if len(crops) == 0:
        raise InputError("prepare_clip needs at least one crop")
    out = np.empty((len(crops), image_size, image_size, 3), np.float32)
    for i, crop in enumerate(crops):
        if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
            raise InputError(f"crop {i} must be RGB uint8 (H, W, 3), got {crop.dtype} {crop.shape}")
        out[i] = imaging.resize(crop, image_size, image_size, dtype=np.float32)
    out /= np.float32(127.5)
    out -= np.float32(1.0)
    return out


class I3DFeatureExtractor:
    """VideoFeatureExtractor for the I3D ONNX model: ``features(clips)`` -> {'pool': (B, 1024), 'logits': (B, 400)}.

    ``clips``: (B, 16, 224, 224, 3) float32 RGB in [-1, 1] (see ``prepare_clip``).
    """

    name = "i3d_kinetics400"
    clip_length = CLIP_LENGTH
    image_size = IMAGE_SIZE

    def __init__(self, model_path: Path, *, device: str = "auto", threads: int | None = None) -> None:
        self.model_path = Path(model_path)
        self._session = create_session(self.model_path, device=device, threads=threads, role="i3d")
        _check_signature(self._session, self.model_path)

    def features(self, clips: FloatArray) -> dict[str, FloatArray]:
        expected = (self.clip_length, self.image_size, self.image_size, 3)
        if clips.ndim != 5 or clips.shape[1:] != expected or clips.shape[0] < 1:
            raise InputError(f"clips must have shape (B, {', '.join(map(str, expected))}), got {clips.shape}")
        batch = np.ascontiguousarray(clips, dtype=np.float32)
        lo, hi = float(batch.min()), float(batch.max())
        if lo < -1.0 - 1e-3 or hi > 1.0 + 1e-3:
            raise InputError(f"clips must be scaled to [-1, 1], got values in [{lo:.3g}, {hi:.3g}]")
        try:
            outputs = self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
        except Exception as exc:  # onnxruntime raises untyped errors
            raise ModelError(f"I3D inference failed on {self.model_path}: {exc}") from exc
        return {name: np.asarray(value, np.float32) for name, value in zip(OUTPUT_NAMES, outputs, strict=True)}


def _check_signature(session: Any, path: Path) -> None:
    """Fail early, naming what we expect, when the file is some other network."""
    want = (
        f"one input '{INPUT_NAME}' of shape (batch, {CLIP_LENGTH}, {IMAGE_SIZE}, {IMAGE_SIZE}, 3) and outputs "
        f"'pool' (batch, {POOL_DIM}), 'logits' (batch, {NUM_CLASSES})"
    )
    inputs = session.get_inputs()
    outputs = {o.name: o.shape for o in session.get_outputs()}
    ok = (
        len(inputs) == 1
        and inputs[0].name == INPUT_NAME
        and list(inputs[0].shape[1:]) == [CLIP_LENGTH, IMAGE_SIZE, IMAGE_SIZE, 3]
        and set(outputs) == set(OUTPUT_NAMES)
        and outputs["pool"][1:] == [POOL_DIM]
        and outputs["logits"][1:] == [NUM_CLASSES]
    )
    if not ok:
        got = f"inputs {[(i.name, i.shape) for i in inputs]}, outputs {outputs}"
        raise ModelError(
            f"{path} is not the I3D model: expected {want}; got {got}. Rebuild it with 'streameval models build'"
        )
