"""Blur, pixelation and mask change only the face region, and do what they claim there (numpy references)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy import ndimage

from streameval.datasets import astronaut
from streameval.deidentify.filters import blur_faces, mask_faces, pixelate_faces
from streameval.deidentify.regions import face_bounds, region_mask
from streameval.errors import InputError
from streameval.models.base import Detection

Image = npt.NDArray[np.uint8]
FACE = Detection((180.0, 60.0, 300.0, 200.0), 0.9)  # the astronaut's face, by hand
MARGIN = 0.2
# face box grown by 0.2 x (120, 140) on each side: x 156..324, y 32..228
BOUNDS = (156, 32, 324, 228)


@pytest.fixture(scope="module")
def image() -> Image:
    return astronaut()


def _high_frequency_energy(region: Image, cutoff: float = 0.15) -> float:
    """Power above ``cutoff`` cycles/pixel of the grey region, Hann-windowed so the edges do not leak."""
    g = region.astype(np.float64).mean(axis=2)
    g = (g - g.mean()) * np.hanning(g.shape[0])[:, None] * np.hanning(g.shape[1])[None, :]
    power = np.abs(np.fft.fft2(g)) ** 2
    f = np.hypot(np.fft.fftfreq(g.shape[0])[:, None], np.fft.fftfreq(g.shape[1])[None, :])
    return float(power[f > cutoff].sum())


def _outside_identical(a: Image, b: Image, mask: npt.NDArray[np.bool_]) -> None:
    np.testing.assert_array_equal(a[~mask], b[~mask])


def test_face_bounds_by_hand() -> None:
    assert face_bounds(FACE, 512, 512, MARGIN) == BOUNDS
    assert face_bounds(FACE, 512, 512, 0.0) == (180, 60, 300, 200)
    # clipped at the image edge; gone when entirely outside
    assert face_bounds(Detection((-10.0, -5.0, 20.5, 30.0), 0.9), 100, 100, 0.0) == (0, 0, 21, 30)
    assert face_bounds(Detection((120.0, 10.0, 150.0, 40.0), 0.9), 100, 100, 0.0) is None
    with pytest.raises(ValueError, match="margin"):
        face_bounds(FACE, 512, 512, -0.1)


def test_blur_changes_only_the_region_and_matches_a_whole_image_gaussian(image: Image) -> None:
    out = blur_faces(image, [FACE], strength=0.1, margin=MARGIN)
    mask = region_mask(image.shape[0], image.shape[1], [FACE], MARGIN)
    assert mask.sum() == (BOUNDS[2] - BOUNDS[0]) * (BOUNDS[3] - BOUNDS[1])
    _outside_identical(out, image, mask)
    # Away from the image border, blurring a window equals blurring the whole image (same kernel, truncate 3).
    sigma = 0.1 * 140
    ref = ndimage.gaussian_filter(image.astype(np.float64), sigma=(sigma, sigma, 0), truncate=3.0)
    ref_u8 = np.clip(np.rint(ref), 0, 255).astype(np.uint8)
    diff = np.abs(out[mask].astype(int) - ref_u8[mask].astype(int))
    assert diff.max() <= 1  # float32 vs float64 accumulation flips an occasional rounding
    assert (diff == 0).mean() > 0.99


def test_blur_removes_high_frequencies_by_a_measured_factor(image: Image) -> None:
    x0, y0, x1, y1 = BOUNDS
    original = _high_frequency_energy(image[y0:y1, x0:x1])
    factors = []
    for strength in (0.01, 0.02, 0.1):
        out = blur_faces(image, [FACE], strength=strength, margin=MARGIN)
        factors.append(original / _high_frequency_energy(out[y0:y1, x0:x1]))
    # measured: ~23x at sigma 1.4 px, ~3100x at 2.8 px, ~4500x at 14 px (uint8 rounding sets the floor)
    assert factors[0] > 10
    assert factors[1] > 1000
    assert factors[2] > 1000
    assert factors[0] < factors[1] <= factors[2] * 1.05


@pytest.mark.parametrize("block", [1, 5, 8, 13])
def test_pixelate_yields_constant_blocks_equal_to_the_rounded_block_mean(image: Image, block: int) -> None:
    out = pixelate_faces(image, [FACE], block=block, margin=MARGIN)
    mask = region_mask(image.shape[0], image.shape[1], [FACE], MARGIN)
    _outside_identical(out, image, mask)
    x0, y0, x1, y1 = BOUNDS
    for r in range(y0, y1, block):
        for c in range(x0, x1, block):
            cell = out[r : min(r + block, y1), c : min(c + block, x1)]
            expected = np.floor(image[r : min(r + block, y1), c : min(c + block, x1)].reshape(-1, 3).mean(axis=0) + 0.5)
            np.testing.assert_array_equal(cell, np.broadcast_to(expected.astype(np.uint8), cell.shape))
    if block == 1:
        np.testing.assert_array_equal(out, image)


def test_mask_is_black_inside_and_untouched_outside(image: Image) -> None:
    out = mask_faces(image, [FACE], margin=MARGIN)
    mask = region_mask(image.shape[0], image.shape[1], [FACE], MARGIN)
    assert (out[mask] == 0).all()
    _outside_identical(out, image, mask)
    assert image[mask].mean() > 50  # it really was not black before


def test_several_faces_and_none(image: Image) -> None:
    second = Detection((20.0, 300.0, 80.0, 380.0), 0.8)
    out = mask_faces(image, [FACE, second], margin=0.0)
    expected = image.copy()
    expected[300:380, 20:80] = 0
    expected[60:200, 180:300] = 0
    np.testing.assert_array_equal(out, expected)
    for fn in (blur_faces, pixelate_faces, mask_faces):
        np.testing.assert_array_equal(fn(image, []), image)
        assert fn(image, []) is not image


def test_bad_arguments(image: Image) -> None:
    with pytest.raises(ValueError, match="strength"):
        blur_faces(image, [FACE], strength=0.0)
    with pytest.raises(ValueError, match="block"):
        pixelate_faces(image, [FACE], block=0)
    with pytest.raises(ValueError, match="block"):
        pixelate_faces(image, [FACE], block=2.5)  # type: ignore[arg-type, unused-ignore]
    with pytest.raises(InputError):
        mask_faces(image.astype(np.float32), [FACE])
