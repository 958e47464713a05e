"""Action units (AU): the 17 OpenFace intensities estimated from MediaPipe face-mesh geometry."""

from streameval.analysis.au.estimator import (
    AU_NAMES,
    CALIBRATION,
    MeshAUEstimator,
    NeutralTracker,
    estimate_aus,
    estimate_aus_batch,
    features_to_aus,
    landmarks_to_features,
)

__all__ = [
    "AU_NAMES",
    "CALIBRATION",
    "MeshAUEstimator",
    "NeutralTracker",
    "estimate_aus",
    "estimate_aus_batch",
    "features_to_aus",
    "landmarks_to_features",
]
