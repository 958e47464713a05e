"""Colour transfer by matching per-channel mean and standard deviation in YCbCr (Reinhard-style).

Matching in a luma/chroma space moves brightness and skin tone separately, which keeps a pasted face from
looking lit by a different lamp. BT.601 full-range matrices, as JPEG uses them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

_RGB_TO_YCBCR: F64 = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_YCBCR_TO_RGB: F64 = np.linalg.inv(_RGB_TO_YCBCR).astype(np.float64)


def rgb_to_ycbcr(rgb: npt.ArrayLike) -> F64:
    """(..., 3) RGB in [0, 255] to Y, Cb, Cr (chroma centred on 0)."""
    out: F64 = np.asarray(rgb, dtype=np.float64) @ _RGB_TO_YCBCR.T
    return out


def ycbcr_to_rgb(ycc: npt.ArrayLike) -> F64:
    out: F64 = np.asarray(ycc, dtype=np.float64) @ _YCBCR_TO_RGB.T
    return out


def match_colour(pixels: npt.ArrayLike, reference: npt.ArrayLike, *, max_gain: float = 2.0) -> F64:
    """Map (N, 3) RGB ``pixels`` so their YCbCr mean and std equal those of (M, 3) RGB ``reference``.

    The std gain per channel is clipped to [1 / max_gain, max_gain] so a flat region cannot blow up noise.
    """
    src = rgb_to_ycbcr(np.asarray(pixels, dtype=np.float64).reshape(-1, 3))
    ref = rgb_to_ycbcr(np.asarray(reference, dtype=np.float64).reshape(-1, 3))
    if len(src) == 0 or len(ref) == 0:
        return np.asarray(pixels, dtype=np.float64).reshape(-1, 3).copy()
    gain = np.clip(ref.std(axis=0) / np.maximum(src.std(axis=0), 1e-6), 1 / max_gain, max_gain)
    out = (src - src.mean(axis=0)) * gain + ref.mean(axis=0)
    return ycbcr_to_rgb(out)
