"""Piecewise-affine warp, triangle rasterisation and polygon fill against hand cases and scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import Delaunay

from streameval.deidentify.piecewise import (
    piecewise_affine_warp,
    polygon_mask,
    rasterise_triangles,
    triangle_affines,
)


def test_triangle_affines_reproduce_corners_and_flag_degenerate() -> None:
    rng = np.random.default_rng(0)
    dst = rng.uniform(0, 50, (6, 2))
    src = rng.uniform(0, 50, (6, 2))
    tris = np.array([[0, 1, 2], [3, 4, 5]])
    mats, ok = triangle_affines(dst, src, tris)
    assert ok.all()
    for t, tri in enumerate(tris):
        mapped = dst[tri] @ mats[t, :, :2].T + mats[t, :, 2]
        np.testing.assert_allclose(mapped, src[tri], atol=1e-9)
    flat = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    _, ok = triangle_affines(flat, flat, np.array([[0, 1, 2]]))
    assert not ok[0]


def test_two_triangles_partition_a_square_exactly() -> None:
    pts = np.array([[2.0, 3.0], [12.0, 3.0], [12.0, 9.0], [2.0, 9.0]])
    labels = rasterise_triangles(pts, np.array([[0, 1, 2], [0, 2, 3]]), 15, 20)
    # pixel centres j + 0.5 in (2, 12) and i + 0.5 in (3, 9): columns 2..11, rows 3..8
    covered = labels >= 0
    expected = np.zeros((15, 20), bool)
    expected[3:9, 2:12] = True
    np.testing.assert_array_equal(covered, expected)
    # the diagonal from (2, 3) to (12, 9) splits them: centres above it belong to triangle 0
    rows, cols = np.nonzero(covered)
    above = (rows + 0.5 - 3.0) * 10.0 < (cols + 0.5 - 2.0) * 6.0
    assert (labels[rows[above], cols[above]] == 0).all()
    assert (
        labels[
            rows[~above & ((rows + 0.5 - 3.0) * 10.0 != (cols + 0.5 - 2.0) * 6.0)],
            cols[~above & ((rows + 0.5 - 3.0) * 10.0 != (cols + 0.5 - 2.0) * 6.0)],
        ]
        == 1
    ).all()


def test_warp_of_a_linear_ramp_is_exact() -> None:
    """Bilinear sampling reproduces a linear image exactly, so the warp equals the ramp at the mapped points."""
    h, w = 60, 80
    yy, xx = np.mgrid[0:h, 0:w]
    # value as a function of the continuous position of the pixel centre (x, y) = (j + .5, i + .5)
    ramp = (2.0 * (xx + 0.5) + 3.0 * (yy + 0.5) + 5.0)[..., None]
    rng = np.random.default_rng(1)
    src = np.array([[10, 10], [70, 10], [70, 50], [10, 50], [40, 30]], float) + rng.uniform(-3, 3, (5, 2))
    dst = np.array([[5, 8], [60, 12], [66, 44], [8, 40], [35, 25]], float)
    tris = np.asarray(Delaunay(src).simplices)
    out, labels = piecewise_affine_warp(ramp, src, dst, tris, h, w)
    mats, _ = triangle_affines(dst, src, tris)
    rows, cols = np.nonzero(labels >= 0)
    assert len(rows) > 1000
    m = mats[labels[rows, cols]]
    x, y = cols + 0.5, rows + 0.5
    sx = m[:, 0, 0] * x + m[:, 0, 1] * y + m[:, 0, 2]
    sy = m[:, 1, 0] * x + m[:, 1, 1] * y + m[:, 1, 2]
    np.testing.assert_allclose(out[rows, cols, 0], 2 * sx + 3 * sy + 5, atol=1e-9)
    assert (out[labels < 0] == 0).all()


def test_warp_matches_scikit_image_piecewise_affine() -> None:
    transform_mod = pytest.importorskip("skimage.transform")
    rng = np.random.default_rng(2)
    texture = rng.uniform(0, 255, (64, 64, 3))
    grid = np.array([[x, y] for x in (8.0, 32.0, 56.0) for y in (8.0, 32.0, 56.0)])
    src = grid + rng.uniform(-2, 2, grid.shape)
    dst = grid + rng.uniform(-4, 4, grid.shape)
    tris = np.asarray(Delaunay(dst).simplices)  # skimage triangulates the points it maps from (dst here)
    ours, labels = piecewise_affine_warp(texture, src, dst, tris, 64, 64)
    cls = transform_mod.PiecewiseAffineTransform
    # skimage puts pixel centres at integers: shift by half a pixel; warp() needs the output->input map
    if hasattr(cls, "from_estimate"):
        tf = cls.from_estimate(dst - 0.5, src - 0.5)
    else:  # scikit-image < 0.26
        tf = cls()
        tf.estimate(dst - 0.5, src - 0.5)
    ref = transform_mod.warp(texture, tf, order=1, mode="edge", preserve_range=True)
    inside = labels >= 0
    # The two rasterisers may give a pixel on a shared triangle edge to different neighbours; everywhere
    # else the values agree to rounding.
    agree = np.abs(ours - ref).max(axis=2) < 1e-6
    assert agree[inside].mean() > 0.95
    assert inside.sum() > 2000  # the hull of the grid, about 48 x 48 pixels


def test_polygon_mask_by_hand() -> None:
    square = np.array([[2.0, 3.0], [10.0, 3.0], [10.0, 8.0], [2.0, 8.0]])
    expected = np.zeros((12, 14), bool)
    expected[3:8, 2:10] = True
    np.testing.assert_array_equal(polygon_mask(square, 12, 14), expected)
    np.testing.assert_array_equal(polygon_mask(square[::-1], 12, 14), expected)  # either winding
    # concave L: the 10x10 square minus its upper right 5x5 quarter
    ell = np.array([[0.0, 0.0], [5.0, 0.0], [5.0, 5.0], [10.0, 5.0], [10.0, 10.0], [0.0, 10.0]])
    got = polygon_mask(ell, 12, 12)
    expected = np.zeros((12, 12), bool)
    expected[0:10, 0:5] = True
    expected[5:10, 5:10] = True
    np.testing.assert_array_equal(got, expected)
    assert not polygon_mask(ell + 100, 12, 12).any()
