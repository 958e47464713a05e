"""Face detector: MediaPipe BlazeFace short-range (ONNX) with letterboxing and an optional tiled second pass."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from streameval import imaging
from streameval.errors import InputError
from streameval.models import blazeface
from streameval.models.base import Detection, Image
from streameval.models.warp import F32

log = logging.getLogger(__name__)


def check_image(image: Image) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", None)
        raise InputError(f"expected an RGB uint8 image of shape (H, W, 3), got shape {shape} dtype {dtype}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise InputError(f"image too small: {image.shape}")


def letterbox(image: Image, size: int = blazeface.INPUT_SIZE) -> tuple[F32, float, float, float]:
    """Fit the whole image into a ``size`` square (aspect kept, black padding); values in [0, 255].

    Returns the square and the mapping: a source pixel point p sits at ``p * scale + (pad_x, pad_y)``.
    See :func:`streameval.imaging.letterbox` (box filter first when shrinking more than 2x).
    """
    return imaging.letterbox(image, size)


class BlazeFaceDetector:
    """:class:`~streameval.models.base.FaceDetector` over the converted BlazeFace short-range model.

    Short-range BlazeFace is tuned for faces that fill a good part of the frame (roughly 20% of the longer side
    or more after letterboxing). With ``tiles`` > 1, frames in which the whole-frame pass finds nothing are
    searched again in ``tiles`` x ``tiles`` overlapping squares, which finds smaller faces at a higher cost.
    """

    name = "blazeface_short_range"

    def __init__(
        self,
        session: Any,
        *,
        min_score: float = 0.5,
        iou_threshold: float = 0.3,
        tiles: int = 1,
        min_face_fraction: float = 0.0,
    ) -> None:
        if not 0.0 < min_score < 1.0:
            raise ValueError(f"min_score must be in (0, 1), got {min_score!r}")
        if tiles < 1:
            raise ValueError(f"tiles must be >= 1, got {tiles!r}")
        self._session = session
        self._input = session.get_inputs()[0].name
        names = [o.name for o in session.get_outputs()]
        self._outputs = [n for n in names if "regressors" in n] + [n for n in names if "classificators" in n]
        if len(self._outputs) != 2:
            self._outputs = names[:2]
        self._anchors = blazeface.ssd_anchors()
        self.min_score = min_score
        self.iou_threshold = iou_threshold
        self.tiles = tiles
        self.min_face_fraction = min_face_fraction

    def raw(self, square: F32) -> tuple[F32, F32]:
        """Network outputs for one 128x128 square in [0, 255]: regressors (896, 16), logits (896,)."""
        x = (square / 127.5 - 1.0).astype(np.float32)[None]
        reg, cls = self._session.run(self._outputs, {self._input: x})
        return np.asarray(reg, np.float32)[0], np.asarray(cls, np.float32).reshape(-1)

    def _candidates(self, image: Image) -> blazeface.RawDetections:
        """Decoded candidates of one letterboxed pass, in source pixel coordinates."""
        square, scale, pad_x, pad_y = letterbox(image)
        reg, cls = self.raw(square)
        raw = blazeface.decode(reg, cls, self._anchors, min_score=self.min_score)
        size = blazeface.INPUT_SIZE
        offset = np.array([pad_x, pad_y], np.float32)
        boxes = (raw.boxes.reshape(-1, 2, 2) * size - offset) / scale
        kps = (raw.keypoints * size - offset) / scale
        return blazeface.RawDetections(boxes.reshape(-1, 4).astype(np.float32), kps.astype(np.float32), raw.scores)

    def _tiled_candidates(self, image: Image) -> blazeface.RawDetections:
        h, w = image.shape[:2]
        side = round(max(h, w) * 2 / (self.tiles + 1))  # tiles overlap by half a tile
        step_x = max(1, (w - side) // max(1, self.tiles - 1)) if w > side else 0
        step_y = max(1, (h - side) // max(1, self.tiles - 1)) if h > side else 0
        parts = []
        for ty in range(self.tiles if h > side else 1):
            for tx in range(self.tiles if w > side else 1):
                x0, y0 = min(tx * step_x, max(0, w - side)), min(ty * step_y, max(0, h - side))
                tile = np.ascontiguousarray(image[y0 : y0 + side, x0 : x0 + side])
                raw = self._candidates(tile)
                shift = np.array([x0, y0], np.float32)
                parts.append(
                    blazeface.RawDetections(
                        (raw.boxes.reshape(-1, 2, 2) + shift).reshape(-1, 4), raw.keypoints + shift, raw.scores
                    )
                )
        return blazeface.RawDetections(
            np.concatenate([p.boxes for p in parts]).reshape(-1, 4),
            np.concatenate([p.keypoints for p in parts]).reshape(-1, blazeface.NUM_KEYPOINTS, 2),
            np.concatenate([p.scores for p in parts]),
        )

    def detect(self, image: Image) -> list[Detection]:
        """All faces, best first; boxes and the six keypoints in image pixels."""
        check_image(image)
        cands = self._candidates(image)
        if len(cands.scores) == 0 and self.tiles > 1:
            cands = self._tiled_candidates(image)
        merged = blazeface.weighted_nms(cands, iou_threshold=self.iou_threshold)
        h, w = image.shape[:2]
        out: list[Detection] = []
        for box, kps, score in zip(merged.boxes, merged.keypoints, merged.scores, strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            if (x1 - x0) < self.min_face_fraction * max(h, w):
                continue
            out.append(Detection(box=(x0, y0, x1, y1), score=float(score), keypoints=kps.astype(np.float32)))
        return out
