"""dlib ResNet as ONNX: the same descriptors as dlib itself on real aligned faces, clean errors on foreign files.

Measured (dlib-bin 20.0.1, onnxruntime 1.32, 2-core x86 CPU; 27 faces of 8 people): the descriptors differ from
dlib's by at most 3.4e-7, the 351 pairwise distances by at most 4.8e-7.
"""

from __future__ import annotations

import importlib.metadata as metadata
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from streameval.errors import ModelError
from streameval.models import builders, zoo
from streameval.models.dlib_resnet_onnx import (
    ANET,
    CHIP_SIZE,
    INPUT_NAME,
    ONNX_FILENAME,
    OUTPUT_NAME,
    AddPrev,
    Conv,
    build_dlib_resnet_onnx,
    load_dlib_resnet,
    out_size,
)
from streameval.models.loaders import load_detector
from streameval.models.runtime import create_session

Image = npt.NDArray[np.uint8]
DAT = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE5 = "shape_predictor_5_face_landmarks.dat"


def _insightface_image(name: str) -> Image:
    """A photo bundled in the insightface wheel (dev extra): t1.jpg shows six people."""
    import imageio.v3 as iio

    try:
        path = Path(str(metadata.distribution("insightface").locate_file(f"insightface/data/images/{name}")))
    except metadata.PackageNotFoundError:
        pytest.fail("the identity test needs the insightface wheel's photos: pip install 'streameval[dev]'")
    return np.ascontiguousarray(iio.imread(path)[..., :3], dtype=np.uint8)


@pytest.fixture(scope="module")
def dlib_models(models_dir: Path) -> tuple[Any, Any]:
    import dlib

    return dlib.face_recognition_model_v1(str(models_dir / DAT)), dlib.shape_predictor(str(models_dir / SHAPE5))


@pytest.fixture(scope="module")
def session(models_dir: Path) -> Any:
    path = zoo.model_file("dlib_resnet_onnx", ONNX_FILENAME, models_dir)
    return create_session(path, device="cpu", threads=2)


@pytest.fixture(scope="module")
def faces(
    models_dir: Path, dlib_models: tuple[Any, Any], carphone: list[Image], astronaut_image: Image
) -> list[tuple[str, Image, Any]]:
    """(person, image, dlib 5-point shape) for 27 faces of 8 people: carphone every 6th frame, the astronaut
    and the six people of insightface's t1.jpg; boxes from our BlazeFace detector, as the embedder does."""
    import dlib

    _, predictor = dlib_models
    detector = load_detector(models_dir, device="cpu", tiles=3)  # tiles: t1's faces are small
    sources = [("carphone", f) for f in carphone[::6]] + [("astronaut", astronaut_image)]
    sources.append(("t1", _insightface_image("t1.jpg")))
    out = []
    for person, image in sources:
        found = detector.detect(image)
        assert found, f"no face found in a {person} image"
        for i, det in enumerate(found if person == "t1" else found[:1]):
            x0, y0, x1, y1 = (round(v) for v in det.box)
            shape = predictor(image, dlib.rectangle(x0, y0, x1, y1))
            out.append((f"t1-{i}" if person == "t1" else person, image, shape))
    return out


def _chip(image: Image, shape: Any) -> Image:
    import dlib

    return np.asarray(dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=0.25), dtype=np.uint8)


def _onnx(session: Any, chips: list[Image]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = session.run([OUTPUT_NAME], {INPUT_NAME: np.stack(chips).astype(np.float32)})[0]
    return out


def _distances(vectors: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    v = vectors.astype(np.float64)
    pairs: npt.NDArray[np.float64] = np.linalg.norm(v[:, None] - v[None], axis=-1)[np.triu_indices(len(v), 1)]
    return pairs


def test_chip_path_equals_dlib_full_path(dlib_models: tuple[Any, Any], faces: list[tuple[str, Image, Any]]) -> None:
    """dlib's descriptor of an aligned chip is its descriptor of the face (image + shape), so comparing on chips
    compares with what the dlib embedder computes."""
    recogniser, _ = dlib_models
    for _, image, shape in faces[::5]:
        from_shape = np.asarray(recogniser.compute_face_descriptor(image, shape))
        from_chip = np.asarray(recogniser.compute_face_descriptor(_chip(image, shape)))
        np.testing.assert_array_equal(from_chip, from_shape)


def test_descriptors_match_dlib_on_real_faces(
    dlib_models: tuple[Any, Any], session: Any, faces: list[tuple[str, Image, Any]]
) -> None:
    recogniser, _ = dlib_models
    chips = [_chip(image, shape) for _, image, shape in faces]
    ref = np.stack([np.asarray(recogniser.compute_face_descriptor(c)) for c in chips])
    ours = np.concatenate([_onnx(session, chips[i : i + 8]) for i in range(0, len(chips), 8)])
    people = [p for p, _, _ in faces]
    assert len(faces) >= 20 and len(set(people)) >= 5
    vec_diff = float(np.abs(ours - ref).max())
    ref_d, our_d = _distances(ref), _distances(ours)
    dist_diff = float(np.abs(our_d - ref_d).max())
    print(f"ONNX vs dlib on {len(faces)} faces: max |descriptor diff| {vec_diff:.1e}, |distance diff| {dist_diff:.1e}")
    assert vec_diff <= 1e-4
    assert dist_diff <= 1e-3
    # the comparison is not vacuous: same person close, different people far, and both agree at 0.6
    same = np.array([a == b for a, b in itertools.combinations(people, 2)])
    assert ref_d[same].max() < 0.6 < ref_d[~same].min()
    np.testing.assert_array_equal(our_d < 0.6, ref_d < 0.6)


def test_signature_and_dynamic_batch(models_dir: Path, session: Any, faces: list[tuple[str, Image, Any]]) -> None:
    import onnx

    assert onnx.load(models_dir / ONNX_FILENAME).opset_import[0].version == builders.ONNX_OPSET
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape[1:]) == (INPUT_NAME, "tensor(float)", [CHIP_SIZE, CHIP_SIZE, 3])
    assert (out.name, out.type, out.shape[1:]) == (OUTPUT_NAME, "tensor(float)", [128])
    assert isinstance(inp.shape[0], str) and isinstance(out.shape[0], str)  # symbolic batch
    chips = [_chip(image, shape) for _, image, shape in faces[-3:]]
    three = _onnx(session, chips)
    ones = np.concatenate([_onnx(session, [c]) for c in chips])
    assert three.shape == (3, 128)
    np.testing.assert_allclose(three, ones, rtol=0, atol=1e-6)


def test_parsed_network(models_dir: Path) -> None:
    """The file's scalars decode to dlib's known values; the layer list follows anet_type."""
    net = load_dlib_resnet(models_dir / DAT)
    np.testing.assert_allclose(net.means, (122.782, 117.001, 104.298), rtol=1e-7)  # dlib's defaults, as float32
    assert net.margin == pytest.approx(0.04) and net.distance_threshold == pytest.approx(0.6)
    assert sum(isinstance(layer, Conv) for layer in net.layers) == 29
    assert sum(isinstance(layer, AddPrev) for layer in net.layers) == 14
    assert len(net.layers) == len(ANET)


def test_output_sizes_round_down() -> None:
    """dlib's size rule; the 8x8 stage's stride-2 conv gives 3x3 while its 2x2 average-pool shortcut gives 4x4,
    and dlib adds them by zero-filling the 3x3 map to 4x4."""
    assert out_size(150, 7, 2, 0) == 72
    assert out_size(72, 3, 2, 0) == 35
    assert out_size(8, 3, 2, 0) == 3
    assert out_size(8, 2, 2, 0) == 4
    assert out_size(35, 3, 1, 1) == 35


@pytest.fixture(scope="module")
def bad_files(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    data = (models_dir / DAT).read_bytes()
    root = tmp_path_factory.mktemp("bad_dat")
    contents = {
        "empty.dat": b"",
        "random.dat": np.random.default_rng(0).bytes(100_000),
        "header_only.dat": data[:200],
        "cut_in_the_middle.dat": data[: len(data) // 2],
        "one_byte_short.dat": data[:-1],
        "one_byte_extra.dat": data + b"\x00",
        SHAPE5: (models_dir / SHAPE5).read_bytes(),
    }
    flipped = bytearray(data)
    flipped[data.index(b"affine_") - 1] = 0x09  # a version string's length byte
    contents["flipped.dat"] = bytes(flipped)
    for name, content in contents.items():
        (root / name).write_bytes(content)
    return {name: root / name for name in contents}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.dat", "is empty"),
        ("random.dat", "is not dlib's face recognition ResNet"),
        ("header_only.dat", "is truncated"),
        ("cut_in_the_middle.dat", "is truncated"),
        ("one_byte_short.dat", "is truncated"),
        ("one_byte_extra.dat", "1 bytes follow the network"),
        ("flipped.dat", "expected affine_ version"),
        (SHAPE5, "is not dlib's face recognition ResNet"),
    ],
)
def test_foreign_or_damaged_file_is_a_model_error(
    bad_files: dict[str, Path], tmp_path: Path, name: str, message: str
) -> None:
    out = tmp_path / ONNX_FILENAME
    with pytest.raises(ModelError, match=message) as info:
        build_dlib_resnet_onnx(bad_files[name], out)
    assert str(bad_files[name]) in str(info.value)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read"):
        load_dlib_resnet(tmp_path / "absent.dat")
