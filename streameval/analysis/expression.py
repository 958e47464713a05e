"""The ``faces`` analyser: face count, face mesh and the 17 action-unit intensities of both streams, per pair.

Cheap enough for every frame (detector ~10 ms + mesh ~24 ms per stream on one CPU core), so it is the lane that
also measures face coverage. Each stream has its own AU estimator, so the adaptive neutral of one stream never
sees the other's faces. With OpenFace as the AU source (:class:`OpenFaceAUsAnalyser`) the AUs come from each
stream's OpenFace rows instead; the detector still counts faces for coverage.
"""

from __future__ import annotations

from streameval.analysis.au import MeshAUEstimator
from streameval.analysis.base import Observation
from streameval.analysis.faces import find_face
from streameval.analysis.openface_track import AUTrack
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


class OpenFaceAUsAnalyser:
    """The ``faces`` analyser with OpenFace AUs: same values as :class:`FacesAnalyser`, the AUs taken from each
    stream's OpenFace row for the frame (None for an invalid or missing row), plus ``source_au_row`` /
    ``deid_au_row``: 'ok', 'invalid' or 'unmatched'. Face counts stay the detector's (coverage), so coverage and
    the pairs with AUs can differ where the detector and OpenFace disagree."""

    name = "faces"

    def __init__(self, detector: FaceDetector, tracks: tuple[AUTrack, AUTrack], *, rate: float | None = None) -> None:
        self.detector = detector
        self.tracks = dict(zip(SIDES, tracks, strict=True))
        self.rate = rate

    def analyse(self, pair: FramePair) -> Observation:
        values: dict[str, object] = {}
        for side, frame in (("source", pair.source), ("deid", pair.deid)):
            aus, status = self.tracks[side].lookup(frame)
            values[f"{side}_faces"] = find_face(self.detector, frame.image).count
            values[f"{side}_aus"] = aus
            values[f"{side}_au_row"] = status.value
        return Observation(self.name, pair.t, values)

    def close(self) -> list[Observation]:
        return []
