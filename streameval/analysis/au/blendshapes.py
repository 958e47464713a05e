"""The 17 OpenFace AU intensities from MediaPipe's 52 face blendshapes, and their combination with the geometry.

The blendshapes are ARKit's, and ARKit defines most of them as single facial actions of FACS (``browInnerUp``
is the inner-brow raiser, ``cheekSquint`` the cheek raiser, ...). Each AU therefore reads the blendshape(s) that
describe the same movement, averaged over the left and right shape (OpenFace's AUs are not lateralised). A
blendshape coefficient of 1 is the shape at its full extent, so it is read as FACS's maximum (intensity 5) and
the mapping is ``AU = 5 * clip(sum(weight * coefficient), 0, 1)``: fixed by the definitions, fitted to nothing.

``COMBINED_SOURCE`` says per AU which signal the ``combined`` AU model uses and why; docs/action_units.md has
the table. No OpenFace ground truth is available to the project, so these choices are argued from the AUs'
definitions and the issue's held-out measurement, not measured here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
import numpy.typing as npt

from streameval.analysis.au.estimator import AU_MAX, AU_NAMES
from streameval.errors import UsageError
from streameval.models.face_landmarker import BLENDSHAPE_NAMES

F64 = npt.NDArray[np.float64]

AUModel = Literal["geometry", "blendshapes", "combined"]
AU_MODELS: tuple[AUModel, ...] = ("geometry", "blendshapes", "combined")


@dataclass(frozen=True, slots=True)
class BlendshapeAU:
    au: str
    terms: tuple[tuple[str, float], ...]  # (blendshape, weight)
    why: str


def _both(stem: str, weight: float = 1.0) -> tuple[tuple[str, float], ...]:
    """The left and right shape of ``stem``, averaged."""
    return ((f"{stem}Left", weight / 2), (f"{stem}Right", weight / 2))


MAPPING: tuple[BlendshapeAU, ...] = (
    BlendshapeAU("AU01_r", (("browInnerUp", 1.0),), "inner brow raiser: browInnerUp is its ARKit counterpart"),
    BlendshapeAU("AU02_r", _both("browOuterUp"), "outer brow raiser: browOuterUp"),
    BlendshapeAU("AU04_r", _both("browDown"), "brow lowerer: browDown (brows lowered and drawn together)"),
    BlendshapeAU("AU05_r", _both("eyeWide"), "upper lid raiser: eyeWide (the lids widened)"),
    BlendshapeAU("AU06_r", _both("cheekSquint"), "cheek raiser: cheekSquint (cheeks raised around the eyes)"),
    BlendshapeAU("AU07_r", _both("eyeSquint"), "lid tightener: eyeSquint (lower lids raised and tightened)"),
    BlendshapeAU("AU09_r", _both("noseSneer"), "nose wrinkler: noseSneer (nose wings and sides raised)"),
    BlendshapeAU("AU10_r", _both("mouthUpperUp"), "upper lip raiser: mouthUpperUp"),
    BlendshapeAU("AU12_r", _both("mouthSmile"), "lip corner puller: mouthSmile (corners up and back)"),
    BlendshapeAU("AU14_r", _both("mouthDimple"), "dimpler: mouthDimple (corners pulled back and in)"),
    BlendshapeAU("AU15_r", _both("mouthFrown"), "lip corner depressor: mouthFrown (corners pulled down)"),
    BlendshapeAU("AU17_r", (("mouthShrugLower", 1.0),), "chin raiser: mouthShrugLower (lower lip pushed up)"),
    BlendshapeAU("AU20_r", _both("mouthStretch"), "lip stretcher: mouthStretch (corners pulled sideways)"),
    BlendshapeAU(
        "AU23_r",
        _both("mouthPress"),
        "lip tightener: no ARKit shape is AU23; mouthPress (AU24, lips pressed) shares its thinned red lips",
    ),
    BlendshapeAU(
        "AU25_r",
        (("jawOpen", 1.0), ("mouthClose", -1.0)),
        "lips part: the jaw opened less the lips held closed (mouthClose closes them whatever the jaw does)",
    ),
    BlendshapeAU("AU26_r", (("jawOpen", 1.0),), "jaw drop: jawOpen"),
    BlendshapeAU("AU45_r", _both("eyeBlink"), "blink: eyeBlink (the lids closed)"),
)

# Which signal the combined model reads per AU. "geometry": the mesh distances measure the movement directly and
# the held-out comparison with OpenFace found them tracking it (mouth, cheek and blink AUs, PCC about
# 0.7-0.98); "blendshapes": geometry fails there (brows and AU05, AU20: PCC 0.3 or below, some negative) or cannot
# see the action, and a blendshape is the AU's own counterpart; "mean": both measure the same movement with
# neither known better, so their mean halves each one's independent error.
COMBINED_SOURCE: dict[str, Literal["geometry", "blendshapes", "mean"]] = {
    "AU01_r": "blendshapes",  # brow heights against the eye line mix with lid movement and head pitch
    "AU02_r": "blendshapes",
    "AU04_r": "blendshapes",  # the furrow between the brows is appearance; geometry sees only the brows' drop
    "AU05_r": "blendshapes",  # the lid's rise is ~1 px on small faces; eyeWide is trained on it directly
    "AU06_r": "geometry",  # cheek height tracks OpenFace; cheekSquint stays at 0 even on a broad smile
    "AU07_r": "mean",  # lower-lid rise (geometry) and eyeSquint describe the same movement
    "AU09_r": "geometry",  # noseSneer, its counterpart, stays at 0 on every test face (so does cheekSquint)
    "AU10_r": "geometry",  # upper-lip height: a mouth AU geometry measures directly
    "AU12_r": "geometry",
    "AU14_r": "blendshapes",  # geometry relies on the mesh's depth of the corners, its weakest cue
    "AU15_r": "geometry",
    "AU17_r": "mean",  # chin-to-lip distance and mouthShrugLower: the same movement, both indirect
    "AU20_r": "blendshapes",  # geometry's mouth width confuses AU20 with AU12 and an open mouth
    "AU23_r": "mean",  # neither has a direct measure: lip thinning (geometry), mouthPress (AU24's shape)
    "AU25_r": "geometry",  # the inner-lip gap is the definition of lips apart
    "AU26_r": "geometry",  # chin below the eye line
    "AU45_r": "geometry",  # eye aperture
}


@cache
def _weights() -> F64:
    weights = np.zeros((len(AU_NAMES), len(BLENDSHAPE_NAMES)))
    for row, entry in enumerate(MAPPING):
        if entry.au != AU_NAMES[row]:
            raise RuntimeError(f"blendshape mapping out of order at {entry.au}")
        for name, weight in entry.terms:
            weights[row, BLENDSHAPE_NAMES.index(name)] = weight
    return weights


def blendshapes_to_aus(scores: npt.ArrayLike) -> F64:
    """(..., 52) blendshape coefficients in [0, 1] -> (..., 17) AU intensities 0-5 in ``AU_NAMES`` order."""
    s = np.asarray(scores, dtype=np.float64)
    if s.shape[-1] != len(BLENDSHAPE_NAMES):
        raise UsageError(f"blendshapes must end in {len(BLENDSHAPE_NAMES)} values, got shape {s.shape}")
    out: F64 = np.clip(AU_MAX * (s @ _weights().T), 0.0, AU_MAX)
    return out


@cache
def _combined_masks() -> tuple[F64, F64]:
    """Per-AU weights of the geometry and of the blendshapes in the combined model."""
    share = {"geometry": (1.0, 0.0), "blendshapes": (0.0, 1.0), "mean": (0.5, 0.5)}
    pairs = np.array([share[COMBINED_SOURCE[au]] for au in AU_NAMES])
    return pairs[:, 0], pairs[:, 1]


def combine_aus(geometry: npt.ArrayLike, blendshapes: npt.ArrayLike) -> F64:
    """The combined model's (..., 17) AUs from both signals' (..., 17) AUs, per ``COMBINED_SOURCE``."""
    g, b = np.asarray(geometry, dtype=np.float64), np.asarray(blendshapes, dtype=np.float64)
    if g.shape != b.shape or g.shape[-1] != len(AU_NAMES):
        raise UsageError(f"both AU arrays must have the same shape ending in {len(AU_NAMES)}: {g.shape}, {b.shape}")
    wg, wb = _combined_masks()
    out: F64 = g * wg + b * wb
    return out
