"""streameval.imaging (OpenCV) against the numpy references: models.warp, models.i3d.resize_bilinear, block means.

Tolerances (OpenCV >= 5 is required: OpenCV 4 snaps bilinear sample positions to 1/32 pixel, up to 6 grey
levels off on these inputs):
- float32 output: within 0.01 grey levels of the reference (measured with OpenCV 5.1: 5e-5; with 5.0: 0.006);
- uint8 output: at most 1 grey level from the rounded reference (measured against the unrounded one: 0.5004
  for warps, 0.79 for bilinear resizes, whose OpenCV weights are fixed-point);
- letterbox: 0.5 + 0.01 when it box-filters first (the block mean is rounded to uint8; measured 0.47 at HD).
"""

from __future__ import annotations

import builtins
import importlib
import math
import sys
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from streameval import imaging
from streameval.datasets import example_video
from streameval.errors import MissingExtraError
from streameval.models import warp
from streameval.models.i3d import prepare_clip, resize_bilinear
from tests.videos import decode_rgb

U8 = npt.NDArray[np.uint8]

FLOAT_TOL = 0.01
BYTE_TOL = 1.0  # after rounding the reference


@pytest.fixture(scope="module")
def images() -> dict[str, U8]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:150, 0:210]
    return {
        "carphone": decode_rgb(example_video("carphone_pristine"), 1)[0],  # 176x144, a real face
        "hd": decode_rgb(example_video("bigbuckbunny"), 1)[0],  # 1280x720
        "noise": rng.integers(0, 256, (97, 131, 3)).astype(np.uint8),  # worst case: every pixel an edge
        "checker": np.repeat((((xx // 3 + yy // 3) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2),
    }


def matrices(width: int, height: int, size: int) -> list[tuple[str, npt.NDArray[np.float64]]]:
    """Rotated crops inside, across the edge and wholly outside the image, and plain shifts."""
    cx, cy, side = width / 2, height / 2, min(width, height) * 0.6
    out = [
        (f"rot{angle:.2f}", warp.rotated_crop_matrix((cx + 3.3, cy - 1.7), side, angle, size))
        for angle in (0.0, 0.3, -1.1, math.pi / 2, 2.9)
    ]
    out += [
        ("corner", warp.rotated_crop_matrix((2.0, height - 3.0), side, 0.7, size)),  # mostly outside
        ("edge", warp.rotated_crop_matrix((width - 0.5, cy), side * 1.5, -0.4, size)),
        ("outside", warp.rotated_crop_matrix((-5.0 * width, cy), side, 0.2, size)),
        ("upscale", warp.rotated_crop_matrix((cx, cy), size / 3.7, 0.25, size)),
        ("shift", np.array([[1.0, 0.0, 10.25], [0.0, 1.0, -3.5]])),
        ("identity", np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])),
    ]
    return out


@pytest.mark.parametrize("name", ["carphone", "hd", "noise", "checker"])
def test_warp_matches_the_numpy_reference(images: dict[str, U8], name: str) -> None:
    image = images[name]
    h, w = image.shape[:2]
    for label, m in matrices(w, h, 96):
        ref = warp.warp_affine(image, m, (96, 80))
        got = imaging.warp_affine(image, m, (96, 80))
        assert got.dtype == np.float32 and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=FLOAT_TOL, rtol=0, err_msg=label)
        got8 = imaging.warp_affine(image, m, (96, 80), np.uint8)
        assert got8.dtype == np.uint8
        assert np.abs(got8.astype(np.float64) - np.rint(ref)).max() <= BYTE_TOL, label


def test_warp_outside_is_black_and_float_input_works(images: dict[str, U8]) -> None:
    image = images["carphone"]
    far = np.array([[1.0, 0.0, 1000.0], [0.0, 1.0, 0.0]])
    assert not imaging.warp_affine(image, far, (20, 10)).any()
    m = warp.rotated_crop_matrix((80.0, 70.0), 60.0, 0.5, 32)
    as_float = imaging.warp_affine(image.astype(np.float32), m, (32, 32))
    np.testing.assert_allclose(as_float, warp.warp_affine(image, m, (32, 32)), atol=FLOAT_TOL, rtol=0)


@pytest.mark.parametrize("shape", [(37, 53), (224, 224), (300, 260), (1, 5), (720, 1280)])
def test_linear_resize_matches_resize_bilinear(shape: tuple[int, int]) -> None:
    image = np.random.default_rng(1).integers(0, 256, (*shape, 3)).astype(np.uint8)
    for width, height in ((224, 224), (97, 61)):
        ref = resize_bilinear(image, height, width)
        got = imaging.resize(image, width, height, dtype=np.float32)
        np.testing.assert_allclose(got, ref, atol=FLOAT_TOL, rtol=0)
        got8 = imaging.resize(image, width, height)
        assert got8.dtype == np.uint8 and np.abs(got8 - np.rint(ref)).max() <= BYTE_TOL


@pytest.mark.parametrize("factor", [2, 3, 5])
def test_area_resize_is_the_block_mean(images: dict[str, U8], factor: int) -> None:
    image = images["hd"]
    ref, _ = warp.box_downsample(image, factor)
    h, w = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    got = imaging.resize(image[:h, :w], w // factor, h // factor, method="area", dtype=np.float32)
    np.testing.assert_allclose(got, ref, atol=FLOAT_TOL, rtol=0)
    got8 = imaging.resize(image[:h, :w], w // factor, h // factor, method="auto")  # auto: area from 2x down
    assert np.abs(got8 - np.rint(ref)).max() <= BYTE_TOL


def _letterbox_reference(image: U8, size: int) -> tuple[npt.NDArray[np.float32], float, float, float]:
    """The numpy letterbox the detector used before OpenCV: block mean, then bilinear into the square."""
    h, w = image.shape[:2]
    small, factor = warp.box_downsample(image, max(1, int(max(h, w) / size / 2)))
    matrix, scale, pad_x, pad_y = warp.letterbox_matrix(small.shape[1], small.shape[0], size)
    return warp.warp_affine(small, matrix, (size, size)), scale / factor, pad_x, pad_y


@pytest.mark.parametrize("name", ["carphone", "hd", "noise", "portrait"])
def test_letterbox_matches_the_numpy_reference(images: dict[str, U8], name: str) -> None:
    image = np.ascontiguousarray(images["hd"][:, 300:700]) if name == "portrait" else images[name]
    square, scale, pad_x, pad_y = imaging.letterbox(image, 128)
    ref, ref_scale, ref_pad_x, ref_pad_y = _letterbox_reference(image, 128)
    assert (scale, pad_x, pad_y) == (ref_scale, ref_pad_x, ref_pad_y)
    # The block mean is rounded to a grey level before the bilinear step (OpenCV's uint8 INTER_AREA): 0.5.
    tol = 0.5 + FLOAT_TOL if max(image.shape[:2]) >= 4 * 128 else FLOAT_TOL
    np.testing.assert_allclose(square, ref, atol=tol, rtol=0)


def test_prepare_clip_matches_resize_bilinear(images: dict[str, U8]) -> None:
    crops = [images["carphone"], images["noise"], np.ascontiguousarray(images["hd"][100:500, 400:800])]
    clip = prepare_clip(crops)
    for crop, got in zip(crops, clip, strict=True):
        np.testing.assert_allclose(got, resize_bilinear(crop, 224, 224) / 127.5 - 1.0, atol=FLOAT_TOL / 127.5)


def _crop_reference(image: U8, cx: float, cy: float, side: float) -> U8:
    """Pixel by pixel: the square of round(side) pixels whose top-left is floor(centre - n / 2); black outside."""
    n = max(2, round(side))
    x0, y0 = math.floor(cx - n / 2), math.floor(cy - n / 2)
    out = np.zeros((n, n, 3), np.uint8)
    for r in range(n):
        for c in range(n):
            y, x = y0 + r, x0 + c
            if 0 <= y < image.shape[0] and 0 <= x < image.shape[1]:
                out[r, c] = image[y, x]
    return out


def test_crop_square_matches_a_pixel_loop(images: dict[str, U8]) -> None:
    image = images["carphone"]
    rng = np.random.default_rng(3)
    cases = [(88.0, 72.0, 50.0), (3.2, 140.7, 40.4), (170.0, 5.0, 91.5), (-30.0, 60.0, 20.0), (50.5, 50.5, 1.0)]
    cases += [(float(x), float(y), float(s)) for x, y, s in rng.uniform((-20, -20, 1), (200, 170, 120), (10, 3))]
    for cx, cy, side in cases:
        np.testing.assert_array_equal(imaging.crop_square(image, cx, cy, side), _crop_reference(image, cx, cy, side))


def test_missing_opencv_names_the_package_and_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_cv2(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "cv2":
            raise ImportError("No module named 'cv2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cv2)
    monkeypatch.delitem(sys.modules, "cv2")
    monkeypatch.delitem(sys.modules, "streameval.imaging")
    with pytest.raises(MissingExtraError, match=r"'opencv-python-headless'.*pip install opencv-python-headless"):
        importlib.import_module("streameval.imaging")
