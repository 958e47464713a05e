"""BlazeFace anchors, decoding, IoU and weighted NMS against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from streameval.models import blazeface as bf


def test_anchor_layout_matches_the_short_range_graph() -> None:
    anchors = bf.ssd_anchors()
    assert anchors.shape == (896, 2)  # 16*16*2 + 8*8*6
    # stride 8: 16x16 cells, two anchors per cell, row-major over cells
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[1], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[2 * 16], [0.5 / 16, 1.5 / 16])
    # the three stride-16 layers share one 8x8 map: six anchors per cell
    np.testing.assert_allclose(anchors[512:518], np.tile([0.5 / 8, 0.5 / 8], (6, 1)))
    np.testing.assert_allclose(anchors[518], [1.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def test_decode_hand_computed() -> None:
    anchors = np.array([[0.25, 0.5], [0.75, 0.75]], np.float32)
    reg = np.zeros((2, 16), np.float32)
    # centre shifted by (+12.8, -6.4) px of 128 = (+0.1, -0.05); size 64 x 32 px = 0.5 x 0.25
    reg[0, :4] = [12.8, -6.4, 64.0, 32.0]
    reg[0, 4:6] = [-12.8, 0.0]  # first keypoint 0.1 left of the anchor
    logits = np.array([np.log(0.9 / 0.1), np.log(0.2 / 0.8)], np.float32)  # sigmoid -> 0.9, 0.2
    raw = bf.decode(reg, logits, anchors, min_score=0.5)
    assert raw.scores.shape == (1,)
    assert raw.scores[0] == pytest.approx(0.9, abs=1e-6)
    np.testing.assert_allclose(raw.boxes[0], [0.35 - 0.25, 0.45 - 0.125, 0.35 + 0.25, 0.45 + 0.125], atol=1e-6)
    np.testing.assert_allclose(raw.keypoints[0, 0], [0.15, 0.5], atol=1e-6)
    np.testing.assert_allclose(raw.keypoints[0, 1:], np.tile([0.25, 0.5], (5, 1)), atol=1e-6)


def test_iou_hand_computed() -> None:
    box = np.array([0, 0, 2, 2], np.float32)
    others = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6], [0, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(bf.iou(box, others), [1 / 7, 1.0, 0.0, 0.0])


def test_weighted_nms_averages_overlapping_candidates() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10.5]], np.float32)
    kps = np.stack([np.full((6, 2), v, np.float32) for v in (1.0, 3.0, 55.0, 2.0)])
    scores = np.array([0.9, 0.6, 0.7, 0.3], np.float32)
    out = bf.weighted_nms(bf.RawDetections(boxes, kps, scores), iou_threshold=0.3)
    # group 1: candidates 0 (0.9), 1 (iou 81/119 = 0.68), 3 (iou 100/105): weights 0.9, 0.6, 0.3 of 1.8
    w = np.array([0.9, 0.6, 0.3]) / 1.8
    np.testing.assert_allclose(out.boxes[0], w @ boxes[[0, 1, 3]], rtol=1e-6)
    np.testing.assert_allclose(out.keypoints[0], np.full((6, 2), w @ [1.0, 3.0, 2.0]), rtol=1e-6)
    np.testing.assert_allclose(out.scores, [0.9, 0.7])
    np.testing.assert_allclose(out.boxes[1], boxes[2])
    assert len(out.boxes) == 2


def test_weighted_nms_keeps_separate_faces_and_handles_empty() -> None:
    empty = bf.RawDetections(np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0, np.float32))
    assert len(bf.weighted_nms(empty).scores) == 0
    boxes = np.array([[0, 0, 10, 10], [8, 0, 18, 10]], np.float32)  # iou 20/180 = 0.11 < 0.3
    out = bf.weighted_nms(bf.RawDetections(boxes, np.zeros((2, 6, 2), np.float32), np.array([0.6, 0.8], np.float32)))
    np.testing.assert_allclose(out.boxes, boxes[[1, 0]])
