"""The TF.js graph -> ONNX converter, op by op, against plain numpy references of TensorFlow's semantics.

Each test writes a tiny TF.js graph model (model.json + a weight shard, as the TF.js converter lays them out),
converts it, runs it on onnxruntime and compares with a numpy reference written from TensorFlow's op
definitions (NHWC, SAME padding with the odd cell after, depthwise channel order c * multiplier + m).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from streameval.errors import ModelError
from streameval.models import tfjs_onnx

F32 = npt.NDArray[np.float32]
RNG = np.random.default_rng(7)


def _s(text: str) -> dict[str, str]:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(values: list[int]) -> dict[str, Any]:
    return {"list": {"i": [str(v) for v in values]}}


class GraphWriter:
    """Builds a TF.js graph model: nodes, and constants stored in one shard (float16 or float32)."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        self.nodes: list[dict[str, Any]] = [{"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}}}]
        self.weights: list[dict[str, Any]] = []
        self.blob = b""
        self.input_shape = input_shape

    def const(self, name: str, value: npt.NDArray[Any], quant: str | None = None) -> str:
        spec: dict[str, Any] = {"name": name, "shape": list(value.shape)}
        if value.dtype == np.int32:
            spec["dtype"] = "int32"
            self.blob += value.tobytes()
        elif quant == "float16":
            spec |= {"dtype": "float32", "quantization": {"dtype": "float16", "original_dtype": "float32"}}
            self.blob += value.astype(np.float16).tobytes()
        elif quant == "uint8":
            lo, hi = float(value.min()), float(value.max())
            scale = (hi - lo) / 255
            q = np.round((value - lo) / scale).astype(np.uint8)
            spec |= {"dtype": "float32", "quantization": {"dtype": "uint8", "min": lo, "scale": scale}}
            self.blob += q.tobytes()
        else:
            spec["dtype"] = "float32"
            self.blob += value.astype(np.float32).tobytes()
        self.weights.append(spec)
        self.nodes.append({"name": name, "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}}})
        return name

    def node(self, name: str, op: str, inputs: list[str], **attr: Any) -> str:
        self.nodes.append({"name": name, "op": op, "input": inputs, "attr": attr})
        return name

    def convert(self, tmp: Path, output: str) -> Any:
        doc = {
            "format": "graph-model",
            "modelTopology": {"node": self.nodes},
            "weightsManifest": [{"paths": ["w.bin"], "weights": self.weights}],
        }
        (tmp / "model.json").write_text(json.dumps(doc))
        (tmp / "w.bin").write_bytes(self.blob)
        graph = tfjs_onnx.read_graph_model(tmp / "model.json")
        return tfjs_onnx.to_onnx(graph, {"x": self.input_shape}, {output: "y"})


def run(model: Any, x: F32) -> F32:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(["y"], {"x": x})
    return np.asarray(y, np.float32)


def conv_reference(
    x: F32,
    kernel: F32,
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    dil: tuple[int, int],
    depthwise: bool,
) -> F32:
    """NHWC convolution by direct summation (pads: top, bottom, left, right)."""
    n, h, w, c = x.shape
    kh, kw = kernel.shape[:2]
    xp = np.pad(x.astype(np.float64), ((0, 0), pads[:2], pads[2:], (0, 0)))
    oh = (h + pads[0] + pads[1] - (kh - 1) * dil[0] - 1) // strides[0] + 1
    ow = (w + pads[2] + pads[3] - (kw - 1) * dil[1] - 1) // strides[1] + 1
    mult = kernel.shape[3]
    out = np.zeros((n, oh, ow, c * mult if depthwise else mult))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    patch = xp[:, i * strides[0] + a * dil[0], j * strides[1] + b * dil[1], :]  # (n, c)
                    k = kernel[a, b].astype(np.float64)  # (c, mult)
                    if depthwise:
                        out[:, i, j, :] += (patch[:, :, None] * k[None]).reshape(n, c * mult)
                    else:
                        out[:, i, j, :] += patch @ k
    return out.astype(np.float32)


@pytest.mark.parametrize(
    ("padding", "strides", "dilations", "size", "explicit"),
    [
        ("SAME", (2, 2), (1, 1), 9, None),  # odd size, stride 2: TF puts the extra padding cell after
        ("SAME", (1, 1), (2, 2), 8, None),
        ("VALID", (2, 1), (1, 1), 9, None),
        ("EXPLICIT", (1, 2), (1, 1), 7, (1, 2, 0, 1)),
    ],
)
@pytest.mark.parametrize("depthwise", [False, True])
def test_convolutions(
    tmp_path: Path,
    padding: str,
    strides: tuple[int, int],
    dilations: tuple[int, int],
    size: int,
    explicit: tuple[int, int, int, int] | None,
    depthwise: bool,
) -> None:
    x = RNG.normal(size=(2, size, size + 1, 3)).astype(np.float32)
    kernel = RNG.normal(size=(3, 3, 3, 2 if depthwise else 4)).astype(np.float32)
    g = GraphWriter((-1, size, size + 1, 3))
    attr: dict[str, Any] = {
        "padding": _s(padding),
        "strides": _ints([1, *strides, 1]),
        "dilations": _ints([1, *dilations, 1]),
        "data_format": _s("NHWC"),
    }
    if explicit is not None:
        attr["explicit_paddings"] = _ints([0, 0, explicit[0], explicit[1], explicit[2], explicit[3], 0, 0])
    op = "DepthwiseConv2dNative" if depthwise else "Conv2D"
    g.node("conv", op, ["x", g.const("k", kernel)], **attr)
    y = run(g.convert(tmp_path, "conv"), x)
    if padding == "SAME":  # TF: total = max((ceil(n/s) - 1) * s + (k - 1) * d + 1 - n, 0), extra cell after
        pads = []
        for n, s, d in ((size, strides[0], dilations[0]), (size + 1, strides[1], dilations[1])):
            total = max((-(-n // s) - 1) * s + 2 * d + 1 - n, 0)
            pads += [total // 2, total - total // 2]
        expected_pads = (pads[0], pads[1], pads[2], pads[3])
    elif padding == "VALID":
        expected_pads = (0, 0, 0, 0)
    else:
        assert explicit is not None
        expected_pads = explicit
    expected = conv_reference(x, kernel, strides, expected_pads, dilations, depthwise)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, atol=1e-4, rtol=1e-5)


def test_same_pads_put_the_odd_cell_after() -> None:
    assert tfjs_onnx.same_pads(224, 3, 2, 1) == (0, 1)
    assert tfjs_onnx.same_pads(225, 3, 2, 1) == (1, 1)
    assert tfjs_onnx.same_pads(7, 1, 1, 1) == (0, 0)


@pytest.mark.parametrize(
    ("op", "reference"),
    [("Add", np.add), ("AddV2", np.add), ("Sub", np.subtract), ("Mul", np.multiply),
     ("Minimum", np.minimum), ("Maximum", np.maximum)],
)  # fmt: skip
@pytest.mark.parametrize("constant_shape", [(), (3,), (1, 1, 1, 3)])
def test_binary_ops_broadcast_constants_against_nhwc_tensors(
    tmp_path: Path, op: str, reference: Any, constant_shape: tuple[int, ...]
) -> None:
    x = RNG.normal(size=(2, 4, 5, 3)).astype(np.float32)
    c = RNG.normal(size=constant_shape).astype(np.float32)
    g = GraphWriter((-1, 4, 5, 3))
    # a 1x1 convolution first, so the tensor is NCHW inside the ONNX graph as in real models
    eye = np.eye(3, dtype=np.float32).reshape(1, 1, 3, 3)
    g.node("id", "Conv2D", ["x", g.const("eye", eye)], padding=_s("VALID"), strides=_ints([1, 1, 1, 1]))
    g.node("out", op, ["id", g.const("c", c)])
    np.testing.assert_allclose(run(g.convert(tmp_path, "out"), x), reference(x, c), atol=1e-6)


def test_two_tensor_binary_op_and_unary_ops(tmp_path: Path) -> None:
    x = RNG.normal(scale=4, size=(1, 3, 3, 2)).astype(np.float32)
    g = GraphWriter((-1, 3, 3, 2))
    g.node("r", "Relu", ["x"])
    g.node("r6", "Relu6", ["x"])
    g.node("s", "Sigmoid", ["x"])
    g.node("a", "Add", ["r", "r6"])
    g.node("out", "Mul", ["a", "s"])
    expected = (np.maximum(x, 0) + np.clip(x, 0, 6)) / (1 + np.exp(-x.astype(np.float64))) * 1.0
    np.testing.assert_allclose(run(g.convert(tmp_path, "out"), x), expected, atol=1e-5)


@pytest.mark.parametrize("keep", [False, True])
def test_mean_over_height_and_width(tmp_path: Path, keep: bool) -> None:
    x = RNG.normal(size=(2, 4, 6, 5)).astype(np.float32)
    g = GraphWriter((-1, 4, 6, 5))
    eye = np.eye(5, dtype=np.float32).reshape(1, 1, 5, 5)
    g.node("id", "Conv2D", ["x", g.const("eye", eye)], padding=_s("VALID"), strides=_ints([1, 1, 1, 1]))
    g.node("m", "Mean", ["id", g.const("axes", np.array([1, 2], np.int32))], keep_dims={"b": keep})
    if keep:  # back to 2-d for the graph output: Mean again over the unit axes keeps it NHWC-correct
        g.node("out", "Mean", ["m", g.const("axes2", np.array([1, 2], np.int32))], keep_dims={"b": False})
    else:
        g.node("out", "Relu", ["m"])
    expected = np.maximum(x.mean(axis=(1, 2)), 0) if not keep else x.mean(axis=(1, 2))
    np.testing.assert_allclose(run(g.convert(tmp_path, "out"), x), expected, atol=1e-6)


@pytest.mark.parametrize("fused", [["BiasAdd"], ["BiasAdd", "Relu"], ["BiasAdd", "Relu6"]])
@pytest.mark.parametrize("transpose_b", [False, True])
def test_fused_matmul_and_softmax(tmp_path: Path, fused: list[str], transpose_b: bool) -> None:
    x = RNG.normal(size=(3, 8)).astype(np.float32)
    w = RNG.normal(size=(8, 5)).astype(np.float32) * 3
    b = RNG.normal(size=(5,)).astype(np.float32)
    g = GraphWriter((-1, 8))
    stored = np.ascontiguousarray(w.T) if transpose_b else w
    g.node(
        "mm",
        "_FusedMatMul",
        ["x", g.const("w", stored), g.const("b", b)],
        fused_ops={"list": {"s": [base64.b64encode(s.encode()).decode() for s in fused]}},
        num_args={"i": "1"},
        transpose_a={"b": False},
        transpose_b={"b": transpose_b},
    )
    g.node("out", "Softmax", ["mm"])
    z = x.astype(np.float64) @ w + b
    if "Relu" in fused:
        z = np.maximum(z, 0)
    if "Relu6" in fused:
        z = np.clip(z, 0, 6)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(run(g.convert(tmp_path, "out"), x), e / e.sum(axis=1, keepdims=True), atol=1e-6)


@pytest.mark.parametrize("quant", ["float16", "uint8"])
def test_quantised_weights_are_dequantised_as_tfjs_does(tmp_path: Path, quant: str) -> None:
    x = RNG.normal(size=(1, 4)).astype(np.float32)
    w = RNG.normal(size=(4, 2)).astype(np.float32)
    g = GraphWriter((-1, 4))
    g.const("w", w, quant=quant)
    g.node("out", "MatMul", ["x", "w"])
    if quant == "float16":
        dequantised = w.astype(np.float16).astype(np.float32)
    else:
        lo, scale = float(w.min()), (float(w.max()) - float(w.min())) / 255
        dequantised = np.float32(lo) + np.float32(scale) * np.round((w - lo) / scale).astype(np.float32)
    np.testing.assert_allclose(run(g.convert(tmp_path, "out"), x), x @ dequantised, atol=1e-5)


def test_unsupported_ops_and_broken_files_are_model_errors(tmp_path: Path) -> None:
    g = GraphWriter((-1, 4))
    g.node("out", "Tanh", ["x"])
    with pytest.raises(ModelError, match=r"TF\.js op Tanh .*not supported"):
        g.convert(tmp_path, "out")
    g = GraphWriter((-1, 4))
    g.const("w", np.ones((4, 2), np.float32))
    g.node("out", "MatMul", ["x", "w"])
    g.blob = g.blob[:-4]  # a truncated shard
    with pytest.raises(ModelError, match="truncated"):
        g.convert(tmp_path, "out")
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"model\.json is not a TF\.js graph model"):
        tfjs_onnx.read_graph_model(tmp_path / "model.json")
    g = GraphWriter((-1, 4, 4, 3))
    g.node("out", "Conv2D", ["x", g.const("k", np.ones((1, 1, 3, 1), np.float32))], data_format=_s("NCHW"))
    with pytest.raises(ModelError, match="only NHWC"):
        g.convert(tmp_path, "out")


def test_conversion_is_byte_reproducible(tmp_path: Path) -> None:
    def build() -> bytes:
        g = GraphWriter((-1, 5, 5, 3))
        k = np.arange(27, dtype=np.float32).reshape(3, 3, 3, 1)
        g.node("c", "DepthwiseConv2dNative", ["x", g.const("k", k)], padding=_s("SAME"), strides=_ints([1, 1, 1, 1]))
        g.node("out", "Mean", ["c", g.const("axes", np.array([1, 2], np.int32))], keep_dims={"b": False})
        data: bytes = g.convert(tmp_path, "out").SerializeToString()
        return data

    assert build() == build()


@pytest.mark.parametrize("shared_relu", [False, True])
def test_frozen_relu6_becomes_one_clip(tmp_path: Path, shared_relu: bool) -> None:
    """Maximum(Minimum(Relu(x), 6), 0) is rewritten as Clip(x, 0, 6), unless a part of it is used elsewhere."""
    x = RNG.normal(scale=5, size=(2, 4, 4, 3)).astype(np.float32)
    g = GraphWriter((-1, 4, 4, 3))
    eye = np.eye(3, dtype=np.float32).reshape(1, 1, 3, 3)
    g.node("id", "Conv2D", ["x", g.const("eye", eye)], padding=_s("VALID"), strides=_ints([1, 1, 1, 1]))
    g.node("relu", "Relu", ["id"])
    g.node("min", "Minimum", ["relu", g.const("six", np.array(6, np.float32))])
    g.node("max", "Maximum", ["min", g.const("zero", np.array(0, np.float32))])
    expected = np.clip(x, 0, 6)
    if shared_relu:
        g.node("out", "Add", ["max", "relu"])
        expected = expected + np.maximum(x, 0)
    else:
        g.node("out", "Relu", ["max"])
    model = g.convert(tmp_path, "out")
    ops = [n.op_type for n in model.graph.node]
    assert ("Clip" in ops) is not shared_relu and ("Min" in ops) is shared_relu
    np.testing.assert_allclose(run(model, x), expected, atol=1e-6)
