"""PSNR and SSIM: model-free measurements of how far the de-identified pixels are from the source pixels.

SSIM follows Wang et al. (2004) on the luma channel: an 11-tap Gaussian window (sigma 1.5), K1 = 0.01,
K2 = 0.03, population (not sample) local covariances, and the mean over the map without the half-window border
that the filter cannot see. That is the same definition scikit-image uses with ``gaussian_weights=True,
use_sample_covariance=False``, which the tests check against.

SSIM runs on OpenCV in float32: its Gaussian blurs are 3x faster than in float64 at 1280x720, and the result
stays within about 1e-6 of scikit-image's float64 value because luma is centred on 128 before the local second
moments are taken (E[x^2] - E[x]^2 then cancels far smaller numbers). PSNR sums integer squares: exact.

The region is the primary source face (``FacePixelAnalyser``, the default: a square of 1.3 x the longer side of
the source face box, clipped to the frame, cut from both frames) or the whole frame (``PixelAnalyser``).
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from streameval import imaging
from streameval.analysis.base import Observation
from streameval.frames import FramePair

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

Region = Literal["face", "frame"]
REGIONS: tuple[Region, ...] = ("face", "frame")
FACE_SCALE = 1.3  # side of the face region / longer side of the source face box

_CENTRE = 128.0
# One cv2.transform row: the BT.601 luma weights, and -_CENTRE as the offset in the 4th column.
_CENTRED_LUMA = np.array([[0.299, 0.587, 0.114, -_CENTRE]], np.float32)


def centred_luma(image: U8) -> F32:
    """BT.601 luma of an RGB image (or the values of a grey one) minus 128, float32."""
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        grey: F32 = image.reshape(image.shape[:2]).astype(np.float32) - np.float32(_CENTRE)
        return grey
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB (H, W, 3) or grey (H, W) image, got shape {image.shape}")
    return np.asarray(cv2.transform(image.astype(np.float32, copy=False), _CENTRED_LUMA), np.float32)


def resize_to(image: U8, height: int, width: int) -> U8:
    """Resize (for comparing frames of different resolution): the area mean when shrinking, else bilinear."""
    if image.shape[:2] == (height, width):
        return image
    return imaging.resize(image, width, height, method="auto")


def psnr(reference: U8, test: U8, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all channels; ``inf`` for identical images."""
    if reference.shape != test.shape:
        raise ValueError(f"psnr needs equal shapes, got {reference.shape} and {test.shape}")
    # Integer squared differences summed in double: exact for any frame size streameval sees.
    sse = float(cv2.norm(reference, test, cv2.NORM_L2SQR))
    if sse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / (sse / reference.size))


_STRIP_ROWS = 128  # rows per SSIM pass (see ssim)


class _SsimConstants:
    def __init__(self, radius: int, sigma: float, data_range: float) -> None:
        self.ksize = (2 * radius + 1, 2 * radius + 1)
        self.sigma = sigma
        self.c1 = np.float32((0.01 * data_range) ** 2)
        self.c2 = np.float32((0.03 * data_range) ** 2)


def ssim(reference: U8, test: U8, data_range: float = 255.0, sigma: float = 1.5) -> float:
    """Mean structural similarity of the luma of two RGB images (or of two grey images), uint8."""
    if reference.shape != test.shape or reference.ndim not in (2, 3):
        raise ValueError(f"ssim needs two equal images, got {reference.shape} and {test.shape}")
    radius = int(3.5 * sigma + 0.5)  # 11-tap window for sigma 1.5, as scikit-image's truncate=3.5
    c = _SsimConstants(radius, sigma, data_range)
    h, w = reference.shape[:2]
    if h <= 2 * radius or w <= 2 * radius:  # no interior: the mean over the whole map, borders reflected
        return _ssim_sum(reference, test, c, slice(None), slice(None)) / float(h * w)
    # The mean leaves out the half-window border. Its map values only read real pixels, so the frame can be
    # cut into strips of rows (plus ``radius`` rows of context each side) whose float32 temporaries stay in
    # cache; at 1280x720 that is 2-3x faster than whole-frame passes on a busy 2-core machine.
    total = 0.0
    for r0 in range(radius, h - radius, _STRIP_ROWS):
        r1 = min(h - radius, r0 + _STRIP_ROWS)
        rows = slice(r0 - radius, r1 + radius)
        total += _ssim_sum(reference[rows], test[rows], c, slice(radius, radius + r1 - r0), slice(radius, w - radius))
    return total / float((h - 2 * radius) * (w - 2 * radius))


def _ssim_sum(reference: U8, test: U8, c: _SsimConstants, rows: slice, cols: slice) -> float:
    """Sum of the SSIM map of two images over ``rows`` x ``cols`` (float64 accumulation)."""

    def blur(a: F32) -> F32:  # BORDER_REFLECT is scipy's (and so scikit-image's) "reflect"
        out = cv2.GaussianBlur(a, c.ksize, c.sigma, borderType=cv2.BORDER_REFLECT)
        return np.asarray(out[rows, cols], np.float32)

    x, y = centred_luma(reference), centred_luma(test)
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx  # variances and covariance do not depend on the centring ...
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    mx += np.float32(_CENTRE)  # ... the means do
    my += np.float32(_CENTRE)
    smap = ((2 * mx * my + c.c1) * (2 * cxy + c.c2)) / ((mx * mx + my * my + c.c1) * (vx + vy + c.c2))
    return float(smap.sum(dtype=np.float64))


def face_region(
    box: tuple[float, float, float, float], width: int, height: int, scale: float = FACE_SCALE
) -> tuple[slice, slice] | None:
    """Rows and columns of the square of ``scale`` x the box's longer side around its centre, on the pixel
    grid (:func:`streameval.imaging.square_bounds`), clipped to a ``width`` x ``height`` frame; None if empty."""
    x0, y0, x1, y1 = box
    left, top, n = imaging.square_bounds((x0 + x1) / 2, (y0 + y1) / 2, scale * max(x1 - x0, y1 - y0))
    c0, r0 = max(0, left), max(0, top)
    c1, r1 = min(width, left + n), min(height, top + n)
    if c1 <= c0 or r1 <= r0:
        return None
    return slice(r0, r1), slice(c0, c1)


class PixelAnalyser:
    """PSNR (RGB) and SSIM (luma) of the de-identified frame against the source frame, over the whole frame.

    The de-identified stream is expected at the source's resolution (``evaluate`` has the decoder rescale it);
    a pair that still differs is resized here, counted in ``rescaled_pairs`` and logged once.
    """

    name = "pixel"
    region: Region = "frame"
    needs_faces = False

    def __init__(self, rate: float | None = None) -> None:
        self.rate = rate
        self.rescaled_pairs = 0

    def _deid_image(self, pair: FramePair) -> U8:
        src, deid = pair.source.image, pair.deid.image
        if deid.shape[:2] == src.shape[:2]:
            return deid
        if self.rescaled_pairs == 0:
            log.warning(
                "pixel: de-identified frames are %dx%d, source frames %dx%d: resizing per pair (slow at HD); "
                "the decoder normally rescales the de-identified stream once",
                deid.shape[1], deid.shape[0], src.shape[1], src.shape[0],
            )  # fmt: skip
        self.rescaled_pairs += 1
        return resize_to(deid, src.shape[0], src.shape[1])

    def _region(self, pair: FramePair) -> tuple[slice, slice] | None:
        """The rows and columns to compare; None when the pair has nothing to compare."""
        return slice(None), slice(None)

    def analyse(self, pair: FramePair) -> Observation:
        region = self._region(pair)
        if region is None:
            return Observation(self.name, pair.t, {"psnr": None, "ssim": None, "no_face": True})
        src = pair.source.image[region]
        deid = self._deid_image(pair)[region]
        value = psnr(src, deid)
        return Observation(
            self.name, pair.t, {"psnr": value if math.isfinite(value) else None, "ssim": ssim(src, deid)}
        )

    def close(self) -> list[Observation]:
        if self.rescaled_pairs:
            log.info("pixel: resized %d de-identified frames to the source size", self.rescaled_pairs)
        return []


class FacePixelAnalyser(PixelAnalyser):
    """PSNR and SSIM over the primary source face: a square of ``FACE_SCALE`` x the longer side of the source
    face box, clipped to the frame, cut from both frames at the same pixels. Pairs whose source frame has no
    face get no values (``no_face``)."""

    region: Region = "face"
    needs_faces = True

    def __init__(self, rate: float | None = None) -> None:
        super().__init__(rate)
        self._warned_no_faces = False

    def _region(self, pair: FramePair) -> tuple[slice, slice] | None:
        if pair.faces is None:  # the pipeline runs the face stage for this analyser; count, do not crash
            if not self._warned_no_faces:
                log.warning("pixel: region 'face' got a pair without face-stage results; counted as no face")
                self._warned_no_faces = True
            return None
        face = pair.faces.source.primary
        if face is None:
            return None
        return face_region(face.box, pair.source.width, pair.source.height)


def pixel_analyser(region: Region, rate: float | None = None) -> PixelAnalyser:
    """The analyser of ``region``."""
    return FacePixelAnalyser(rate) if region == "face" else PixelAnalyser(rate)
