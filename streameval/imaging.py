"""Every warp, resize and crop of streameval's hot path, on OpenCV.

Coordinates follow :mod:`streameval.models.warp`: pixel (row i, column j) covers [j, j+1) x [i, i+1) with its
centre at (j + 0.5, i + 0.5), and a (2, 3) ``matrix`` maps an OUTPUT point to the SOURCE point it samples. The
numpy functions there (``warp_affine``, ``box_downsample``) and ``models.i3d.resize_bilinear`` are the references
these functions are tested against.

Only the pixels an operation reads are touched: a warp converts just the source region under its output to
float, never the whole frame. OpenCV runs single-threaded here: the pipeline already runs one thread per
analysis lane, and a thread pool per call would only fight them for the same cores.
"""

from __future__ import annotations

import logging
import math
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from streameval.errors import MissingExtraError
from streameval.models.warp import letterbox_matrix

try:
    import cv2
except ImportError as exc:  # a core dependency: only a broken or partial install gets here
    raise MissingExtraError(None, "opencv-python-headless", "streameval's image processing (OpenCV)") from exc

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

cv2.setNumThreads(1)
if int(cv2.__version__.split(".")[0]) < 5:
    # OpenCV 4 rounds bilinear sample positions to 1/32 pixel: off by up to a few grey levels at sharp edges.
    log.warning("OpenCV %s is older than 5.0: warps differ slightly from the reference sampling", cv2.__version__)

_WARP_FLAGS = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP


def opencv_matrix(matrix: npt.ArrayLike) -> F64:
    """The same mapping in OpenCV's convention, where pixel centres sit at integer coordinates.

    Output index q is the continuous point q + 0.5; its source point minus 0.5 is OpenCV's source index, so
    the translation becomes ``t + A @ (0.5, 0.5) - 0.5``.
    """
    m = np.array(matrix, dtype=np.float64).reshape(2, 3)
    m[:, 2] += m[:, :2].sum(axis=1) * 0.5 - 0.5
    return m


@overload
def warp_affine(image: U8 | F32, matrix: npt.ArrayLike, size: tuple[int, int]) -> F32: ...
@overload
def warp_affine(image: U8 | F32, matrix: npt.ArrayLike, size: tuple[int, int], dtype: type[np.float32]) -> F32: ...
@overload
def warp_affine(image: U8, matrix: npt.ArrayLike, size: tuple[int, int], dtype: type[np.uint8]) -> U8: ...
def warp_affine(
    image: U8 | F32,
    matrix: npt.ArrayLike,
    size: tuple[int, int],
    dtype: type[np.float32] | type[np.uint8] = np.float32,
) -> F32 | U8:
    """Bilinear samples of ``image`` (H, W, C) at ``matrix`` @ the output pixel centres; (h, w, C), black outside.

    ``size`` is (width, height). ``dtype`` float32 keeps fractional grey levels (the source region under the
    output is converted, nothing else); uint8 rounds them and converts nothing.
    """
    out_w, out_h = size
    channels = image.shape[2] if image.ndim == 3 else 1
    m = opencv_matrix(matrix)
    # Bounding box of the sample points, widened by the bilinear neighbour and one pixel of rounding slack.
    corners = m[:, :2] @ np.array([[0, out_w - 1, 0, out_w - 1], [0, 0, out_h - 1, out_h - 1]], np.float64)
    corners += m[:, 2:]
    h, w = image.shape[:2]
    if not np.isfinite(corners).all():
        raise ValueError(f"warp matrix is not finite: {np.asarray(matrix).tolist()}")
    x0 = max(0, math.floor(corners[0].min()) - 1)
    y0 = max(0, math.floor(corners[1].min()) - 1)
    x1 = min(w, math.floor(corners[0].max()) + 3)
    y1 = min(h, math.floor(corners[1].max()) + 3)
    if x1 <= x0 or y1 <= y0:  # the output sees nothing of the image
        shape = (out_h, out_w, channels) if image.ndim == 3 else (out_h, out_w)
        return np.zeros(shape, np.float32) if dtype is np.float32 else np.zeros(shape, np.uint8)
    region = image[y0:y1, x0:x1]
    if dtype is np.float32 and region.dtype != np.float32:
        region = region.astype(np.float32)
    elif dtype is np.uint8 and region.dtype != np.uint8:
        raise ValueError(f"a uint8 warp needs a uint8 image, got {region.dtype}")
    m[0, 2] -= x0  # the region's own coordinates
    m[1, 2] -= y0
    out = cv2.warpAffine(region, m, (out_w, out_h), flags=_WARP_FLAGS, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if image.ndim == 3 and out.ndim == 2:  # OpenCV drops a single channel axis
        out = out[..., None]
    # np.asarray copies nothing here: it only gives the result its static type
    return np.asarray(out, np.float32) if dtype is np.float32 else np.asarray(out, np.uint8)


Resize = Literal["linear", "area", "auto"]


@overload
def resize(image: U8, width: int, height: int, *, method: Resize = ...) -> U8: ...
@overload
def resize(image: U8 | F32, width: int, height: int, *, method: Resize = ..., dtype: type[np.float32]) -> F32: ...
@overload
def resize(image: U8, width: int, height: int, *, method: Resize = ..., dtype: type[np.uint8]) -> U8: ...
def resize(
    image: U8 | F32,
    width: int,
    height: int,
    *,
    method: Resize = "linear",
    dtype: type[np.float32] | type[np.uint8] = np.uint8,
) -> F32 | U8:
    """``image`` (H, W, C) resized to (height, width, C).

    ``linear``: bilinear with half-pixel centres and edge clamping, no antialiasing (``resize_bilinear``'s and
    ``tf.image.resize``'s convention). ``area``: the mean of the source pixels under each output pixel (a box
    filter; exact block means for integer factors). ``auto``: area when shrinking on both axes, where bilinear
    would alias, else linear. ``dtype`` float32 converts the input first (exact weights), uint8 resizes the
    bytes (within one grey level of the exact result).
    """
    if image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must have shape (H, W, C) with H, W >= 1, got {image.shape}")
    if width < 1 or height < 1:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    if method == "auto":
        method = "area" if width < image.shape[1] and height < image.shape[0] else "linear"
    src: U8 | F32 = image
    if dtype is np.float32 and image.dtype != np.float32:
        src = image.astype(np.float32)
    elif dtype is np.uint8 and image.dtype != np.uint8:
        raise ValueError(f"a uint8 resize needs a uint8 image, got {image.dtype}")
    if image.shape[:2] == (height, width):
        return src if src is not image else src.copy()
    flag = cv2.INTER_AREA if method == "area" else cv2.INTER_LINEAR
    out = cv2.resize(src, (width, height), interpolation=flag)
    if out.ndim == 2:
        out = out[..., None]
    # np.asarray copies nothing here: it only gives the result its static type
    return np.asarray(out, np.float32) if dtype is np.float32 else np.asarray(out, np.uint8)


def letterbox(image: U8, size: int) -> tuple[F32, float, float, float]:
    """Fit the whole image into a ``size`` square (aspect kept, centred, black padding); float32 in [0, 255].

    Shrinking by more than 2x first averages ``factor`` x ``factor`` blocks (``factor`` = the integer part of
    half the reduction; the last partial block row/column is dropped), then bilinear sampling places the image
    in the square. Returns the square and the mapping: a source pixel point p sits at
    ``p * scale + (pad_x, pad_y)``.
    """
    h, w = image.shape[:2]
    factor = max(1, int(max(h, w) / size / 2))
    small: U8 = image
    if factor > 1:
        hh, ww = h // factor * factor, w // factor * factor
        small = resize(image[:hh, :ww], ww // factor, hh // factor, method="area")
    matrix, scale, pad_x, pad_y = letterbox_matrix(small.shape[1], small.shape[0], size)
    square = warp_affine(small, matrix, (size, size))
    return square, scale / factor, pad_x, pad_y  # a source point p is the small image's point p / factor


def square_bounds(cx: float, cy: float, side: float) -> tuple[int, int, int]:
    """The integer pixel square (x0, y0, n) of a square of ``side`` centred at (cx, cy): n = round(side) >= 1."""
    n = max(1, round(side))
    return math.floor(cx - n / 2), math.floor(cy - n / 2), n


def crop_square(image: U8, cx: float, cy: float, side: float) -> U8:
    """The pixels of a square of ``side`` (>= 2 after rounding) centred at (cx, cy); parts outside are black.

    No resampling: the square snaps to the pixel grid (``square_bounds``).
    """
    x0, y0, n = square_bounds(cx, cy, max(2.0, side))
    h, w = image.shape[:2]
    out = np.zeros((n, n, *image.shape[2:]), image.dtype)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(w, x0 + n), min(h, y0 + n)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out
