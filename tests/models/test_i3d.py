"""I3D input preparation against scipy/PIL, and the extractor's validation of models and inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndimage

from streameval.errors import InputError, ModelError
from streameval.models.base import VideoFeatureExtractor
from streameval.models.i3d import I3DFeatureExtractor, prepare_clip, resize_bilinear


def _scipy_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Independent reference: grid_mode zoom is linear interpolation with half-pixel centres."""
    zoom = (height / image.shape[0], width / image.shape[1])
    channels = [
        ndimage.zoom(image[..., c].astype(np.float64), zoom, order=1, grid_mode=True, mode="nearest")
        for c in range(image.shape[2])
    ]
    return np.stack(channels, axis=-1)


@pytest.mark.parametrize("shape", [(37, 53), (224, 224), (300, 260), (1, 5)])
def test_resize_bilinear_matches_scipy(shape: tuple[int, int]) -> None:
    image = np.random.default_rng(1).integers(0, 256, (*shape, 3)).astype(np.uint8)
    np.testing.assert_allclose(resize_bilinear(image, 224, 224), _scipy_resize(image, 224, 224), atol=1e-9)


def test_resize_bilinear_matches_pil_when_upscaling() -> None:
    pil = pytest.importorskip("PIL.Image")
    image = np.random.default_rng(2).integers(0, 256, (40, 30, 3)).astype(np.uint8)
    reference = np.stack(
        [
            np.asarray(pil.fromarray(image[..., c].astype(np.float32), mode="F").resize((224, 224), pil.BILINEAR))
            for c in range(3)
        ],
        axis=-1,
    )
    np.testing.assert_allclose(resize_bilinear(image, 224, 224), reference, atol=1e-3)


def test_prepare_clip_scales_to_unit_range() -> None:
    black = np.zeros((10, 12, 3), np.uint8)
    white = np.full((50, 40, 3), 255, np.uint8)
    ramp = np.tile(np.arange(0, 256, 16, dtype=np.uint8)[None, :, None], (16, 1, 3))
    clip = prepare_clip([black, white, ramp], image_size=32)
    assert clip.shape == (3, 32, 32, 3) and clip.dtype == np.float32
    np.testing.assert_array_equal(clip[0], -1.0)
    np.testing.assert_array_equal(clip[1], 1.0)
    np.testing.assert_allclose(clip[2], _scipy_resize(ramp, 32, 32) / 127.5 - 1.0, atol=1e-6)


def test_prepare_clip_rejects_bad_crops() -> None:
    with pytest.raises(InputError, match="at least one"):
        prepare_clip([])
    with pytest.raises(InputError, match="crop 1 must be RGB uint8"):
        prepare_clip([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8)])


def _save_model(path: Path, input_shape: list[int | str], outputs: dict[str, list[int | str]]) -> Path:
    """A tiny ONNX model: each output is ReduceMean of the input over all but the batch axis, reshaped."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes, values = [], []
    for name, shape in outputs.items():
        nodes.append(helper.make_node("ReduceMean", ["clips"], [f"{name}_m"], axes=[1, 2, 3, 4], keepdims=0))
        const = helper.make_tensor(f"{name}_ones", TensorProto.FLOAT, [1, int(shape[1])], [1.0] * int(shape[1]))
        nodes.append(helper.make_node("Constant", [], [f"{name}_c"], value=const))
        nodes.append(helper.make_node("Unsqueeze", [f"{name}_m"], [f"{name}_u"], axes=[1]))
        nodes.append(helper.make_node("Mul", [f"{name}_u", f"{name}_c"], [name]))
        values.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    graph = helper.make_graph(
        nodes, "fake", [helper.make_tensor_value_info("clips", TensorProto.FLOAT, input_shape)], values
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    onnx.save(model, str(path))
    return path


@pytest.fixture
def fake_i3d(tmp_path: Path) -> Path:
    """Same signature as the I3D export; outputs the clip mean in every feature slot."""
    return _save_model(tmp_path / "fake.onnx", ["b", 16, 224, 224, 3], {"pool": ["b", 1024], "logits": ["b", 400]})


def test_extractor_runs_and_returns_named_float32_features(fake_i3d: Path) -> None:
    pytest.importorskip("onnxruntime")
    clips = np.random.default_rng(3).uniform(-1, 1, (2, 16, 224, 224, 3)).astype(np.float32)
    extractor = I3DFeatureExtractor(fake_i3d, device="cpu", threads=1)
    assert isinstance(extractor, VideoFeatureExtractor)
    out = extractor.features(clips)
    means = clips.reshape(2, -1).astype(np.float64).mean(axis=1)
    np.testing.assert_allclose(out["pool"], np.repeat(means[:, None], 1024, axis=1), atol=1e-6)
    np.testing.assert_allclose(out["logits"], np.repeat(means[:, None], 400, axis=1), atol=1e-6)
    assert out["pool"].dtype == np.float32


def test_extractor_rejects_bad_clips(fake_i3d: Path) -> None:
    pytest.importorskip("onnxruntime")
    extractor = I3DFeatureExtractor(fake_i3d, device="cpu")
    with pytest.raises(InputError, match=r"clips must have shape \(B, 16, 224, 224, 3\)"):
        extractor.features(np.zeros((1, 8, 224, 224, 3), np.float32))
    with pytest.raises(InputError, match=r"scaled to \[-1, 1\]"):
        extractor.features(np.full((1, 16, 224, 224, 3), 255.0, np.float32))


def test_extractor_names_the_expected_signature_for_a_wrong_model(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    wrong = _save_model(tmp_path / "wrong.onnx", ["b", 16, 112, 112, 3], {"pool": ["b", 1024]})
    with pytest.raises(ModelError, match=r"not the I3D model: expected one input 'clips' of shape \(batch, 16, 224"):
        I3DFeatureExtractor(wrong, device="cpu")
    with pytest.raises(ModelError, match="does not exist"):
        I3DFeatureExtractor(tmp_path / "missing.onnx", device="cpu")
