"""The ``faces`` analyser: face count, face mesh and the 17 action-unit intensities of both streams, per pair.

Cheap enough for every frame (detector ~10 ms + mesh ~24 ms per stream on one CPU core), so it is the lane that
also measures face coverage. Each stream has its own AU estimator, so the adaptive neutral of one stream never
sees the other's faces.
"""

from __future__ import annotations

from streameval.analysis.au import MeshAUEstimator
from streameval.analysis.base import Observation
from streameval.analysis.faces import find_face
from streameval.frames import FramePair
from streameval.models.base import FaceDetector, Landmarker

SIDES = ("source", "deid")


class FacesAnalyser:
    """Observation values: ``source_faces``/``deid_faces`` (int) and ``source_aus``/``deid_aus`` ((17,) float32
    of the largest face, None when the frame has no face)."""

    name = "faces"

    def __init__(
        self,
        detector: FaceDetector,
        landmarker: Landmarker,
        estimators: tuple[MeshAUEstimator, MeshAUEstimator],
        *,
        rate: float | None = None,
    ) -> None:
        self.detector = detector
        self.landmarker = landmarker
        self.estimators = dict(zip(SIDES, estimators, strict=True))
        self.rate = rate

    def analyse(self, pair: FramePair) -> Observation:
        values: dict[str, object] = {}
        for side, frame in (("source", pair.source), ("deid", pair.deid)):
            found = find_face(self.detector, frame.image)
            aus = None
            if found.face is not None:
                mesh = self.landmarker.landmarks(frame.image, found.face)
                aus = self.estimators[side].estimate(mesh)
            values[f"{side}_faces"] = found.count
            values[f"{side}_aus"] = aus
        return Observation(self.name, pair.t, values)

    def close(self) -> list[Observation]:
        return []
