"""Per-frame reference de-identifiers that hide the face rectangle: Gaussian blur, pixelation, black mask.

All are pure functions of an RGB uint8 image and its detections; they return a new image in which only the
pixels inside :func:`~streameval.deidentify.regions.face_bounds` of some detection differ from the input.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from streameval.deidentify.regions import face_bounds
from streameval.models.base import Detection, Image
from streameval.models.face_detector import check_image


def blur_faces(image: Image, detections: list[Detection], *, strength: float = 0.1, margin: float = 0.2) -> Image:
    """Gaussian blur of each face region; sigma = ``strength`` x the longer side of the detection box (pixels).

    The blur sees the pixels around the region too (reflected at the image border), so it has no dark rim;
    only the region's pixels are written back.
    """
    check_image(image)
    if not (math.isfinite(strength) and strength > 0):
        raise ValueError(f"strength must be a number > 0, got {strength!r}")
    out = image.copy()
    h, w = image.shape[:2]
    for det in detections:
        b = face_bounds(det, h, w, margin)
        if b is None:
            continue
        x0, y0, x1, y1 = det.box
        sigma = strength * max(x1 - x0, y1 - y0)
        # Filter a window 3 sigma larger than the region: the kernel's support, at a fraction of the frame's cost.
        pad = math.ceil(3 * sigma) + 1
        wx0, wy0, wx1, wy1 = max(0, b[0] - pad), max(0, b[1] - pad), min(w, b[2] + pad), min(h, b[3] + pad)
        window = out[wy0:wy1, wx0:wx1].astype(np.float32)
        blurred = ndimage.gaussian_filter(window, sigma=(sigma, sigma, 0), mode="reflect", truncate=3.0)
        rx0, ry0 = b[0] - wx0, b[1] - wy0
        region = blurred[ry0 : ry0 + b[3] - b[1], rx0 : rx0 + b[2] - b[0]]
        out[b[1] : b[3], b[0] : b[2]] = np.clip(np.rint(region), 0, 255).astype(np.uint8)
    return out


def pixelate_faces(image: Image, detections: list[Detection], *, block: int = 8, margin: float = 0.2) -> Image:
    """Replace each ``block`` x ``block`` cell of a face region by its mean colour (rounded half up).

    Cells start at the region's top-left corner; the last row and column of cells are cut by the region's edge.
    """
    check_image(image)
    if isinstance(block, bool) or not isinstance(block, int | np.integer) or block < 1:
        raise ValueError(f"block must be an integer >= 1, got {block!r}")
    out = image.copy()
    h, w = image.shape[:2]
    for det in detections:
        b = face_bounds(det, h, w, margin)
        if b is None:
            continue
        region = out[b[1] : b[3], b[0] : b[2]].astype(np.float64)
        rh, rw = region.shape[:2]
        rows = np.arange(0, rh, block)
        cols = np.arange(0, rw, block)
        # Sum over cells with reduceat, divide by each cell's pixel count (edge cells are smaller).
        sums = np.add.reduceat(np.add.reduceat(region, rows, axis=0), cols, axis=1)
        counts = np.outer(np.diff(np.append(rows, rh)), np.diff(np.append(cols, rw)))[..., None]
        means = np.clip(np.floor(sums / counts + 0.5), 0, 255).astype(np.uint8)  # half up
        cell_r = np.arange(rh) // block
        cell_c = np.arange(rw) // block
        out[b[1] : b[3], b[0] : b[2]] = means[cell_r[:, None], cell_c[None, :]]
    return out


def mask_faces(image: Image, detections: list[Detection], *, margin: float = 0.2) -> Image:
    """Paint each face region black."""
    check_image(image)
    out = image.copy()
    h, w = image.shape[:2]
    for det in detections:
        b = face_bounds(det, h, w, margin)
        if b is not None:
            out[b[1] : b[3], b[0] : b[2]] = 0
    return out
