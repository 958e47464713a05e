"""Piecewise-affine image warping and polygon filling in numpy/scipy.

Continuous pixel coordinates as in :mod:`streameval.models.warp`: pixel (row i, column j) has its centre at
(x, y) = (j + 0.5, i + 0.5), which is also how the face mesh reports landmarks.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]


def triangle_affines(dst: F64, src: F64, triangles: npt.NDArray[np.integer]) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Per triangle, the (2, 3) affine map taking its ``dst`` corners to its ``src`` corners.

    Returns the (T, 2, 3) matrices and a (T,) flag of usable triangles (non-degenerate in ``dst``).
    """
    d = dst[triangles]  # (T, 3, 2)
    s = src[triangles]
    hom = np.concatenate([d, np.ones((*d.shape[:2], 1))], axis=2)  # (T, 3, 3): rows [x, y, 1] per corner
    det = np.linalg.det(hom)
    ok = np.abs(det) > 1e-6
    mats = np.zeros((len(triangles), 2, 3))
    if ok.any():
        # hom @ M.T = s  for each triangle  =>  M.T = solve(hom, s)
        mats[ok] = np.transpose(np.linalg.solve(hom[ok], s[ok]), (0, 2, 1))
    return mats, ok


def rasterise_triangles(
    points: F64,
    triangles: npt.NDArray[np.integer],
    height: int,
    width: int,
    usable: npt.NDArray[np.bool_] | None = None,
) -> I32:
    """(H, W) index of the triangle covering each pixel centre, -1 where none does (later triangles win)."""
    labels = np.full((height, width), -1, dtype=np.int32)
    for t, tri in enumerate(triangles):
        if usable is not None and not usable[t]:
            continue
        p = points[tri]  # (3, 2)
        x0 = max(0, int(np.floor(p[:, 0].min() - 0.5)))
        x1 = min(width, int(np.ceil(p[:, 0].max() + 0.5)))
        y0 = max(0, int(np.floor(p[:, 1].min() - 0.5)))
        y1 = min(height, int(np.ceil(p[:, 1].max() + 0.5)))
        if x1 <= x0 or y1 <= y0:
            continue
        xs, ys = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
        # Edge functions: a centre is inside when it lies on the same side of all three edges (either winding).
        e = []
        for a, b in ((0, 1), (1, 2), (2, 0)):
            e.append((p[b, 0] - p[a, 0]) * (ys - p[a, 1]) - (p[b, 1] - p[a, 1]) * (xs - p[a, 0]))
        eps = 1e-9
        inside = ((e[0] >= -eps) & (e[1] >= -eps) & (e[2] >= -eps)) | ((e[0] <= eps) & (e[1] <= eps) & (e[2] <= eps))
        block = labels[y0:y1, x0:x1]
        block[inside] = t
    return labels


def piecewise_affine_warp(
    texture: npt.NDArray[np.floating],
    src_points: F64,
    dst_points: F64,
    triangles: npt.NDArray[np.integer],
    height: int,
    width: int,
) -> tuple[F64, I32]:
    """Warp ``texture`` (h, w, C) so each triangle at ``src_points`` lands on the same triangle at ``dst_points``.

    Returns the (height, width, C) warped image (bilinear, 0 where no triangle covers a pixel) and the
    (height, width) triangle index map (-1 uncovered).
    """
    mats, ok = triangle_affines(dst_points, src_points, triangles)
    labels = rasterise_triangles(dst_points, triangles, height, width, ok)
    rows, cols = np.nonzero(labels >= 0)
    m = mats[labels[rows, cols]]  # (N, 2, 3)
    x, y = cols + 0.5, rows + 0.5
    sx = m[:, 0, 0] * x + m[:, 0, 1] * y + m[:, 0, 2] - 0.5  # to index space (centres at integers)
    sy = m[:, 1, 0] * x + m[:, 1, 1] * y + m[:, 1, 2] - 0.5
    tex = np.asarray(texture, dtype=np.float64)
    out = np.zeros((height, width, tex.shape[2]))
    for c in range(tex.shape[2]):
        out[rows, cols, c] = ndimage.map_coordinates(tex[..., c], [sy, sx], order=1, mode="nearest")
    return out, labels


def polygon_mask(polygon: F64, height: int, width: int) -> npt.NDArray[np.bool_]:
    """(H, W) mask of the pixel centres inside a closed polygon (even-odd rule), any winding or concavity."""
    mask = np.zeros((height, width), dtype=bool)
    poly = np.asarray(polygon, dtype=np.float64)
    x0 = max(0, int(np.floor(poly[:, 0].min())))
    x1 = min(width, int(np.ceil(poly[:, 0].max())))
    y0 = max(0, int(np.floor(poly[:, 1].min())))
    y1 = min(height, int(np.ceil(poly[:, 1].max())))
    if x1 <= x0 or y1 <= y0:
        return mask
    xs, ys = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
    inside = np.zeros(xs.shape, dtype=bool)
    a = poly
    b = np.roll(poly, -1, axis=0)
    for (ax, ay), (bx, by) in zip(a, b, strict=True):
        if ay == by:
            continue  # a horizontal edge never crosses a horizontal ray
        crosses = (ay > ys) != (by > ys)
        x_at = ax + (ys - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (xs < x_at)
    mask[y0:y1, x0:x1] = inside
    return mask
