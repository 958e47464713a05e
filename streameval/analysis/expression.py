"""The ``expression`` analyser: the 17 action-unit intensities of both streams' primary faces, per pair.

The faces and their meshes come from the face stage (``pair.faces``), so this lane only turns faces into AUs
(from the mesh geometry, MediaPipe's blendshapes or both: ``[expression] au_model``). Each stream has its own AU
estimator, so the adaptive neutral of one stream never sees the other's faces. With
OpenFace as the AU source (:class:`OpenFaceAUsAnalyser`) the AUs come from each stream's OpenFace rows instead.
"""

from __future__ import annotations

from streameval.analysis.au.face_aus import FaceAUEstimator
from streameval.analysis.base import Observation
from streameval.analysis.openface_track import AUTrack
from streameval.faces.types import faces_of
from streameval.frames import FramePair

SIDES = ("source", "deid")


class ExpressionAnalyser:
    """Observation values: ``source_aus``/``deid_aus`` ((17,) float32 of the primary face, None when the frame
    has no face)."""

    name = "expression"
    needs_faces = True

    def __init__(self, estimators: tuple[FaceAUEstimator, FaceAUEstimator], *, rate: float | None = None) -> None:
        self.estimators = dict(zip(SIDES, estimators, strict=True))
        self.rate = rate

    def analyse(self, pair: FramePair) -> Observation:
        faces = faces_of(pair)
        values: dict[str, object] = {}
        for side, frame in (("source", pair.source), ("deid", pair.deid)):
            face = faces.side(side).primary
            values[f"{side}_aus"] = None if face is None else self.estimators[side].estimate(frame.image, face).aus
        return Observation(self.name, pair.t, values)

    def close(self) -> list[Observation]:
        return []


class OpenFaceAUsAnalyser:
    """The ``expression`` analyser with OpenFace AUs: each stream's OpenFace row for the frame (None for an
    invalid or missing row), plus ``source_au_row`` / ``deid_au_row``: 'ok', 'invalid' or 'unmatched'. Coverage
    stays the face stage's, so coverage and the pairs with AUs can differ where the stage and OpenFace
    disagree."""

    name = "expression"
    needs_faces = True  # not read, but coverage is then measured on the same pairs

    def __init__(self, tracks: tuple[AUTrack, AUTrack], *, rate: float | None = None) -> None:
        self.tracks = dict(zip(SIDES, tracks, strict=True))
        self.rate = rate

    def analyse(self, pair: FramePair) -> Observation:
        values: dict[str, object] = {}
        for side, frame in (("source", pair.source), ("deid", pair.deid)):
            aus, status = self.tracks[side].lookup(frame)
            values[f"{side}_aus"] = aus
            values[f"{side}_au_row"] = status.value
        return Observation(self.name, pair.t, values)

    def close(self) -> list[Observation]:
        return []
