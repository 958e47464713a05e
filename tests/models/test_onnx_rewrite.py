"""The build-time PRelu rewrite against onnxruntime's own PRelu and a numpy reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from streameval.models.onnx_rewrite import prelu_as_depthwise_conv, rewrite_prelu_file
from streameval.models.runtime import create_session


def _graph(slopes: dict[str, np.ndarray], channels: int = 6) -> onnx.ModelProto:
    """x -> Conv -> PRelu(s0) -> PRelu(s1) -> ... -> y, one PRelu per entry of ``slopes`` (in order)."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(channels, 3, 3, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")] + [numpy_helper.from_array(v, k) for k, v in slopes.items()]
    nodes = [helper.make_node("Conv", ["x", "w"], ["h0"], pads=[1, 1, 1, 1], name="conv")]
    last = "h0"
    for i, name in enumerate(slopes):
        out = "y" if i == len(slopes) - 1 else f"h{i + 1}"
        nodes.append(helper.make_node("PRelu", [last, name], [out], name=f"prelu{i}"))
        last = out
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 11])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 9, 11])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _run(model: onnx.ModelProto, x: np.ndarray, tmp_path: Path, name: str) -> np.ndarray:
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return np.asarray(create_session(path, device="cpu").run(["y"], {"x": x})[0])


def _prelu(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, a * x)


def test_per_channel_prelu_becomes_convolutions_with_the_same_values(tmp_path: Path) -> None:
    # slopes below 0 and above 1 (as in the face mesh): max(x, a*x) would be wrong there
    a4 = np.array([-1.6, -0.2, 0.0, 0.25, 1.0, 1.37], np.float32).reshape(1, 6, 1, 1)
    a3 = np.array([0.5, 2.0, -0.7, 0.1, 0.9, -1.1], np.float32).reshape(6, 1, 1)
    model = _graph({"a4": a4, "a3": a3})
    rewritten, replaced = prelu_as_depthwise_conv(model)
    assert replaced == 2
    ops = [n.op_type for n in rewritten.graph.node]
    assert "PRelu" not in ops and ops.count("Conv") == 1 + 2 * 2
    assert {i.name for i in rewritten.graph.initializer} >= {"w"} and "a4" not in {
        i.name for i in rewritten.graph.initializer
    }
    x = np.random.default_rng(1).normal(size=(1, 3, 9, 11)).astype(np.float32)
    before = _run(model, x, tmp_path, "before")
    after = _run(rewritten, x, tmp_path, "after")
    w = numpy_helper.to_array(model.graph.initializer[0]).astype(np.float64)
    # numpy reference: the 3x3 convolution by hand, then the two PRelus
    padded = np.pad(x[0].astype(np.float64), ((0, 0), (1, 1), (1, 1)))
    conv = np.zeros((6, 9, 11))
    for dy in range(3):
        for dx in range(3):
            conv += np.einsum("oc,chw->ohw", w[:, :, dy, dx], padded[:, dy : dy + 9, dx : dx + 11])
    ref = _prelu(_prelu(conv, a4[0].astype(np.float64)), a3.astype(np.float64))[None]
    assert np.abs(before - ref).max() < 1e-4
    assert np.abs(after - ref).max() < 1e-4
    # the rewrite changes float rounding only: a*x + (1-a)*x for positive x
    assert np.abs(after - before).max() <= 1e-5 * max(1.0, float(np.abs(before).max()))


def test_prelu_that_is_not_per_channel_is_left_alone(tmp_path: Path) -> None:
    scalar = np.array([0.3], np.float32)
    full = np.full((1, 6, 9, 11), 0.2, np.float32)
    model = _graph({"s": scalar, "f": full})
    rewritten, replaced = prelu_as_depthwise_conv(model)
    assert replaced == 0
    assert [n.op_type for n in rewritten.graph.node] == ["Conv", "PRelu", "PRelu"]
    x = np.random.default_rng(2).normal(size=(1, 3, 9, 11)).astype(np.float32)
    assert np.array_equal(_run(model, x, tmp_path, "a"), _run(rewritten, x, tmp_path, "b"))


def test_rewrite_file_in_place(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_graph({"a": np.full((1, 6, 1, 1), -0.5, np.float32)}), str(path))
    assert rewrite_prelu_file(path) == 1
    assert "PRelu" not in {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("model_file", ["face_landmark.onnx"])
def test_built_mesh_has_no_prelu(models_dir: Path, model_file: str) -> None:
    # its agreement with MediaPipe's TFLite model is test_model_conversion.test_mesh_onnx_matches_tflite
    ops = {n.op_type for n in onnx.load(str(models_dir / model_file)).graph.node}
    assert "PRelu" not in ops and "Conv" in ops


def test_canonical_names_number_symbolic_dimensions_in_order() -> None:
    """tf2onnx names an unknown batch dimension ``unk__<counter>`` with a counter that differs between runs."""
    from streameval.models.onnx_rewrite import canonical_names

    def model(counter: int) -> onnx.ModelProto:
        graph = helper.make_graph(
            [helper.make_node("Relu", ["x"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [f"unk__{counter}", 3])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [f"unk__{counter + 1}", 3])],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])

    a, b = canonical_names(model(2000)), canonical_names(model(2005))
    assert a.SerializeToString() == b.SerializeToString()
    assert a.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "d0"
    assert a.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "d1"
