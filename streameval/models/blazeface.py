"""BlazeFace (MediaPipe short-range face detector) pre- and post-processing in numpy.

The network sees a 128x128 RGB image scaled to [-1, 1] and predicts, for each of 896 fixed SSD anchors, one
score logit and 16 regressors: box centre offset, box size and six keypoints (right eye, left eye, nose tip,
mouth centre, right ear tragion, left ear tragion; "right" is the subject's right, i.e. the image's left for a
frontal face). Everything here follows the parameters of MediaPipe's ``face_detection_short_range`` graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

INPUT_SIZE = 128
NUM_KEYPOINTS = 6
# SSD anchor layout of the short-range model: 4 layers, strides 8/16/16/16, two anchors per layer and cell.
_STRIDES = (8, 16, 16, 16)
_ANCHORS_PER_LAYER = 2


def ssd_anchors(input_size: int = INPUT_SIZE, strides: tuple[int, ...] = _STRIDES) -> F32:
    """Anchor centres (N, 2) as x, y in [0, 1]; all anchors have unit size (MediaPipe's fixed_anchor_size).

    Consecutive layers with the same stride share one feature map, so their anchors are interleaved per cell:
    the cell loop is outside, the per-layer anchors inside.
    """
    centres: list[tuple[float, float]] = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 0
        while layer + same < len(strides) and strides[layer + same] == stride:
            same += 1
        fm = -(-input_size // stride)  # ceil
        per_cell = same * _ANCHORS_PER_LAYER
        for y in range(fm):
            for x in range(fm):
                centre = ((x + 0.5) / fm, (y + 0.5) / fm)
                centres.extend([centre] * per_cell)
        layer += same
    return np.asarray(centres, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class RawDetections:
    """Decoded candidates in the 128x128 input's normalised coordinates [0, 1]."""

    boxes: F32  # (N, 4) x0, y0, x1, y1
    keypoints: F32  # (N, K, 2)
    scores: F32  # (N,)


def decode(
    regressors: F32,
    logits: F32,
    anchors: F32,
    *,
    min_score: float = 0.5,
    input_size: int = INPUT_SIZE,
    clip: float = 100.0,
) -> RawDetections:
    """Turn raw outputs (N, 16) and (N,) or (N, 1) into candidate boxes above ``min_score``."""
    reg = np.asarray(regressors, dtype=np.float32).reshape(len(anchors), -1)
    raw = np.asarray(logits, dtype=np.float64).reshape(len(anchors))
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw, -clip, clip)))
    keep = scores >= min_score
    reg, anc, scores = reg[keep], anchors[keep], scores[keep]
    cx = reg[:, 0] / input_size + anc[:, 0]
    cy = reg[:, 1] / input_size + anc[:, 1]
    w = reg[:, 2] / input_size
    h = reg[:, 3] / input_size
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = reg[:, 4 : 4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) / input_size + anc[:, None, :]
    return RawDetections(boxes.astype(np.float32), kps.astype(np.float32), scores.astype(np.float32))


def _area(a: F64) -> F64:
    return np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)


def iou(box: F32 | F64, boxes: F32 | F64) -> F64:
    """Intersection over union of one box (4,) with each of ``boxes`` (N, 4); 0 where the union is empty."""
    b = np.asarray(box, dtype=np.float64)
    bs = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(b[2], bs[:, 2]) - np.maximum(b[0], bs[:, 0]), 0.0, None)
    iy = np.clip(np.minimum(b[3], bs[:, 3]) - np.maximum(b[1], bs[:, 1]), 0.0, None)
    inter = ix * iy
    union = _area(b) + _area(bs) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(raw: RawDetections, *, iou_threshold: float = 0.3) -> RawDetections:
    """MediaPipe's WEIGHTED non-maximum suppression.

    Take the best remaining candidate, gather every remaining candidate overlapping it by more than
    ``iou_threshold`` (itself included), and replace the group by its score-weighted mean box and keypoints,
    keeping the best score. Output is sorted best first.
    """
    order = np.argsort(-raw.scores, kind="stable")
    remaining = list(order)
    boxes: list[F64] = []
    kps: list[F64] = []
    scores: list[float] = []
    while remaining:
        idx = np.asarray(remaining)
        best = idx[0]
        overlap = iou(raw.boxes[best], raw.boxes[idx])
        group = idx[overlap > iou_threshold]
        if best not in group:  # a degenerate (zero-area) best box overlaps nothing, not even itself
            group = np.concatenate([[best], group])
        w = raw.scores[group].astype(np.float64)
        w = w / w.sum()
        boxes.append((raw.boxes[group].astype(np.float64) * w[:, None]).sum(axis=0))
        kps.append((raw.keypoints[group].astype(np.float64) * w[:, None, None]).sum(axis=0))
        scores.append(float(raw.scores[best]))
        grouped = set(group.tolist())
        remaining = [i for i in remaining if i not in grouped]
    k = raw.keypoints.shape[1] if raw.keypoints.ndim == 3 else NUM_KEYPOINTS
    return RawDetections(
        np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        np.asarray(kps, dtype=np.float32).reshape(-1, k, 2),
        np.asarray(scores, dtype=np.float32),
    )
