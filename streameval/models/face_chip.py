"""dlib's aligned face chip (``get_face_chip_details`` + ``extract_image_chip``) with OpenCV, without dlib.

dlib's face recogniser takes a 150x150 chip cut from the frame by a similarity transform that puts the five
landmarks of its shape predictor where a mean face template has them, with 25% padding around the template.
This module reproduces that geometry and dlib's sampling:

* the chip location: the template scaled to the chip, a least-squares similarity onto the landmarks, turned
  into dlib's ``chip_details`` (a rectangle in the image, an angle, the chip size);
* when the chip is much smaller than that rectangle, dlib first shrinks the region around it with its
  ``pyramid_down<2>`` (5x5 binomial filter, every other pixel, truncating division) as many times as needed
  and samples the chip from that level, through the level coordinates dlib's ``rect_down`` gives;
* bilinear sampling whose result is truncated to uint8, and black where the 2x2 neighbourhood of a sample
  is not entirely inside the (level) image.

Pixel coordinates are dlib's and OpenCV's: pixel (column x, row y) is centred on the integer point (x, y).
Only the region around the chip is copied (to float32) and filtered. The pyramid levels equal dlib's
(``cv2.pyrDown`` on float32 sums the same integers). The bilinear step uses ``cv2.warpAffine`` with OpenCV 5,
which interpolates at exact positions in float32: a chip value then differs from dlib's (float64, truncated)
only where dlib's value falls a hair below an integer, about 1 in 10^5 values, by 1. OpenCV 4 rounds sample
positions to 1/32 pixel (10% of values off, by up to 3), so there the bilinear step runs in numpy with
dlib's float64 arithmetic, which gives dlib's chip exactly (``exact=True`` asks for it with any OpenCV).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from streameval.models.base import Image
from streameval.models.face_detector import check_image

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Rect = tuple[float, float, float, float]  # dlib drectangle: left, top, right, bottom (inclusive corners)

# dlib's mean positions of its 5 landmarks in a unit face square (get_face_chip_details), in the predictor's
# order: right eye outer and inner corner, left eye outer and inner corner (subject's left and right as
# seen in the image: x decreasing), base of the nose.
FACE_TEMPLATE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)

_OPENCV_MAJOR = int(cv2.__version__.split(".")[0])

# pyramid_down<2>::point_down(p) = p / 2 - (1.25, 0.75). Its filter centres level pixel j on 2j + 2 of the
# level above, so through each level dlib samples content half a pixel (of the level above) left of and
# below where its chip geometry puts it; we follow dlib.
_DOWN_OFFSET = (1.25, 0.75)


@dataclass(frozen=True)
class ChipDetails:
    """dlib's ``chip_details``: the chip is ``rect`` rotated by ``angle`` about its centre, at rows x cols."""

    rect: Rect
    angle: float  # radians
    rows: int
    cols: int


def face_chip_details(points5: npt.ArrayLike, size: int = 150, padding: float = 0.25) -> ChipDetails:
    """``dlib.get_face_chip_details`` for a 5-point shape ((5, 2) x, y pixels, as the shape predictor gives)."""
    pts = _check_points(points5)
    if size < 2 or padding < 0:
        raise ValueError(f"need size >= 2 and padding >= 0, got size={size!r} padding={padding!r}")
    template = (padding + FACE_TEMPLATE_5) / (2 * padding + 1) * size  # in dlib's order of operations
    a, b, shift = _similarity(template, pts)
    angle = math.atan2(b, a)
    scale = math.sqrt(a * a + b * b)
    # centre: the template similarity applied to (cols/2, rows/2), rect: dlib's centered_drect of the
    # scaled chip size, whose corners are (size*scale - 1) apart
    cx = a * size / 2 - b * size / 2 + shift[0]
    cy = b * size / 2 + a * size / 2 + shift[1]
    half = (size * scale - 1) / 2
    return ChipDetails((cx - half, cy - half, cx + half, cy + half), angle, size, size)


def chip_transform(points5: npt.ArrayLike, size: int = 150, padding: float = 0.25) -> F64:
    """Affine (2, 3) map from chip pixel (x, y, 1) to image pixel, as dlib samples without a pyramid.

    When the chip is much smaller than the face dlib samples a shrunk copy instead, whose content is offset
    from this map by half a pixel or more at full resolution (see ``_DOWN_OFFSET``).
    """
    details = face_chip_details(points5, size, padding)
    return _chip_to_source(details.rect, details)


def extract_chip(
    image: Image, points5: npt.ArrayLike, size: int = 150, padding: float = 0.25, *, exact: bool | None = None
) -> Image:
    """The aligned face chip (size, size, 3) uint8 dlib's ``get_face_chip(image, shape, size, padding)`` and
    ``compute_face_descriptor`` cut for this 5-point shape (``exact``: see :func:`extract_image_chip`)."""
    return extract_image_chip(image, face_chip_details(points5, size, padding), exact=exact)


def extract_image_chip(image: Image, details: ChipDetails, *, exact: bool | None = None) -> Image:
    """dlib's ``extract_image_chip`` (bilinear, with its image pyramid) for an RGB uint8 image.

    ``exact=False`` interpolates with ``cv2.warpAffine``; ``True`` with dlib's float64 arithmetic in numpy,
    equal to dlib's chip (about 1 ms more); ``None`` (default): OpenCV from version 5, numpy before (see the
    module docstring).
    """
    check_image(image)
    h, w = image.shape[:2]
    rect, chip_area = details.rect, details.rows * details.cols
    grow = 2.0
    down = _rect_down(rect)
    while _area(down) > chip_area:  # dlib's pyramid depth loop, on the untranslated rect
        down = _rect_down(down)
        grow = grow * 2 + 2  # a border for the filter of every level
    corners = _rotated_corners(rect, details.angle)
    left, top = corners[:, 0].min() - grow, corners[:, 1].min() - grow
    right, bottom = corners[:, 0].max() + grow, corners[:, 1].max() + grow
    box = [_lround(v) for v in (max(left, 0.0), max(top, 0.0), min(right, w - 1.0), min(bottom, h - 1.0))]
    if box[0] > box[2] or box[1] > box[3]:
        return np.zeros((details.rows, details.cols, 3), np.uint8)  # the chip lies entirely outside the image
    # float32 copy of the needed region only: the pyramid's integer sums are exact in float32
    source = image[box[1] : box[3] + 1, box[0] : box[2] + 1].astype(np.float32)
    local = (rect[0] - box[0], rect[1] - box[1], rect[2] - box[0], rect[3] - box[1])
    while _area(_rect_down(local)) > chip_area:
        source = pyramid_down(source)
        local = _rect_down(local)
    if source.shape[0] < 2 or source.shape[1] < 2:
        return np.zeros((details.rows, details.cols, 3), np.uint8)
    matrix = _chip_to_source(local, details)
    if exact is None:
        exact = _OPENCV_MAJOR < 5
    sample = _bilinear_exact if exact else _bilinear_opencv
    return sample(source, matrix, details.rows, details.cols)


def _bilinear_opencv(source: F32, matrix: F64, rows: int, cols: int) -> Image:
    sampled = cv2.warpAffine(
        source, matrix, (cols, rows), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT
    )
    chip: Image = sampled.astype(np.uint8)  # truncates, as dlib does (bilinear values lie in [0, 255])
    x, y = _sample_points(matrix, rows, cols)
    chip[~_inside(x, y, source.shape[1], source.shape[0])] = 0
    return chip


def _bilinear_exact(source: F32, matrix: F64, rows: int, cols: int) -> Image:
    """dlib's interpolate_bilinear: float64, its order of operations, truncation (in-place numpy: large
    temporaries cost more than the arithmetic)."""
    h, w = source.shape[:2]
    x, y = _sample_points(matrix, rows, cols)
    inside = _inside(x, y, w, h)
    left, top = np.floor(x), np.floor(y)
    fx, fy = (x - left).ravel(), (y - top).ravel()
    gx, gy = 1 - fx, 1 - fy
    top *= w
    top += left
    top[~inside] = 0
    index = top.astype(np.intp).ravel()
    planes = np.ascontiguousarray(source.transpose(2, 0, 1), dtype=np.float64).reshape(source.shape[2], -1)
    # (1 - fy) * ((1 - fx) * tl + fx * tr) + fy * ((1 - fx) * bl + fx * br)
    upper = planes.take(index, axis=1)
    upper *= gx
    term = planes.take(index + 1, axis=1)
    term *= fx
    upper += term
    upper *= gy
    lower = planes.take(index + w, axis=1)
    lower *= gx
    planes.take(index + (w + 1), axis=1, out=term)
    term *= fx
    lower += term
    lower *= fy
    upper += lower
    chip: Image = np.ascontiguousarray(upper.astype(np.uint8).reshape(-1, rows, cols).transpose(1, 2, 0))
    chip[~inside] = 0
    return chip


def pyramid_down(image: F32) -> F32:
    """dlib's ``pyramid_down<2>`` on an image of integer values: 5x5 binomial sum over 256, truncated;
    output pixel (x, y) from input pixels 2x..2x+4, 2y..2y+4, size ((h-3)//2, (w-3)//2); nothing for images
    of 8 pixels or fewer across."""
    h, w = image.shape[:2]
    if h <= 8 or w <= 8:
        return np.zeros((0, 0, *image.shape[2:]), np.float32)
    # cv2.pyrDown uses the same filter centred on 2x, 2y; past its first row and column no border is
    # involved, and float32 holds the integer sums exactly
    level = cv2.pyrDown(image)[1 : 1 + (h - 3) // 2, 1 : 1 + (w - 3) // 2]
    out: F32 = np.floor(level)
    return out


# ---------------------------------------------------------------------------------------------------------
# dlib geometry helpers


def _check_points(points5: npt.ArrayLike) -> F64:
    pts = np.asarray(points5, dtype=np.float64)
    if pts.shape != (5, 2) or not np.isfinite(pts).all():
        raise ValueError(f"expected 5 finite (x, y) landmarks of dlib's 5-point predictor, got shape {pts.shape}")
    return pts


def _similarity(src: F64, dst: F64) -> tuple[float, float, F64]:
    """Least-squares similarity dst ~ [[a, -b], [b, a]] src + shift (dlib fits it with Umeyama's SVD)."""
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - ms, dst - md
    norm = float((s * s).sum())
    a = float((s * d).sum()) / norm
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / norm
    shift = md - np.array([a * ms[0] - b * ms[1], b * ms[0] + a * ms[1]])
    return a, b, shift


def _rect_down(rect: Rect) -> Rect:
    """pyramid_down<2>::rect_down."""
    ox, oy = _DOWN_OFFSET
    return rect[0] / 2 - ox, rect[1] / 2 - oy, rect[2] / 2 - ox, rect[3] / 2 - oy


def _area(rect: Rect) -> float:
    """drectangle::area: (right - left + 1) * (bottom - top + 1), 0 when empty."""
    left, top, right, bottom = rect
    if left > right or top > bottom:
        return 0.0
    return (right - left + 1) * (bottom - top + 1)


def _lround(v: float) -> int:
    """std::lround: halves away from zero (Python's round goes to even)."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def _rotated_corners(rect: Rect, angle: float) -> F64:
    """dlib's rotate_point of the corners tl, tr, bl, br about the rect centre."""
    left, top, right, bottom = rect
    cx, cy = (left + right) / 2, (top + bottom) / 2
    c, s = math.cos(angle), math.sin(angle)
    out = []
    for x, y in ((left, top), (right, top), (left, bottom), (right, bottom)):
        dx, dy = x - cx, y - cy
        out.append((c * dx - s * dy + cx, s * dx + c * dy + cy))
    return np.array(out)


def _chip_to_source(rect: Rect, details: ChipDetails) -> F64:
    """Affine map from chip pixels to ``rect``'s coordinates: chip corners (0, 0), (cols-1, 0), (0, rows-1) go
    to the rotated rect's top-left, top-right and bottom-left corners (dlib solves the same three points)."""
    tl, tr, bl, _ = _rotated_corners(rect, details.angle)
    ex = (tr - tl) / (details.cols - 1)
    ey = (bl - tl) / (details.rows - 1)
    return np.array([[ex[0], ey[0], tl[0]], [ex[1], ey[1], tl[1]]])


def _sample_points(matrix: F64, rows: int, cols: int) -> tuple[F64, F64]:
    """Source x and y (rows, cols) of every chip pixel, summed in dlib's order: m @ p + b."""
    cx = np.arange(cols, dtype=np.float64)
    ry = np.arange(rows, dtype=np.float64)[:, None]
    x: F64 = matrix[0, 0] * cx + matrix[0, 1] * ry
    x += matrix[0, 2]
    y: F64 = matrix[1, 0] * cx + matrix[1, 1] * ry
    y += matrix[1, 2]
    return x, y


def _inside(x: F64, y: F64, w: int, h: int) -> npt.NDArray[np.bool_]:
    """Samples whose 2x2 neighbourhood lies inside a w x h image (dlib leaves the others black)."""
    inside: npt.NDArray[np.bool_] = (x >= 0) & (x < w - 1) & (y >= 0) & (y < h - 1)
    return inside
