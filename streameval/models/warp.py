"""Affine matrices for the detector's letterbox and the mesh's rotated crops, and numpy sampling.

The sampling functions (``warp_affine``, ``box_downsample``) are the readable reference that
:mod:`streameval.imaging` (OpenCV, what the models use) is tested against; the matrix helpers serve both.

Continuous pixel coordinates: pixel (row i, column j) covers [j, j+1) x [i, i+1), its centre is (j+0.5, i+0.5).
An affine ``matrix`` (2, 3) maps an output point (x, y, 1) to the source point it samples.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def warp_affine(image: npt.NDArray[np.generic], matrix: F64, size: tuple[int, int]) -> F32:
    """Bilinear sample ``image`` (H, W, C) at ``matrix`` @ output pixel centres; (h, w, C) float32, 0 outside."""
    out_w, out_h = size
    src = np.asarray(image, dtype=np.float32)
    h, w = src.shape[:2]
    m = np.asarray(matrix, dtype=np.float64)
    xs, ys = np.meshgrid(np.arange(out_w) + 0.5, np.arange(out_h) + 0.5)
    sx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2] - 0.5  # to index space (centres at integers)
    sy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2] - 0.5
    x0 = np.floor(sx).astype(np.int64)
    y0 = np.floor(sy).astype(np.int64)
    fx = (sx - x0).astype(np.float32)[..., None]
    fy = (sy - y0).astype(np.float32)[..., None]
    # Pad by one zero pixel on each side so neighbours just outside the image blend towards black.
    padded = np.zeros((h + 2, w + 2, src.shape[2]), np.float32)
    padded[1:-1, 1:-1] = src
    xi = np.clip(x0 + 1, 0, w + 1)
    yi = np.clip(y0 + 1, 0, h + 1)
    xj = np.clip(x0 + 2, 0, w + 1)
    yj = np.clip(y0 + 2, 0, h + 1)
    top = padded[yi, xi] * (1 - fx) + padded[yi, xj] * fx
    bottom = padded[yj, xi] * (1 - fx) + padded[yj, xj] * fx
    out: F32 = (top * (1 - fy) + bottom * fy).astype(np.float32, copy=False)
    outside = (sx < -1) | (sx > w) | (sy < -1) | (sy > h)
    out[outside] = 0.0
    return out


def box_downsample(image: npt.NDArray[np.uint8], factor: int) -> tuple[F32, int]:
    """Average ``factor`` x ``factor`` blocks (anti-aliasing before a strong bilinear reduction)."""
    if factor <= 1:
        return image.astype(np.float32), 1
    h, w = image.shape[:2]
    hh, ww = h // factor * factor, w // factor * factor
    blocks = image[:hh, :ww].astype(np.float32).reshape(hh // factor, factor, ww // factor, factor, -1)
    return blocks.mean(axis=(1, 3)), factor


def letterbox_matrix(width: int, height: int, size: int) -> tuple[F64, float, float, float]:
    """Matrix from a ``size`` x ``size`` letterboxed square to the source, plus scale and padding offsets.

    The whole image is fitted inside the square keeping its aspect ratio and centred; the rest is padding.
    A source point p appears at ``p * scale + (pad_x, pad_y)`` in the square.
    """
    scale = size / max(width, height)
    pad_x = (size - width * scale) / 2
    pad_y = (size - height * scale) / 2
    inv = 1.0 / scale
    matrix = np.array([[inv, 0.0, -pad_x * inv], [0.0, inv, -pad_y * inv]], dtype=np.float64)
    return matrix, scale, pad_x, pad_y


def rotated_crop_matrix(centre: tuple[float, float], side: float, angle: float, size: int) -> F64:
    """Matrix from a ``size`` x ``size`` crop to the source square of ``side`` pixels at ``centre``, rotated.

    ``angle`` (radians, image coordinates with y down) is the direction of the crop's x axis in the source.
    """
    c, s = math.cos(angle), math.sin(angle)
    k = side / size
    cx, cy = centre
    # p = centre + R @ ((q - size/2) * k)
    return np.array(
        [
            [c * k, -s * k, cx - (c * size / 2 - s * size / 2) * k],
            [s * k, c * k, cy - (s * size / 2 + c * size / 2) * k],
        ],
        dtype=np.float64,
    )


def apply_affine(matrix: F64, points: npt.NDArray[np.floating]) -> F64:
    """Map points (N, 2) with a (2, 3) affine matrix."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(matrix, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]
