"""dlib's face alignment without dlib (numpy shape predictor, OpenCV face chip) against dlib itself.

Faces: all 120 carphone frames (176x144), the same frames upscaled to 1280x720 (the chip then comes from
dlib's image pyramid) and the astronaut, each with the box of our BlazeFace detector.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from streameval.errors import InputError, ModelError
from streameval.models import face_chip
from streameval.models.dlib_shape import ShapePredictor, box_rectangle, token_starts, walk_tokens
from streameval.models.face_chip import (
    FACE_TEMPLATE_5,
    chip_transform,
    extract_chip,
    face_chip_details,
    pyramid_down,
)
from streameval.models.loaders import load_detector

Frames = list[np.ndarray]
CHIP = 150
PADDING = 0.25
SHAPE5 = "shape_predictor_5_face_landmarks.dat"
RESNET = "dlib_face_recognition_resnet_model_v1.dat"


@dataclass
class Face:
    label: str
    image: np.ndarray
    box: tuple[float, float, float, float]


@pytest.fixture(scope="module")
def dlib() -> Any:
    try:
        return importlib.import_module("dlib")
    except ImportError:
        pytest.fail("the reference test needs dlib: pip install 'streameval[models]' (dlib-bin)", pytrace=False)


@pytest.fixture(scope="module")
def ours(models_dir: Path) -> ShapePredictor:
    return ShapePredictor(models_dir / SHAPE5)


@pytest.fixture(scope="module")
def reference(dlib: Any, models_dir: Path) -> Any:
    return dlib.shape_predictor(str(models_dir / SHAPE5))


@pytest.fixture(scope="module")
def faces(models_dir: Path, carphone: Frames, astronaut_image: np.ndarray) -> dict[str, list[Face]]:
    """Resolution -> faces, each with the box of the best detection."""
    detector = load_detector(models_dir, device="cpu")
    sets = {
        "176x144": carphone,
        "1280x720": [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_LINEAR) for f in carphone],
        "astronaut 512x512": [astronaut_image],
    }
    out: dict[str, list[Face]] = {}
    for label, images in sets.items():
        out[label] = []
        for image in images:
            found = detector.detect(image)
            assert found, f"no face in a {label} image"
            out[label].append(Face(label, image, found[0].box))
    return out


def dlib_points(shape: Any) -> np.ndarray:
    return np.array([[p.x, p.y] for p in shape.parts()], np.float64)


def dlib_rect(dlib: Any, box: tuple[float, float, float, float]) -> Any:
    return dlib.rectangle(*box_rectangle(box))


def test_points_equal_dlibs(dlib: Any, ours: ShapePredictor, reference: Any, faces: dict[str, list[Face]]) -> None:
    lines = []
    for label, group in faces.items():
        worst = 0.0
        for face in group:
            mine = ours.predict(face.image, face.box)
            theirs = dlib_points(reference(face.image, dlib_rect(dlib, face.box)))
            worst = max(worst, float(np.abs(mine - theirs).max()))
        lines.append(f"{label}: {len(group)} faces, max abs diff {worst:g} px")
    print("5 points vs dlib.shape_predictor: " + "; ".join(lines))
    assert all(line.endswith(" 0 px") for line in lines)


def test_chip_geometry_equals_dlibs(dlib: Any, reference: Any, faces: dict[str, list[Face]]) -> None:
    worst_rect = worst_angle = 0.0
    for face in [f for group in faces.values() for f in group]:
        shape = reference(face.image, dlib_rect(dlib, face.box))
        theirs = dlib.get_face_chip_details(shape, CHIP, PADDING)
        mine = face_chip_details(dlib_points(shape), CHIP, PADDING)
        r = theirs.rect
        worst_rect = max(worst_rect, *np.abs(np.subtract(mine.rect, (r.left(), r.top(), r.right(), r.bottom()))))
        worst_angle = max(worst_angle, abs(mine.angle - theirs.angle))
        assert (mine.rows, mine.cols) == (theirs.rows, theirs.cols) == (CHIP, CHIP)
    print(f"chip details vs dlib: rect max abs diff {worst_rect:.1e} px, angle {worst_angle:.1e} rad")
    assert worst_rect < 1e-9 and worst_angle < 1e-12


def test_chips_match_dlibs(dlib: Any, reference: Any, faces: dict[str, list[Face]]) -> None:
    """Default chips (OpenCV's float32 warp from OpenCV 5) within a grey level; exact ones equal dlib's."""
    pyramid = dlib.pyramid_down(2)
    lines = []
    for label, group in faces.items():
        diffs, with_pyramid = [], 0
        for face in group:
            shape = reference(face.image, dlib_rect(dlib, face.box))
            theirs = dlib.get_face_chip(face.image, shape, size=CHIP, padding=PADDING)
            mine = extract_chip(face.image, dlib_points(shape), CHIP, PADDING)
            assert mine.shape == theirs.shape == (CHIP, CHIP, 3) and mine.dtype == np.uint8
            diffs.append(np.abs(mine.astype(np.int16) - theirs.astype(np.int16)))
            np.testing.assert_array_equal(
                extract_chip(face.image, dlib_points(shape), CHIP, PADDING, exact=True), theirs
            )
            # dlib samples from a pyramid level when the chip is much smaller than its rectangle
            with_pyramid += pyramid.rect_down(dlib.get_face_chip_details(shape, CHIP, PADDING).rect).area() > CHIP**2
        d = np.stack(diffs)
        lines.append(
            f"{label}: {len(group)} faces ({with_pyramid} via the pyramid), max {d.max()}, mean {d.mean():.1e},"
            f" {np.count_nonzero(d)} of {d.size} values differ"
        )
        assert d.max() <= 1 and np.count_nonzero(d) <= 1e-4 * d.size, lines[-1]
        assert (with_pyramid == len(group)) if label == "1280x720" else (with_pyramid == 0)
    print(f"chips (OpenCV {cv2.__version__}) vs dlib.get_face_chip, grey levels: " + "; ".join(lines))
    print("chips with exact=True: equal to dlib's on every face")


def test_opencv_4_takes_the_exact_path(carphone: Frames, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenCV 4 rounds warp positions to 1/32 pixel (up to 3 grey levels off): numpy interpolates there."""
    points = np.array([[100, 58], [88, 59], [63, 60], [74, 60], [81, 77]], np.float64)
    exact = extract_chip(carphone[0], points, exact=True)
    monkeypatch.setattr(face_chip, "_OPENCV_MAJOR", 4)
    np.testing.assert_array_equal(extract_chip(carphone[0], points), exact)


def test_descriptors_of_our_chips_match_dlibs(
    dlib: Any, models_dir: Path, ours: ShapePredictor, faces: dict[str, list[Face]]
) -> None:
    """The identity pipeline's question: how far does the ResNet descriptor move with our alignment?"""
    facerec = dlib.face_recognition_model_v1(str(models_dir / RESNET))
    reference = dlib.shape_predictor(str(models_dir / SHAPE5))
    subset = faces["176x144"][::8] + faces["1280x720"][::8] + faces["astronaut 512x512"]
    chip_diff = chip_dist = pipe_diff = pipe_dist = exact_dist = self_dist = 0.0
    for face in subset:
        shape = reference(face.image, dlib_rect(dlib, face.box))
        full = np.array(facerec.compute_face_descriptor(face.image, shape))  # dlib's own pipeline
        from_dlib_chip = np.array(facerec.compute_face_descriptor(dlib.get_face_chip(face.image, shape, CHIP, PADDING)))
        from_our_chip = np.array(facerec.compute_face_descriptor(extract_chip(face.image, dlib_points(shape))))
        points = ours.predict(face.image, face.box)  # below: no dlib before the ResNet
        from_ours_only = np.array(facerec.compute_face_descriptor(extract_chip(face.image, points)))
        from_exact = np.array(facerec.compute_face_descriptor(extract_chip(face.image, points, exact=True)))
        self_dist = max(self_dist, float(np.linalg.norm(from_dlib_chip - full)))
        chip_diff = max(chip_diff, float(np.abs(from_our_chip - from_dlib_chip).max()))
        chip_dist = max(chip_dist, float(np.linalg.norm(from_our_chip - from_dlib_chip)))
        pipe_diff = max(pipe_diff, float(np.abs(from_ours_only - full).max()))
        pipe_dist = max(pipe_dist, float(np.linalg.norm(from_ours_only - full)))
        exact_dist = max(exact_dist, float(np.linalg.norm(from_exact - full)))
    print(
        f"descriptors on {len(subset)} faces (176x144, 1280x720, astronaut): our chip vs dlib's chip max abs diff"
        f" {chip_diff:.1e}, max distance {chip_dist:.1e}; our points and chip vs dlib's"
        f" compute_face_descriptor(image, shape): {pipe_diff:.1e}, {pipe_dist:.1e}; with exact=True chips"
        f" {exact_dist:.1e} (dlib's chip vs dlib's pipeline: {self_dist:.1e})"
    )
    assert self_dist < 1e-5 and exact_dist < 1e-5
    assert chip_dist < 1e-3 and pipe_dist < 1e-3


def test_pyramid_level_equals_dlibs(dlib: Any) -> None:
    rng = np.random.default_rng(0)
    pyramid = dlib.pyramid_down(2)
    for h, w in [(9, 9), (9, 20), (10, 11), (37, 41), (144, 176), (8, 20), (5, 5)]:
        image = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        theirs = pyramid(image)
        mine = pyramid_down(image.astype(np.float32))
        assert mine.shape == theirs.shape, (h, w)
        np.testing.assert_array_equal(mine.astype(np.uint8), theirs)


def test_box_partly_outside_the_image_works_like_dlib(
    dlib: Any, ours: ShapePredictor, reference: Any, faces: dict[str, list[Face]]
) -> None:
    """Crop the frame through the face: feature pixels and chip samples fall outside and read black."""
    checked = 0
    for label in ("176x144", "1280x720"):
        for face in faces[label][::30]:
            x0, y0, x1, y1 = face.box
            for cut_x, cut_y in [(round(x0 + 0.3 * (x1 - x0)), 0), (0, round(y0 + 0.4 * (y1 - y0)))]:
                image = np.ascontiguousarray(face.image[cut_y:, cut_x:])
                box = (x0 - cut_x, y0 - cut_y, x1 - cut_x, y1 - cut_y)
                assert box[0] < 0 or box[1] < 0
                mine = ours.predict(image, box)
                shape = reference(image, dlib_rect(dlib, box))
                np.testing.assert_array_equal(mine, dlib_points(shape))
                theirs = dlib.get_face_chip(image, shape, size=CHIP, padding=PADDING)
                chip = extract_chip(image, mine, CHIP, PADDING)
                np.testing.assert_array_equal(extract_chip(image, mine, CHIP, PADDING, exact=True), theirs)
                assert (theirs == 0).all(axis=2).any()  # the cut shows as black in the chip
                np.testing.assert_array_equal((chip == 0).all(axis=2), (theirs == 0).all(axis=2))
                assert np.abs(chip.astype(np.int16) - theirs).max() <= 1
                checked += 1
    assert checked == 16


def test_chip_outside_the_image_is_black(dlib: Any, carphone: Frames) -> None:
    points = np.array([[100, 58], [88, 59], [63, 60], [74, 60], [81, 77]], np.float64) + np.array([5000, 0])
    shape = dlib.full_object_detection(
        dlib.rectangle(5050, 20, 5120, 100), [dlib.point(int(x), int(y)) for x, y in points]
    )
    assert not dlib.get_face_chip(carphone[0], shape, size=CHIP, padding=PADDING).any()
    assert not extract_chip(carphone[0], points).any()


def test_chip_transform_puts_the_template_on_the_landmarks(ours: ShapePredictor, faces: dict[str, list[Face]]) -> None:
    worst = 0.0
    for face in faces["176x144"][::10] + faces["astronaut 512x512"]:
        points = ours.predict(face.image, face.box)
        m = chip_transform(points, CHIP, PADDING)
        template = (PADDING + FACE_TEMPLATE_5) / (2 * PADDING + 1) * CHIP  # chip pixels
        mapped = template @ m[:, :2].T + m[:, 2]
        eyes = np.linalg.norm(points[:2].mean(axis=0) - points[2:4].mean(axis=0))
        worst = max(worst, float(np.abs(mapped - points).max() / eyes))
    print(f"template mapped by chip_transform vs landmarks: max {worst:.2f} eye distances")
    assert worst < 0.2  # a least-squares similarity through 5 points, not an interpolation


@pytest.mark.parametrize(
    "content",
    [
        b"",
        "truncated-100",
        "truncated-half",
        "truncated-1",
        b"not a model\n" * 100,
        "random",
        "header-then-zeros",
        RESNET,
    ],
    ids=[
        "empty",
        "first-100-bytes",
        "first-half",
        "last-byte-missing",
        "text",
        "random-bytes",
        "header-then-zeros",
        "resnet-dat",
    ],
)
def test_bad_files_raise_model_error_naming_the_file(
    dlib: Any, models_dir: Path, tmp_path: Path, content: bytes | str
) -> None:
    good = (models_dir / SHAPE5).read_bytes()
    data = {
        "truncated-100": good[:100],
        "truncated-half": good[: len(good) // 2],
        "truncated-1": good[:-1],
        "random": np.random.default_rng(1).integers(0, 256, 200_000).astype(np.uint8).tobytes(),
        "header-then-zeros": good[:64] + bytes(100_000),
        RESNET: (models_dir / RESNET).read_bytes(),
    }.get(content, content)
    assert isinstance(data, bytes)
    path = tmp_path / "model.dat"
    path.write_bytes(data)
    with pytest.raises(RuntimeError):
        dlib.shape_predictor(str(path))  # dlib rejects these files too
    with pytest.raises(ModelError, match=str(path)):
        ShapePredictor(path)


def test_fast_tokeniser_equals_the_plain_walk() -> None:
    rng = np.random.default_rng(2)
    for n in [1, 2, 100, 4095, 4096, 4097, 70_000]:
        for data in (rng.integers(0, 256, n).astype(np.uint8), np.zeros(n, np.uint8), np.full(n, 8, np.uint8)):
            np.testing.assert_array_equal(token_starts(data), walk_tokens(data))


def test_missing_file_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"missing\.dat"):
        ShapePredictor(tmp_path / "missing.dat")


def test_bad_inputs(ours: ShapePredictor, carphone: Frames) -> None:
    with pytest.raises(InputError):
        ours.predict(carphone[0].astype(np.float32), (50, 20, 120, 100))
    with pytest.raises(InputError):
        extract_chip(carphone[0][..., 0], np.zeros((5, 2)))
    with pytest.raises(ValueError, match="5 finite"):
        extract_chip(carphone[0], np.zeros((68, 2)))
    with pytest.raises(ValueError, match="size"):
        extract_chip(carphone[0], np.zeros((5, 2)), size=1)


def _median_ms(fn: Any, args: list[tuple[Any, ...]], rounds: int = 3) -> float:
    """Median CPU time of one call (CPU time: on a shared machine wall time mostly measures the others)."""
    times = []
    for _ in range(rounds):
        for a in args:
            t = time.process_time()
            fn(*a)
            times.append(time.process_time() - t)
    return 1e3 * float(np.median(times))


def test_timings(dlib: Any, ours: ShapePredictor, reference: Any, faces: dict[str, list[Face]]) -> None:
    """CPU ms per face (printed for docs/models.md; a loose bound only: shared CI machines are noisy)."""
    lines = []
    for label in ("176x144", "1280x720"):
        group = faces[label][::6]
        rects = [dlib_rect(dlib, f.box) for f in group]
        shapes = [reference(f.image, r) for f, r in zip(group, rects, strict=True)]
        points = [dlib_points(s) for s in shapes]
        t_ours = _median_ms(ours.predict, [(f.image, f.box) for f in group])
        t_dlib = _median_ms(reference, [(f.image, r) for f, r in zip(group, rects, strict=True)])
        c_ours = _median_ms(extract_chip, [(f.image, p) for f, p in zip(group, points, strict=True)])
        c_exact = _median_ms(
            lambda image, p: extract_chip(image, p, exact=True),
            [(f.image, p) for f, p in zip(group, points, strict=True)],
        )
        c_dlib = _median_ms(dlib.get_face_chip, [(f.image, s) for f, s in zip(group, shapes, strict=True)])
        lines.append(
            f"{label}: predict {t_ours:.2f} ms (dlib {t_dlib:.2f}), chip {c_ours:.2f} ms, exact chip"
            f" {c_exact:.2f} ms (dlib {c_dlib:.2f})"
        )
        assert t_ours < 50 and c_ours < 50 and c_exact < 50
    print("CPU ms per face, median: " + "; ".join(lines))
