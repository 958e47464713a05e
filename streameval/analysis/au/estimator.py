"""The 17 OpenFace action-unit intensities (0-5) estimated from a face mesh's geometry.

Pipeline (pure functions): ``align`` the mesh to the canonical neutral face (pose and scale drop out),
``mesh_features`` (16 distances in inter-ocular units), subtract a *neutral* feature vector, then map the
displacements linearly onto AU intensities with the documented constants of ``CALIBRATION`` and clip to 0-5.

Identity: the neutral vector is by default the canonical face's own features, so a face whose resting shape
differs from the canonical (wider mouth, higher brows) starts with a small offset. ``NeutralTracker`` (state,
one per stream) replaces it by a running per-feature quantile of the stream's own recent features, which
removes that offset once enough frames were seen. PCC between two streams is insensitive to such constant
offsets either way; RMSE and CCC are not.

This is a geometric proxy for OpenFace's appearance-based regressors, not a reimplementation: see
docs/action_units.md for how the constants were chosen and what it cannot see (wrinkles, furrows, AU14).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from streameval.analysis.au.canonical import CANONICAL
from streameval.analysis.au.features import FEATURE_NAMES, N_FEATURES, mesh_features
from streameval.analysis.au.geometry import align, check_landmarks
from streameval.errors import UsageError

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

AU_NAMES: tuple[str, ...] = tuple(f"AU{n:02d}_r" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45))
AU_MAX = 5.0


@dataclass(frozen=True, slots=True)
class AUCalibration:
    """AU intensity = 5 * clip(sum(weight * feature displacement) / span, 0, 1)."""

    au: str
    weights: tuple[tuple[str, float], ...]  # (feature, weight); displacement = feature - neutral
    span: float  # weighted displacement (IOD units) that reads as intensity 5 ("maximum", FACS level E)
    why: str


# Spans: chosen from the extremes of the carphone clip (wide-open mouth frames 60 and 105-115 read as AU25/AU26
# near 5; the surprised brow raise of frames 110-115 as AU01 about 2.5), the smiling astronaut portrait
# (AU12 about 4, AU06 about 3.5) and anatomical ranges (a full blink closes the aperture; see the docs).
# Cross-terms remove displacements another AU explains (e.g. the lips thin and stretch when the mouth opens).
CALIBRATION: tuple[AUCalibration, ...] = (
    AUCalibration("AU01_r", (("brow_inner", 1.0),), 0.06, "inner brow raised above the eye line"),
    AUCalibration("AU02_r", (("brow_outer", 1.0),), 0.05, "outer brow raised above the eye line"),
    AUCalibration("AU04_r", (("brow_inner", -1.0), ("brow_gap", -1.0)), 0.06, "brows lowered and drawn together"),
    AUCalibration("AU05_r", (("lid_upper", 1.0),), 0.04, "upper lid raised"),
    AUCalibration("AU06_r", (("cheek", 1.0),), 0.06, "cheeks raised"),
    AUCalibration("AU07_r", (("lid_lower", 1.0),), 0.03, "lower lid raised (lids tightened)"),
    AUCalibration("AU09_r", (("nose_wing", 1.0),), 0.06, "nose wings pulled up"),
    AUCalibration("AU10_r", (("upper_lip", 1.0),), 0.08, "upper lip raised"),
    AUCalibration(
        "AU12_r",
        (("mouth_width", 1.0), ("corner_lift", 1.0), ("lip_gap", -0.15)),
        0.25,
        "lip corners pulled up and out (the lift an open mouth alone gives is removed)",
    ),
    AUCalibration("AU14_r", (("corner_depth", -1.0),), 0.10, "lip corners pulled back (depth, weakest cue)"),
    AUCalibration(
        "AU15_r", (("corner_lift", -1.0), ("lip_gap", 0.15)), 0.05, "lip corners pulled below the mouth line"
    ),
    AUCalibration(
        "AU17_r", (("chin_lip", -1.0), ("lip_gap", -0.4)), 0.10, "chin pushed up to the lower lip (mouth closed)"
    ),
    AUCalibration(
        "AU20_r",
        (("mouth_width", 1.0), ("corner_lift", -2.0), ("lip_gap", 0.3)),
        0.15,
        "lips stretched sideways without the corners rising",
    ),
    AUCalibration(
        "AU23_r", (("lip_thickness", -1.0), ("mouth_width", -0.5)), 0.08, "red lips thinned (not by stretching)"
    ),
    AUCalibration("AU25_r", (("lip_gap", 1.0),), 0.35, "lips parted"),
    AUCalibration("AU26_r", (("jaw_drop", 1.0),), 0.30, "jaw dropped"),
    AUCalibration("AU45_r", (("eye_open", -1.0),), 0.0, "eyes closed; span = the neutral eye aperture"),
)

# Quantile of a stream's recent features taken as its neutral: low for features that only grow with an AU
# (a talking face has its lips apart half the time), the median elsewhere.
NEUTRAL_QUANTILE: dict[str, float] = {"lip_gap": 0.1, "jaw_drop": 0.2}


@cache
def _tables() -> tuple[F64, F64, F64, int]:
    canonical = np.asarray(CANONICAL, dtype=np.float64)
    weights = np.zeros((len(AU_NAMES), N_FEATURES))
    spans = np.zeros(len(AU_NAMES))
    for row, cal in enumerate(CALIBRATION):
        if cal.au != AU_NAMES[row]:
            raise RuntimeError(f"calibration table out of order at {cal.au}")
        for feature, weight in cal.weights:
            weights[row, FEATURE_NAMES.index(feature)] = weight
        spans[row] = cal.span
    return canonical, weights, spans, FEATURE_NAMES.index("eye_open")


def canonical_features() -> F64:
    """Features of the canonical neutral face: the default neutral."""
    return mesh_features(_tables()[0])


def landmarks_to_features(landmarks: npt.ArrayLike) -> F64:
    """(468, 3) mesh in pixels → (16,) features; (N, 468, 3) → (N, 16)."""
    pts = check_landmarks(landmarks)
    canonical = _tables()[0]
    if pts.ndim == 2:
        return mesh_features(align(pts, canonical))
    flat = pts.reshape(-1, *pts.shape[-2:])
    out = np.stack([mesh_features(align(m, canonical)) for m in flat])
    return out.reshape(*pts.shape[:-2], N_FEATURES)


def features_to_aus(features: npt.ArrayLike, neutral: npt.ArrayLike | None = None) -> F64:
    """Map (..., 16) features to (..., 17) AU intensities in [0, 5], relative to a neutral feature vector."""
    _, weights, spans, eye = _tables()
    feats = np.asarray(features, dtype=np.float64)
    base = canonical_features() if neutral is None else np.asarray(neutral, dtype=np.float64)
    if feats.shape[-1] != N_FEATURES or base.shape != (N_FEATURES,):
        raise UsageError(f"features must end in {N_FEATURES} values and neutral be ({N_FEATURES},)")
    spans = spans.copy()
    spans[-1] = max(float(base[eye]), 1e-3)  # AU45: full closure of the neutral aperture reads as 5
    raw = (feats - base) @ weights.T / spans
    out: F64 = np.clip(AU_MAX * raw, 0.0, AU_MAX)
    return out


def estimate_aus(landmarks: npt.ArrayLike, neutral: npt.ArrayLike | None = None) -> F64:
    """(468, 3) MediaPipe mesh in pixels → (17,) AU intensities 0-5 in ``AU_NAMES`` order."""
    return features_to_aus(landmarks_to_features(landmarks), neutral)


def estimate_aus_batch(landmarks: npt.ArrayLike, neutral: npt.ArrayLike | None = None) -> F64:
    """(N, 468, 3) meshes → (N, 17) AU intensities."""
    pts = check_landmarks(landmarks)
    if pts.ndim != 3:
        raise UsageError(f"estimate_aus_batch takes (N, 468, 3), got {pts.shape}")
    return features_to_aus(landmarks_to_features(pts), neutral)


def neutral_from_history(history: npt.ArrayLike) -> F64:
    """Per-feature neutral of a (N, 16) feature history: ``NEUTRAL_QUANTILE`` quantiles, else the median."""
    hist = np.asarray(history, dtype=np.float64)
    if hist.ndim != 2 or hist.shape[1] != N_FEATURES or len(hist) == 0:
        raise UsageError(f"history must have shape (N>0, {N_FEATURES}), got {hist.shape}")
    q = np.array([NEUTRAL_QUANTILE.get(name, 0.5) for name in FEATURE_NAMES])
    # One np.quantile call per distinct level over all columns (3 calls, not 16: this runs on every frame),
    # then each column takes its own level; the values are np.quantile's, column by column.
    levels = np.unique(q)
    table = np.quantile(hist, levels, axis=0)  # (levels, features)
    return np.asarray(table[np.searchsorted(levels, q), np.arange(N_FEATURES)], dtype=np.float64)


class NeutralTracker:
    """Running neutral features of one stream: quantiles over the last ``window`` observed frames."""

    def __init__(self, *, window: int = 300, min_frames: int = 30) -> None:
        if window < 1 or not 1 <= min_frames <= window:
            raise UsageError(f"need window >= 1 and 1 <= min_frames <= window, got {window=}, {min_frames=}")
        self.min_frames = min_frames
        self._history: deque[F64] = deque(maxlen=window)

    def update(self, features: npt.ArrayLike) -> None:
        feats = np.asarray(features, dtype=np.float64)
        if feats.shape != (N_FEATURES,):
            raise UsageError(f"features must have shape ({N_FEATURES},), got {feats.shape}")
        self._history.append(feats)

    def get(self) -> F64 | None:
        """The stream's neutral features, or None until ``min_frames`` frames were seen."""
        if len(self._history) < self.min_frames:
            return None
        return neutral_from_history(np.stack(self._history))

    def __len__(self) -> int:
        return len(self._history)


class MeshAUEstimator:
    """AU estimator for one stream. ``adaptive=True`` keeps a running per-stream neutral (one instance per stream)."""

    name = "mesh-geometry"

    def __init__(self, *, adaptive: bool = False, window: int = 300, min_frames: int = 30) -> None:
        self.adaptive = adaptive
        self.tracker = NeutralTracker(window=window, min_frames=min_frames) if adaptive else None

    def estimate(self, landmarks: npt.ArrayLike) -> F32:
        """(468, 3) mesh in pixels → (17,) float32 intensities; updates the running neutral when adaptive."""
        feats = landmarks_to_features(landmarks)
        neutral = None
        if self.tracker is not None:
            self.tracker.update(feats)
            neutral = self.tracker.get()
        return features_to_aus(feats, neutral).astype(np.float32)
