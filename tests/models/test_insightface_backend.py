"""insightface backend plumbing on small ONNX models of the buffalo_l signatures, with hand-computed outputs.

The fake SCRFD's scores depend on the input colour, its boxes decode to known pixels; the fake ArcFace is a
known linear map of its aligned input, and the alignment is checked against our own similarity fit of the
ArcFace template on an image whose pixels are a linear function of position (so bilinear resampling is exact).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streameval.errors import InputError, ModelError
from streameval.models.base import Detection, Embedder, FaceDetector

pytest.importorskip("insightface")
pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from streameval.models.insightface_backend import (  # noqa: E402
    ArcFaceEmbedder,
    InsightFaceDetector,
    cosine_distance,
    five_points,
)

# ---------------------------------------------------------------- fake SCRFD (det_10g: 9 outputs, 2 anchors)

CANVAS = 640
STRIDES = (8, 16, 32)


def _anchor(stride: int, row: int, col: int, anchor: int) -> int:
    return (row * (CANVAS // stride) + col) * 2 + anchor


MAIN = (16, _anchor(16, 10, 12, 0))  # centre (192, 160) on the 640 canvas; score 0.9 * mean of the red channel
DUPLICATE = (16, _anchor(16, 10, 13, 0))  # centre (208, 160), score 0.8: overlaps MAIN, removed by NMS
SECOND = (32, _anchor(32, 15, 4, 1))  # centre (128, 480), score 0.7
WEAK = (8, _anchor(8, 3, 3, 0))  # score 0.3, under the 0.5 threshold
KPS_MAIN = np.array([[-1, -1], [1, -1], [0, 0.5], [-0.8, 1.5], [0.8, 1.5]], np.float32)  # in stride units


def _save(path: Path, nodes: list, inputs: list, outputs: list, inits: list) -> Path:
    graph = helper.make_graph(nodes, "fake", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    onnx.save(model, str(path))
    return path


def _fake_scrfd(path: Path) -> Path:
    nodes = [
        helper.make_node("Slice", ["input.1", "c0", "c1", "ax"], ["red"]),
        helper.make_node("ReduceMean", ["red"], ["red_mean"], keepdims=0),
    ]
    inits = [numpy_helper.from_array(np.array([v], np.int64), n) for n, v in (("c0", 0), ("c1", 1), ("ax", 1))]
    outputs = []
    for kind, width in (("score", 1), ("bbox", 4), ("kps", 10)):
        for stride in STRIDES:
            n = (CANVAS // stride) ** 2 * 2
            base = np.zeros((n, width), np.float32)
            name = f"{kind}_{stride}"
            if kind == "score":
                gain = np.zeros((n, 1), np.float32)
                for s, idx, value in ((*DUPLICATE, 0.8), (*SECOND, 0.7), (*WEAK, 0.3)):
                    if s == stride:
                        base[idx] = value
                if MAIN[0] == stride:
                    gain[MAIN[1]] = 0.9
                inits += [numpy_helper.from_array(base, f"{name}_b"), numpy_helper.from_array(gain, f"{name}_g")]
                nodes += [
                    helper.make_node("Mul", [f"{name}_g", "red_mean"], [f"{name}_m"]),
                    helper.make_node("Add", [f"{name}_b", f"{name}_m"], [name]),
                ]
            else:
                for s, idx in (MAIN, DUPLICATE):
                    if s == stride:
                        base[idx] = [2, 3, 4, 5] if kind == "bbox" else KPS_MAIN.ravel()
                if SECOND[0] == stride:
                    base[SECOND[1]] = [1, 1, 1, 1] if kind == "bbox" else 0
                inits.append(numpy_helper.from_array(base, f"{name}_c"))
                nodes.append(helper.make_node("Identity", [f"{name}_c"], [name]))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, width]))
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, CANVAS, CANVAS])
    return _save(path, nodes, [image], outputs, inits)


@pytest.fixture
def scrfd_path(tmp_path: Path) -> Path:
    return _fake_scrfd(tmp_path / "det_fake.onnx")


def test_detector_decodes_known_boxes_and_keypoints(scrfd_path: Path) -> None:
    detector = InsightFaceDetector(scrfd_path, device="cpu")
    assert isinstance(detector, FaceDetector)
    red = np.zeros((320, 320, 3), np.uint8)
    red[..., 0] = 255
    faces = detector.detect(red)
    # 320 -> 640 canvas: det_scale 2. MAIN: centre (192, 160) +- (2, 3, 4, 5) * 16, halved.
    assert len(faces) == 2
    main, second = faces
    assert main.score == pytest.approx(0.9 * (255 - 127.5) / 128.0, abs=1e-6)  # red channel read as red
    np.testing.assert_allclose(main.box, (80, 56, 128, 120), atol=1e-4)
    np.testing.assert_allclose(main.keypoints, (np.array([192, 160]) + KPS_MAIN * 16) / 2, atol=1e-4)
    assert second.score == pytest.approx(0.7)
    np.testing.assert_allclose(second.box, (48, 224, 80, 256), atol=1e-4)
    np.testing.assert_allclose(second.keypoints, np.tile([[64, 240]], (5, 1)), atol=1e-4)


def test_detector_reads_rgb_not_bgr(scrfd_path: Path) -> None:
    blue = np.zeros((320, 320, 3), np.uint8)
    blue[..., 2] = 255  # red channel at 0 -> main score 0.9 * (-127.5 / 128) < threshold
    faces = InsightFaceDetector(scrfd_path, device="cpu").detect(blue)
    assert [round(f.score, 6) for f in faces] == [0.8, 0.7]  # the duplicate is no longer suppressed


# ---------------------------------------------------------------- fake ArcFace (w600k_r50: 112x112 -> D)

ARCFACE_TEMPLATE = np.array(  # the standard ArcFace five-point template for 112x112 crops
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
DIM = 8
RAMP = np.array([[0.5, 0.2, 10.0], [0.3, 0.1, 40.0], [-0.4, -0.1, 200.0]])  # channel = a*x + b*y + c


def _fake_arcface(path: Path, weight: np.ndarray, bias: np.ndarray) -> Path:
    nodes = [
        helper.make_node("AveragePool", ["data"], ["pooled"], kernel_shape=[16, 16], strides=[16, 16], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "w", "b"], ["fc1"], name="gemm"),
    ]
    inits = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")]
    data = helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 112, 112])
    out = helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["N", DIM])
    return _save(path, nodes, [data], [out], inits)


@pytest.fixture
def arcface(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(3 * 7 * 7, DIM)).astype(np.float32)
    bias = rng.normal(size=DIM).astype(np.float32)
    return _fake_arcface(tmp_path / "w_fake.onnx", weight, bias), weight, bias


def _ramp_image(size: int = 300) -> np.ndarray:
    y, x = np.mgrid[:size, :size].astype(np.float64)
    return np.stack([a * x + b * y + c for a, b, c in RAMP], axis=-1)


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity src -> dst (Umeyama), as a 2x3 matrix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    fix = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ fix @ vt
    scale = np.trace(np.diag(sig) @ fix) / (s**2).sum(1).mean()
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])


def _expected_embedding(points: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    m = _similarity(points, ARCFACE_TEMPLATE)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    v, u = np.mgrid[:112, :112].astype(np.float64)
    src = inv @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])
    aligned = np.stack([a * src[0] + b * src[1] + c for a, b, c in RAMP], axis=-1).reshape(112, 112, 3)
    blob = (aligned - 127.5) / 127.5  # ArcFace preprocessing of a non-mxnet model, RGB order
    pooled = blob.reshape(7, 16, 7, 16, 3).mean(axis=(1, 3)).transpose(2, 0, 1).ravel()
    return pooled @ weight.astype(np.float64) + bias


def _face_points(angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return ARCFACE_TEMPLATE @ rot.T * scale + np.array(shift)


def test_embedding_is_the_known_linear_map_of_the_aligned_face(arcface: tuple[Path, np.ndarray, np.ndarray]) -> None:
    path, weight, bias = arcface
    embedder = ArcFaceEmbedder(path, device="cpu")
    assert isinstance(embedder, Embedder)
    image = np.round(_ramp_image()).astype(np.uint8)
    points = _face_points(12.0, 1.5, (60.0, 40.0))
    detection = Detection(box=(0, 0, 1, 1), score=1.0, keypoints=points.astype(np.float32))
    got = embedder.embed(image, detection, None)
    expected = _expected_embedding(points, weight, bias)
    assert got.shape == (DIM,) and got.dtype == np.float32
    # uint8 rounding (<= 0.5 grey) and cv2's 1/32-pixel warp grid bound the error well below 0.02
    np.testing.assert_allclose(got, expected, atol=0.02)
    # a wrongly oriented alignment would be far off: the same face without rotation gives other values
    assert np.abs(_expected_embedding(_face_points(0.0, 1.5, (60.0, 40.0)), weight, bias) - got).max() > 0.1


def test_embedder_aligns_from_a_face_mesh_when_the_detector_gives_no_five_points(
    arcface: tuple[Path, np.ndarray, np.ndarray],
) -> None:
    path, weight, bias = arcface
    embedder = ArcFaceEmbedder(path, device="cpu")
    image = np.round(_ramp_image()).astype(np.uint8)
    points = _face_points(-8.0, 1.4, (70.0, 50.0))
    mesh = np.zeros((468, 3), np.float32)
    mesh[[33, 133], :2] = points[0] + np.array([[-5, 1], [5, -1]])  # eye corners around the eye centre
    mesh[[362, 263], :2] = points[1] + np.array([[-4, 0], [4, 0]])
    mesh[1, :2], mesh[61, :2], mesh[291, :2] = points[2], points[3], points[4]
    blazeface = Detection(box=(0, 0, 1, 1), score=1.0, keypoints=np.zeros((6, 2), np.float32))
    got = embedder.embed(image, blazeface, mesh)
    np.testing.assert_allclose(got, _expected_embedding(points, weight, bias), atol=0.02)
    with pytest.raises(InputError, match="five keypoints"):
        embedder.embed(image, blazeface, None)


def test_five_points_prefers_detector_keypoints() -> None:
    kps = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_array_equal(five_points(Detection((0, 0, 1, 1), 1.0, kps), np.ones((468, 3))), kps)


def test_cosine_distance_and_threshold(arcface: tuple[Path, np.ndarray, np.ndarray]) -> None:
    a, b = np.array([1.0, 0.0, 1.0]), np.array([0.0, 2.0, 2.0])
    assert cosine_distance(a, b) == pytest.approx(1 - 2 / (np.sqrt(2) * np.sqrt(8)))
    assert cosine_distance(a, -a) == pytest.approx(2.0)
    with pytest.raises(InputError):
        cosine_distance(a, np.zeros(3))
    embedder = ArcFaceEmbedder(arcface[0], device="cpu", threshold=0.35)
    assert (embedder.metric, embedder.threshold) == ("cosine", 0.35)
    assert ArcFaceEmbedder(arcface[0], device="cpu").threshold == 0.6


def test_wrong_files_name_the_expected_signature(
    scrfd_path: Path, arcface: tuple[Path, np.ndarray, np.ndarray]
) -> None:
    with pytest.raises(ModelError, match=r"not an ArcFace embedder .*expected one input \(N, 3, 112, 112\)"):
        ArcFaceEmbedder(scrfd_path, device="cpu")
    with pytest.raises(ModelError, match=r"not an SCRFD face detector .*6, 9, 10 or 15 outputs"):
        InsightFaceDetector(arcface[0], device="cpu")
