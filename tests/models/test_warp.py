"""Affine sampling against scipy.ndimage and hand-computed mappings."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from streameval.models import warp
from streameval.models.face_detector import letterbox


def test_warp_matches_scipy_map_coordinates() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 53, 3)).astype(np.uint8)
    matrix = warp.rotated_crop_matrix((25.0, 17.0), 20.0, 0.4, 16)
    out = warp.warp_affine(image, matrix, (16, 16))
    xs, ys = np.meshgrid(np.arange(16) + 0.5, np.arange(16) + 0.5)
    src = warp.apply_affine(matrix, np.column_stack([xs.ravel(), ys.ravel()])) - 0.5
    ref = np.stack(
        [ndimage.map_coordinates(image[..., c].astype(np.float64), [src[:, 1], src[:, 0]], order=1) for c in range(3)],
        axis=-1,
    ).reshape(16, 16, 3)
    np.testing.assert_allclose(out, ref, atol=1e-3)


def test_identity_warp_returns_the_image_and_outside_is_black() -> None:
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    ident = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    np.testing.assert_allclose(warp.warp_affine(image, ident, (5, 4)), image)
    far = np.array([[1.0, 0, 100.0], [0, 1.0, 0]])
    assert not warp.warp_affine(image, far, (5, 4)).any()


def test_rotated_crop_maps_centre_and_axes() -> None:
    m = warp.rotated_crop_matrix((100.0, 50.0), 40.0, math.pi / 2, 20)
    # crop centre -> image centre; one crop pixel = 2 image pixels; crop x axis points down the image
    np.testing.assert_allclose(
        warp.apply_affine(m, np.array([[10.0, 10.0], [11.0, 10.0], [10.0, 11.0]])),
        [[100, 50], [100, 52], [98, 50]],
        atol=1e-9,
    )


def test_letterbox_places_the_image_centred() -> None:
    image = np.full((144, 176, 3), 200, np.uint8)  # carphone's size
    square, scale, pad_x, pad_y = letterbox(image, 128)
    assert scale == 128 / 176
    assert pad_x == 0 and pad_y == (128 - 144 * 128 / 176) / 2  # 11.636 px of padding top and bottom
    assert square[:11].max() == 0 and square[-11:].max() == 0  # padding rows are black
    np.testing.assert_allclose(square[13:-13], 200, atol=1e-3)


def test_letterbox_box_filters_strong_reductions() -> None:
    image = np.zeros((512, 512, 3), np.uint8)
    image[::2] = 255  # one-pixel stripes alias without a prefilter; their mean is 127.5
    square, scale, pad_x, pad_y = letterbox(image, 128)
    assert scale == 0.25 and pad_x == 0 and pad_y == 0
    # The box mean (127.5) is rounded to a grey level before the bilinear step (OpenCV's uint8 INTER_AREA).
    np.testing.assert_allclose(square, 127.5, atol=0.5 + 1e-3)
