"""Graph rewrites applied at build time to converted models, for speed on onnxruntime's CPU provider.

PRelu as depthwise convolutions
-------------------------------
onnxruntime runs PRelu through its generic broadcasting kernel, outside the blocked (NCHWc) layout its CPU
convolutions use, so every PRelu also costs a layout reorder in and out. In MediaPipe's face mesh (23 PRelu
after 45 convolutions) that was 48 % of the run time plus 12 % in reorders: 7.0 ms of a 7.2 ms mesh call
went to 3.1-3.7 ms once rewritten (tools/bench_face_models.py, one thread).

With a per-channel slope ``a``::

    PRelu(x) = max(x, 0) + a * min(x, 0) = a * x + (1 - a) * Relu(x)

and both products are depthwise 1x1 convolutions, which stay in the blocked layout; onnxruntime fuses the
sum into the second one. The result differs from PRelu by float rounding only (a*x + (1-a)*x for x > 0):
~3e-5 of 192 crop pixels on the mesh, against the 5e-3 allowed between the ONNX and TFLite models.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from streameval.errors import MissingExtraError

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:  # the models extra brings it; only `models build` needs it
        raise MissingExtraError("models", "onnx", "rewriting converted models") from exc
    return onnx


def _channel_slopes(model: onnx.ModelProto, name: str) -> np.ndarray | None:
    """The slope as one value per channel of an NCHW input, or None when it is not a constant of that shape."""
    for init in model.graph.initializer:
        if init.name == name:
            slope = np.asarray(_onnx().numpy_helper.to_array(init))
            break
    else:
        return None
    # (C,1,1) and (1,C,1,1) broadcast over axis 1 of an NCHW tensor; anything else (a scalar, a full map) is
    # left to PRelu itself.
    if slope.ndim == 3 and slope.shape[1:] == (1, 1):
        return slope.reshape(-1)
    if slope.ndim == 4 and slope.shape[0] == 1 and slope.shape[2:] == (1, 1):
        return slope.reshape(-1)
    return None


def prelu_as_depthwise_conv(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of ``model`` with every per-channel PRelu replaced as described in the module docstring.

    Returns the new model and the number of PRelu nodes replaced. The model's inputs, outputs and every other
    node are unchanged; the new tensors are named after the PRelu's output, so names stay unique.
    """
    ox = _onnx()
    helper, numpy_helper = ox.helper, ox.numpy_helper
    out = ox.ModelProto()
    out.CopyFrom(model)
    nodes: list[onnx.NodeProto] = []
    weights: list[onnx.TensorProto] = []
    replaced = 0
    slope_names: set[str] = set()
    for node in out.graph.node:
        slopes = _channel_slopes(out, node.input[1]) if node.op_type == "PRelu" and len(node.input) == 2 else None
        if slopes is None:
            nodes.append(node)
            continue
        x, y = node.input[0], node.output[0]
        channels = int(slopes.size)
        a = slopes.astype(np.float32).reshape(channels, 1, 1, 1)
        weights += [numpy_helper.from_array(a, f"{y}__prelu_a"), numpy_helper.from_array(1 - a, f"{y}__prelu_1ma")]
        conv = {"group": channels, "kernel_shape": [1, 1]}
        nodes += [
            helper.make_node("Relu", [x], [f"{y}__prelu_relu"], name=f"{node.name}__relu"),
            helper.make_node("Conv", [x, f"{y}__prelu_a"], [f"{y}__prelu_ax"], name=f"{node.name}__ax", **conv),
            helper.make_node(
                "Conv", [f"{y}__prelu_relu", f"{y}__prelu_1ma"], [f"{y}__prelu_rx"], name=f"{node.name}__rx", **conv
            ),
            helper.make_node("Add", [f"{y}__prelu_ax", f"{y}__prelu_rx"], [y], name=f"{node.name}__sum"),
        ]
        replaced += 1
        slope_names.add(node.input[1])
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(weights)
    # slopes no longer used by any node would only be dead weight in the file
    used = {name for node in out.graph.node for name in node.input} | {i.name for i in out.graph.input}
    kept = [init for init in out.graph.initializer if init.name in used or init.name not in slope_names]
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept)
    ox.checker.check_model(out)
    return out, replaced


def rewrite_prelu_file(path: Path) -> int:
    """:func:`prelu_as_depthwise_conv` on the ONNX file at ``path``, in place; returns the PRelu count replaced."""
    ox = _onnx()
    model = ox.load(str(path))
    new, replaced = prelu_as_depthwise_conv(model)
    ox.save(new, str(path))
    log.info("%s: %d PRelu node(s) rewritten as depthwise convolutions", path, replaced)
    return replaced


def canonical_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose internal tensor and node names follow the order of the nodes.

    tf2onnx numbers the tensors it creates (``const_fold_opt__714``) in an order that varies between runs, lists
    the initializers in that order and writes the temporary path of the ``.tflite`` into the doc string: two
    conversions of one file give the same graph in different bytes. Renaming every tensor that is not a graph
    input or output by first use (``t0``, ``t1``, ...) and every node by position, sorting the initializers,
    numbering symbolic dimensions in order (tf2onnx's ``unk__<counter>``) and dropping the doc string makes the
    file byte-reproducible, so its sha256 can be pinned. The graph's interface
    (input and output names) is unchanged.
    """
    ox = _onnx()
    out: onnx.ModelProto = ox.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    graph.doc_string = ""  # tf2onnx writes the (temporary) path of the .tflite it read here
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    mapping: dict[str, str] = {}

    def rename(name: str) -> str:
        if not name or name in keep:  # "" marks an omitted optional input
            return name
        if name not in mapping:
            mapping[name] = f"t{len(mapping)}"
        return mapping[name]

    for i, node in enumerate(graph.node):
        if any(attr.type in (ox.AttributeProto.GRAPH, ox.AttributeProto.GRAPHS) for attr in node.attribute):
            raise ValueError(f"node {node.name!r} ({node.op_type}) has a subgraph: not handled by canonical_names")
        inputs, outputs = [rename(n) for n in node.input], [rename(n) for n in node.output]
        del node.input[:], node.output[:]
        node.input.extend(inputs)
        node.output.extend(outputs)
        node.name = f"{node.op_type}_{i}"
    for init in graph.initializer:
        init.name = rename(init.name)
    for info in graph.value_info:
        info.name = rename(info.name)

    # tf2onnx names each unknown dimension (the batch) ``unk__<counter>``, the counter differing between runs
    symbols: dict[str, str] = {}
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param"):
                dim.dim_param = symbols.setdefault(dim.dim_param, f"d{len(symbols)}")

    renamed = set(mapping.values())

    def order(name: str) -> tuple[int, str]:
        return (int(name[1:]), name) if name in renamed else (-1, name)

    for field in (graph.initializer, graph.value_info):
        items = sorted(field, key=lambda item: order(item.name))
        copies = [type(item)() for item in items]
        for copy, item in zip(copies, items, strict=True):
            copy.CopyFrom(item)
        del field[:]
        field.extend(copies)
    ox.checker.check_model(out)
    return out


def canonicalise_file(path: Path) -> None:
    """:func:`canonical_names` on the ONNX file at ``path``, in place."""
    ox = _onnx()
    ox.save(canonical_names(ox.load(str(path))), str(path))
