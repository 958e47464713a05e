"""Full-frame PSNR and SSIM: model-free measurements that prove the pipeline on real pixels.

SSIM follows Wang et al. (2004) on the luma channel: an 11-tap Gaussian window (sigma 1.5), K1 = 0.01,
K2 = 0.03, population (not sample) local covariances, and the mean over the map without the half-window border
that the filter cannot see. That is the same definition scikit-image uses with ``gaussian_weights=True,
use_sample_covariance=False``, which the tests check against.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from streameval.analysis.base import Observation
from streameval.frames import FramePair

_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601


def luma(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Luma in [0, 255] as float64 (BT.601 weights)."""
    out: npt.NDArray[np.float64] = image.astype(np.float64) @ _LUMA
    return out


def resize_to(image: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """Bilinear resize (for comparing streams of different resolution)."""
    if image.shape[:2] == (height, width):
        return image
    zoom = (height / image.shape[0], width / image.shape[1], 1.0)
    out = ndimage.zoom(image.astype(np.float32), zoom, order=1, grid_mode=True, mode="nearest")
    resized: npt.NDArray[np.uint8] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return resized


def psnr(reference: npt.NDArray[np.uint8], test: npt.NDArray[np.uint8], data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all channels; ``inf`` for identical images."""
    if reference.shape != test.shape:
        raise ValueError(f"psnr needs equal shapes, got {reference.shape} and {test.shape}")
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def ssim(
    reference: npt.NDArray[np.float64], test: npt.NDArray[np.float64], data_range: float = 255.0, sigma: float = 1.5
) -> float:
    """Mean structural similarity of two single-channel images."""
    if reference.shape != test.shape or reference.ndim != 2:
        raise ValueError(f"ssim needs two equal 2-D images, got {reference.shape} and {test.shape}")
    radius = int(3.5 * sigma + 0.5)  # 11-tap window for sigma 1.5

    def blur(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        blurred: npt.NDArray[np.float64] = ndimage.gaussian_filter(
            x, sigma=sigma, truncate=radius / sigma, mode="reflect"
        )
        return blurred

    x = reference.astype(np.float64)
    y = test.astype(np.float64)
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    pad = radius
    if smap.shape[0] <= 2 * pad or smap.shape[1] <= 2 * pad:
        return float(smap.mean())
    return float(smap[pad:-pad, pad:-pad].mean())


class PixelAnalyser:
    """PSNR (RGB) and SSIM (luma) of the de-identified frame against the source frame."""

    name = "pixel"

    def __init__(self, rate: float | None = None) -> None:
        self.rate = rate

    def analyse(self, pair: FramePair) -> Observation:
        src = pair.source.image
        deid = resize_to(pair.deid.image, src.shape[0], src.shape[1])
        value = psnr(src, deid)
        return Observation(
            self.name,
            pair.t,
            {"psnr": value if math.isfinite(value) else None, "ssim": ssim(luma(src), luma(deid))},
        )

    def close(self) -> list[Observation]:
        return []
