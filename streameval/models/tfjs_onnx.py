"""Convert a TensorFlow.js graph model (``model.json`` + weight shards) into an ONNX graph, without TensorFlow.

A TF.js graph model is a frozen TensorFlow ``GraphDef`` in JSON (``modelTopology.node``: op, inputs, attributes)
whose constants live in binary shards described by ``weightsManifest`` (name, shape, dtype, optional
quantisation). This module reads both with numpy and writes the graph with ``onnx.helper``. It maps only the ops
our bundled models use, each with its attributes checked (an op or attribute value it does not know is a
:class:`~streameval.errors.ModelError`, never a silent guess):

``Conv2D`` and ``DepthwiseConv2dNative`` (NHWC, SAME/VALID/EXPLICIT padding, strides, dilations), ``Add``,
``AddV2``, ``Sub``, ``Mul``, ``Minimum``, ``Maximum``, ``Relu``, ``Relu6``, ``Sigmoid``, ``Softmax``, ``Mean``,
``MatMul`` and grappler's ``_FusedMatMul`` (``BiasAdd`` then optionally ``Relu``/``Relu6``). One rewrite, exact:
a frozen Keras ReLU6 (``Maximum(Minimum(Relu(x), 6), 0)``) becomes one ``Clip`` (20 % faster on faceres).

Layout: TF.js graphs are NHWC; the ONNX graph keeps the NHWC input and output signature but runs NCHW inside
(one Transpose after the input), where onnxruntime's convolutions are fastest. Every 4-d tensor is tracked with
its TF (NHWC) shape; constants that broadcast against one are reshaped to NCHW, and reduction axes are mapped.
Weights are dequantised as the TF.js runtime does (float16 to float32; uint8/uint16 affine ``min + scale * q``).
The output is byte-reproducible: node, tensor and initialiser names come from the TF graph, nothing is random.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from streameval.errors import MissingExtraError, ModelError

log = logging.getLogger(__name__)

OPSET = 13
IR_VERSION = 7  # oldest IR that carries opset 13

_NP_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_QUANT_DTYPES = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}
_NHWC_TO_NCHW = (0, 3, 1, 2)


@dataclass(frozen=True)
class TfjsNode:
    name: str
    op: str
    inputs: tuple[str, ...]
    attr: Mapping[str, Any]


@dataclass(frozen=True)
class TfjsGraph:
    """A parsed TF.js graph model: its nodes in file order and its dequantised constants by name."""

    nodes: tuple[TfjsNode, ...]
    weights: Mapping[str, npt.NDArray[Any]]
    signature: Mapping[str, Any]

    def node(self, name: str) -> TfjsNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ModelError(f"the TF.js graph has no node {name!r}")


def read_weights(manifest: Sequence[Mapping[str, Any]], shard_dir: Path, source: str) -> dict[str, npt.NDArray[Any]]:
    """Every weight of a ``weightsManifest``, dequantised to its original dtype, read from the shards in
    ``shard_dir`` (each group's shards concatenated in the listed order, weights packed back to back)."""
    weights: dict[str, npt.NDArray[Any]] = {}
    for group in manifest:
        try:
            blob = b"".join((shard_dir / str(p)).read_bytes() for p in group["paths"])
        except OSError as exc:
            raise ModelError(f"cannot read the weight shards of {source}: {exc}") from exc
        offset = 0
        for spec in group["weights"]:
            name, shape = str(spec["name"]), [int(d) for d in spec["shape"]]
            count = int(np.prod(shape, dtype=np.int64))
            quant = spec.get("quantization")
            if quant is None:
                dtype = _NP_DTYPES.get(str(spec["dtype"]))
                if dtype is None:
                    raise ModelError(f"{source}: weight {name} has unsupported dtype {spec['dtype']!r}")
                _check_room(blob, offset, count * np.dtype(dtype).itemsize, name, source)
                stored: npt.NDArray[Any] = np.frombuffer(blob, dtype, count, offset)
                offset += stored.nbytes
                value: npt.NDArray[Any] = stored.astype(dtype)
            else:
                qdtype = _QUANT_DTYPES.get(str(quant.get("dtype")))
                if qdtype is None or spec["dtype"] != "float32":
                    raise ModelError(f"{source}: weight {name} has unsupported quantisation {quant!r}")
                _check_room(blob, offset, count * np.dtype(qdtype).itemsize, name, source)
                q = np.frombuffer(blob, qdtype, count, offset)
                offset += q.nbytes
                if qdtype is np.float16:
                    value = q.astype(np.float32)
                else:  # affine integer quantisation, as tfjs-core's io.decodeWeights
                    value = (np.float32(quant["min"]) + np.float32(quant["scale"]) * q.astype(np.float32)).astype(
                        np.float32
                    )
            weights[name] = value.reshape(shape)
        if offset != len(blob):
            raise ModelError(f"{source}: the weight shards hold {len(blob)} bytes, the manifest {offset}")
    return weights


def _check_room(blob: bytes, offset: int, size: int, name: str, source: str) -> None:
    if offset + size > len(blob):
        raise ModelError(f"{source}: the weight shards end before weight {name} (truncated file?)")


def read_graph_model(model_json: Path) -> TfjsGraph:
    """Parse ``model_json`` and its weight shards (named in it, next to it)."""
    try:
        doc = json.loads(model_json.read_text(encoding="utf-8"))
        raw_nodes = doc["modelTopology"]["node"]
        manifest = doc["weightsManifest"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelError(f"{model_json} is not a TF.js graph model: {exc}") from exc
    if doc.get("format") != "graph-model":
        raise ModelError(f"{model_json} is not a TF.js graph model (format {doc.get('format')!r})")
    nodes = tuple(
        TfjsNode(str(n["name"]), str(n["op"]), tuple(str(i) for i in n.get("input", ())), dict(n.get("attr", {})))
        for n in raw_nodes
    )
    return TfjsGraph(nodes, read_weights(manifest, model_json.parent, model_json.name), dict(doc.get("signature", {})))


# --- attribute readers (TF's AttrValue in JSON: strings base64, ints as decimal strings) ----------------------


def _attr_str(node: TfjsNode, key: str, default: str | None = None) -> str:
    import base64

    if key not in node.attr:
        if default is None:
            raise ModelError(f"TF.js node {node.name} ({node.op}) lacks attribute {key}")
        return default
    return base64.b64decode(node.attr[key]["s"]).decode("ascii")


def _attr_ints(node: TfjsNode, key: str, default: Sequence[int] | None = None) -> list[int]:
    value = node.attr.get(key, {}).get("list", {}).get("i")
    if value is None:
        if default is None and key not in node.attr:
            raise ModelError(f"TF.js node {node.name} ({node.op}) lacks attribute {key}")
        return list(default or [])
    return [int(v) for v in value]


def _attr_strs(node: TfjsNode, key: str) -> list[str]:
    import base64

    return [base64.b64decode(s).decode("ascii") for s in node.attr.get(key, {}).get("list", {}).get("s", [])]


def _attr_bool(node: TfjsNode, key: str) -> bool:
    return bool(node.attr.get(key, {}).get("b", False))


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding of one axis (before, after): the extra cell goes after."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _out_size(size: int, kernel: int, stride: int, dilation: int, before: int, after: int) -> int:
    return (size + before + after - ((kernel - 1) * dilation + 1)) // stride + 1


class _Converter:
    """Walks the TF.js nodes a set of outputs needs, emitting ONNX nodes; 4-d tensors run NCHW."""

    def __init__(self, onnx: Any, graph: TfjsGraph) -> None:
        self.onnx = onnx
        self.graph = graph
        self.by_name = {n.name: n for n in graph.nodes}
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.tf_shape: dict[str, tuple[int, ...]] = {}  # TF (NHWC) static shape of each emitted tensor; batch -1
        self.nchw: set[str] = set()  # emitted 4-d tensors stored NCHW
        self.emitted: dict[str, str] = {}  # TF tensor name -> ONNX tensor name
        self.consumers = Counter(i.split(":")[0].lstrip("^") for n in graph.nodes for i in n.inputs)

    # -- helpers -----------------------------------------------------------------------------------------
    def const(self, name: str, value: npt.NDArray[Any]) -> str:
        # np.require keeps a 0-d array 0-d (np.ascontiguousarray would make it 1-d)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.require(value, requirements="C"), name))
        return name

    def emit(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def constant_value(self, tf_name: str) -> npt.NDArray[Any] | None:
        node = self.by_name.get(tf_name.split(":")[0])
        if node is None or node.op != "Const":
            return None
        if node.name not in self.graph.weights:
            raise ModelError(f"TF.js constant {node.name} has no value in the weights manifest")
        return self.graph.weights[node.name]

    def tensor(self, tf_name: str) -> str:
        """The ONNX name of a TF tensor, converting its producer first (constants become initialisers)."""
        base = tf_name.split(":")[0]
        if base in self.emitted:
            return self.emitted[base]
        node = self.by_name.get(base)
        if node is None:
            raise ModelError(f"TF.js graph: input {tf_name!r} is produced by no node")
        if node.op == "Const":
            value = self.constant_value(base)
            assert value is not None
            self.tf_shape[base] = tuple(value.shape)
            self.emitted[base] = self.const(base, value)
            return base
        self.convert(node)
        return self.emitted[base]

    def placeholder(self, name: str, shape: tuple[int, ...]) -> None:
        self.tf_shape[name] = shape
        if len(shape) == 4:
            out = self.emit("Transpose", [name], f"{name}/nchw", perm=list(_NHWC_TO_NCHW))
            self.nchw.add(out)
            self.tf_shape[out] = shape
            self.emitted[name] = out
        else:
            self.emitted[name] = name

    def _done(self, node: TfjsNode, out: str, shape: tuple[int, ...], nchw: bool) -> None:
        self.emitted[node.name] = out
        self.tf_shape[out] = shape
        if nchw:
            self.nchw.add(out)

    # -- ops ---------------------------------------------------------------------------------------------
    def convert(self, node: TfjsNode) -> None:
        handler = getattr(self, f"op_{node.op}", None)
        if handler is None:
            raise ModelError(f"TF.js op {node.op} (node {node.name}) is not supported by streameval's converter")
        handler(node)

    def _conv(self, node: TfjsNode, depthwise: bool) -> None:
        if _attr_str(node, "data_format", "NHWC") != "NHWC":
            raise ModelError(f"{node.name}: only NHWC convolutions are supported")
        x = self.tensor(node.inputs[0])
        kernel = self.constant_value(node.inputs[1])
        if kernel is None or kernel.ndim != 4:
            raise ModelError(f"{node.name}: the kernel must be a constant 4-d tensor")
        n, h, w, c = self.tf_shape[x]
        kh, kw, cin, mult = kernel.shape
        if cin != c:
            raise ModelError(f"{node.name}: kernel expects {cin} channels, the input has {c}")
        strides = _attr_ints(node, "strides", [1, 1, 1, 1])
        dilations = _attr_ints(node, "dilations", [1, 1, 1, 1])
        if strides[0] != 1 or strides[3] != 1 or dilations[0] != 1 or dilations[3] != 1:
            raise ModelError(f"{node.name}: strides/dilations over batch or channels are not supported")
        sh, sw, dh, dw = strides[1], strides[2], dilations[1], dilations[2]
        padding = _attr_str(node, "padding")
        if padding == "SAME":
            (pt, pb), (pl, pr) = same_pads(h, kh, sh, dh), same_pads(w, kw, sw, dw)
        elif padding == "VALID":
            pt = pb = pl = pr = 0
        elif padding == "EXPLICIT":
            explicit = _attr_ints(node, "explicit_paddings")
            if len(explicit) != 8 or any(explicit[i] for i in (0, 1, 6, 7)):
                raise ModelError(f"{node.name}: explicit paddings {explicit} pad batch or channels")
            pt, pb, pl, pr = explicit[2:6]
        else:
            raise ModelError(f"{node.name}: unknown padding {padding!r}")
        if depthwise:  # (kh, kw, C, M) -> (C*M, 1, kh, kw); output channel c*M + m as in TF
            weight = kernel.reshape(kh, kw, cin * mult).transpose(2, 0, 1)[:, None, :, :]
            filters, group = cin * mult, cin
        else:  # (kh, kw, Cin, Cout) -> (Cout, Cin, kh, kw)
            weight = kernel.transpose(3, 2, 0, 1)
            filters, group = mult, 1
        shape = (n, _out_size(h, kh, sh, dh, pt, pb), _out_size(w, kw, sw, dw, pl, pr), filters)
        out = self.emit(
            "Conv",
            [x, self.const(f"{node.name}/weight", np.ascontiguousarray(weight, np.float32))],
            node.name,
            kernel_shape=[kh, kw],
            strides=[sh, sw],
            dilations=[dh, dw],
            pads=[pt, pl, pb, pr],
            group=group,
        )
        self._done(node, out, shape, nchw=True)

    def op_Conv2D(self, node: TfjsNode) -> None:
        self._conv(node, depthwise=False)

    def op_DepthwiseConv2dNative(self, node: TfjsNode) -> None:
        self._conv(node, depthwise=True)

    def _binary(self, node: TfjsNode, onnx_op: str) -> None:
        if len(node.inputs) != 2:
            raise ModelError(f"{node.name}: {node.op} takes two inputs")
        consts = [self.constant_value(i) for i in node.inputs]
        variables = [self.tensor(i) for i, c in zip(node.inputs, consts, strict=True) if c is None]
        layout_nchw = any(v in self.nchw for v in variables)
        operands, shapes = [], []
        for tf_name, value in zip(node.inputs, consts, strict=True):
            if value is not None and layout_nchw:  # rearranged to broadcast against the NCHW operand
                operands.append(self._to_nchw_operand(node, tf_name, value))
                shapes.append(tuple(value.shape))
            else:
                operands.append(self.tensor(tf_name))
                shapes.append(self.tf_shape[operands[-1]])
        if len(shapes[0]) == len(shapes[1]):  # -1 (the dynamic batch) broadcasts like any size other than 1
            shape = tuple(-1 if -1 in (a, b) else max(a, b) for a, b in zip(shapes[0], shapes[1], strict=True))
        else:
            shape = max(shapes, key=len)
        out = self.emit(onnx_op, operands, node.name)
        self._done(node, out, shape, nchw=layout_nchw)

    def _to_nchw_operand(self, node: TfjsNode, tf_name: str, value: npt.NDArray[Any]) -> str:
        """A constant that broadcasts against an NHWC tensor, rearranged to broadcast against its NCHW form."""
        name = f"{tf_name.split(':')[0]}/nchw"
        if any(init.name == name for init in self.initializers):
            return name
        if value.ndim > 4:
            raise ModelError(f"{node.name}: a {value.ndim}-d constant cannot broadcast against a 4-d tensor")
        if value.size == 1:
            return self.const(name, value.reshape(()))
        full = value.reshape((1,) * (4 - value.ndim) + value.shape)
        return self.const(name, np.ascontiguousarray(full.transpose(_NHWC_TO_NCHW)))

    def op_Add(self, node: TfjsNode) -> None:
        self._binary(node, "Add")

    op_AddV2 = op_Add
    op_BiasAdd = op_Add

    def op_Sub(self, node: TfjsNode) -> None:
        self._binary(node, "Sub")

    def op_Mul(self, node: TfjsNode) -> None:
        self._binary(node, "Mul")

    def op_Minimum(self, node: TfjsNode) -> None:
        self._binary(node, "Min")

    def op_Maximum(self, node: TfjsNode) -> None:
        if not self._relu_clip(node):
            self._binary(node, "Max")

    def _relu_clip(self, node: TfjsNode) -> bool:
        """Keras' ReLU6 as TF freezes it, ``Maximum(Minimum(Relu(x), hi), 0)``, as one ``Clip(x, 0, hi)``: the
        same values (Relu(x) >= 0 already), and onnxruntime fuses a Clip into the convolution before it."""
        lo = self.constant_value(node.inputs[1])
        low = self.by_name.get(node.inputs[0].split(":")[0])
        if lo is None or lo.size != 1 or float(lo.reshape(-1)[0]) != 0.0 or low is None or low.op != "Minimum":
            return False
        hi = self.constant_value(low.inputs[1])
        relu = self.by_name.get(low.inputs[0].split(":")[0])
        if hi is None or hi.size != 1 or float(hi.reshape(-1)[0]) < 0.0 or relu is None or relu.op != "Relu":
            return False
        if self.consumers[low.name] != 1 or self.consumers[relu.name] != 1:  # the parts are used elsewhere
            return False
        x = self.tensor(relu.inputs[0])
        bounds = [self.const(f"{node.name}/{k}", v.reshape(()).astype(np.float32)) for k, v in (("lo", lo), ("hi", hi))]
        out = self.emit("Clip", [x, *bounds], node.name)
        self._done(node, out, self.tf_shape[x], nchw=x in self.nchw)
        return True

    def _unary(self, node: TfjsNode, onnx_op: str, **attrs: Any) -> None:
        x = self.tensor(node.inputs[0])
        out = self.emit(onnx_op, [x], node.name, **attrs)
        self._done(node, out, self.tf_shape[x], nchw=x in self.nchw)

    def op_Relu(self, node: TfjsNode) -> None:
        self._unary(node, "Relu")

    def op_Relu6(self, node: TfjsNode) -> None:
        x = self.tensor(node.inputs[0])
        lo, hi = (
            self.const(f"{node.name}/min", np.array(0, np.float32)),
            self.const(f"{node.name}/max", np.array(6, np.float32)),
        )
        out = self.emit("Clip", [x, lo, hi], node.name)
        self._done(node, out, self.tf_shape[x], nchw=x in self.nchw)

    def op_Sigmoid(self, node: TfjsNode) -> None:
        self._unary(node, "Sigmoid")

    def op_Softmax(self, node: TfjsNode) -> None:
        x = self.tensor(node.inputs[0])
        if x in self.nchw:
            raise ModelError(f"{node.name}: Softmax over a 4-d tensor is not supported")
        self._unary(node, "Softmax", axis=-1)  # TF: the last axis; ONNX opset 13: the same with axis=-1

    def op_Mean(self, node: TfjsNode) -> None:
        x = self.tensor(node.inputs[0])
        axes_value = self.constant_value(node.inputs[1])
        if axes_value is None:
            raise ModelError(f"{node.name}: Mean needs constant reduction axes")
        shape = self.tf_shape[x]
        axes = sorted({int(a) % len(shape) for a in np.atleast_1d(axes_value)})
        keep = _attr_bool(node, "keep_dims")
        onnx_axes = sorted(_NHWC_TO_NCHW.index(a) for a in axes) if x in self.nchw else axes
        out = self.emit("ReduceMean", [x], node.name, axes=onnx_axes, keepdims=int(keep))
        if keep:
            new_shape = tuple(1 if i in axes else d for i, d in enumerate(shape))
            self._done(node, out, new_shape, nchw=x in self.nchw)
            return
        new_shape = tuple(d for i, d in enumerate(shape) if i not in axes)
        if x in self.nchw and new_shape != (shape[0], shape[3]):
            raise ModelError(f"{node.name}: Mean over axes {axes} of an NHWC tensor is not supported")
        self._done(node, out, new_shape, nchw=False)

    def op_MatMul(self, node: TfjsNode) -> None:
        self._matmul(node, [])

    def op__FusedMatMul(self, node: TfjsNode) -> None:
        fused = _attr_strs(node, "fused_ops")
        if not fused or fused[0] != "BiasAdd" or any(op not in {"Relu", "Relu6"} for op in fused[1:]):
            raise ModelError(f"{node.name}: _FusedMatMul with fused_ops {fused} is not supported")
        if int(node.attr.get("num_args", {}).get("i", 1)) != 1:
            raise ModelError(f"{node.name}: _FusedMatMul with more than one fused argument is not supported")
        self._matmul(node, fused)

    def _matmul(self, node: TfjsNode, fused: list[str]) -> None:
        a, b = self.tensor(node.inputs[0]), self.tensor(node.inputs[1])
        if a in self.nchw or b in self.nchw:
            raise ModelError(f"{node.name}: MatMul of a 4-d tensor is not supported")
        if _attr_bool(node, "transpose_a"):
            a = self.emit("Transpose", [a], f"{node.name}/a_t", perm=[1, 0])
            self.tf_shape[a] = self.tf_shape[node.inputs[0].split(":")[0]][::-1]
        if _attr_bool(node, "transpose_b"):
            b = self.emit("Transpose", [b], f"{node.name}/b_t", perm=[1, 0])
            self.tf_shape[b] = self.tf_shape[node.inputs[1].split(":")[0]][::-1]
        shape = (self.tf_shape[a][0], self.tf_shape[b][1])
        last = self.emit("MatMul", [a, b], f"{node.name}/matmul" if fused else node.name)
        for i, op in enumerate(fused):
            target = node.name if i == len(fused) - 1 else f"{node.name}/{op.lower()}"
            if op == "BiasAdd":
                last = self.emit("Add", [last, self.tensor(node.inputs[2])], target)
            elif op == "Relu":
                last = self.emit("Relu", [last], target)
            else:
                lo = self.const(f"{target}/min", np.array(0, np.float32))
                hi = self.const(f"{target}/max", np.array(6, np.float32))
                last = self.emit("Clip", [last, lo, hi], target)
        self._done(node, last, shape, nchw=False)


def to_onnx(
    graph: TfjsGraph,
    inputs: Mapping[str, Sequence[int]],
    outputs: Mapping[str, str],
    *,
    name: str = "tfjs_graph",
    doc: str = "",
) -> Any:
    """The ONNX ModelProto computing ``outputs`` (TF tensor name -> ONNX output name) from ``inputs`` (placeholder
    name -> TF shape, -1 for a dynamic batch). 4-d inputs are NHWC as in TF. Only the nodes the outputs need are
    converted."""
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as exc:
        raise MissingExtraError("models", "onnx", "converting TF.js models") from exc

    conv = _Converter(onnx, graph)
    float_t = onnx.TensorProto.FLOAT
    graph_inputs = []
    for input_name, shape in inputs.items():
        node = conv.by_name.get(input_name)
        if node is None or node.op != "Placeholder":
            raise ModelError(f"TF.js graph has no placeholder {input_name!r}")
        dims = tuple(int(d) for d in shape)
        conv.placeholder(input_name, dims)
        graph_inputs.append(
            onnx.helper.make_tensor_value_info(input_name, float_t, ["batch" if d < 0 else d for d in dims])
        )
    graph_outputs = []
    for tf_name, out_name in outputs.items():
        produced = conv.tensor(tf_name)
        dims = conv.tf_shape[produced]
        if produced in conv.nchw:  # back to TF's NHWC
            conv.emit("Transpose", [produced], out_name, perm=[0, 2, 3, 1])
        else:
            conv.emit("Identity", [produced], out_name)
        graph_outputs.append(
            onnx.helper.make_tensor_value_info(out_name, float_t, ["batch" if d < 0 else d for d in dims])
        )
    model = onnx.helper.make_model(
        onnx.helper.make_graph(conv.nodes, name, graph_inputs, graph_outputs, initializer=conv.initializers),
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="streameval.models.tfjs_onnx",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model
