"""The ``expression`` analyser: the 17 action-unit intensities of both streams' primary faces, per pair.

The faces and their meshes come from the face stage (``pair.faces``), so this lane only turns faces into AUs
(from the mesh geometry, MediaPipe's blendshapes or both: ``[expression] au_model``). Each stream has its own AU
estimator, so the adaptive neutral of one stream never sees the other's faces. With
OpenFace as the AU source (:class:`OpenFaceAUsAnalyser`) the AUs come from each stream's OpenFace rows instead.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from streameval.analysis.au.face_aus import FaceAUEstimator, FaceAUs
from streameval.analysis.base import Observation
from streameval.analysis.openface_track import AUTrack
from streameval.extract import frame_row, header_line
from streameval.faces.types import TrackedFace, faces_of
from streameval.frames import Frame, FramePair

SIDES = ("source", "deid")


class FrameRows:
    """Both streams' per-frame AUs for ``--frames``: ``streameval extract``'s OpenFace CSV layout with a leading
    ``stream`` column (``source`` or ``deid``), one row per stream and analysed pair, the source row first.
    ``frame`` is the stream's own 1-based decoded frame number and ``timestamp`` its presentation time (rebased
    to the stream's first frame), so each stream's rows equal what ``extract`` writes for that file."""

    SPOOL_BYTES = 4 << 20  # rows beyond this go to a temporary file: a live run of hours must not grow in memory

    def __init__(self, *, with_blendshapes: bool, spool_bytes: int = SPOOL_BYTES) -> None:
        self.with_blendshapes = with_blendshapes
        # open for the whole run (closed by close()); deleted by the OS with the process at the latest
        self._spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=spool_bytes, mode="w+", encoding="utf-8", newline=""
        )
        self._spool.write(header_line(with_blendshapes, ("stream",)) + "\n")

    def add(self, side: str, frame: Frame, face: TrackedFace | None, result: FaceAUs | None) -> None:
        row = frame_row(frame.index + 1, frame.pts, face, result, with_blendshapes=self.with_blendshapes)
        self._spool.write(f"{side}, {row}\n")

    def pieces(self, size: int = 1 << 20) -> Iterator[str]:
        """The table so far, header first, in pieces of up to ``size`` characters."""
        self._spool.seek(0)
        while piece := self._spool.read(size):
            yield piece
        self._spool.seek(0, 2)  # back to the end: rows added later are appended

    def close(self) -> None:
        self._spool.close()


def write_frame_rows(path: str, analysers: Iterable[object]) -> None:
    """Write the run's ``--frames`` table atomically (SinkError, exit 5, when it cannot be written)."""
    from streameval.outputs import write_file_atomic

    rows = next((a.rows for a in analysers if isinstance(a, ExpressionAnalyser) and a.rows is not None), None)
    if rows is None:
        raise RuntimeError("--frames: the run has no expression analyser collecting rows (a wiring bug)")
    try:
        write_file_atomic(Path(path), rows.pieces())
    finally:
        rows.close()


class ExpressionAnalyser:
    """Observation values: ``source_aus``/``deid_aus`` ((17,) float32 of the primary face, None when the frame
    has no face)."""

    name = "expression"
    needs_faces = True

    def __init__(
        self,
        estimators: tuple[FaceAUEstimator, FaceAUEstimator],
        *,
        rate: float | None = None,
        rows: FrameRows | None = None,
    ) -> None:
        self.estimators = dict(zip(SIDES, estimators, strict=True))
        self.rate = rate
        self.rows = rows  # filled for --frames

    def analyse(self, pair: FramePair) -> Observation:
        faces = faces_of(pair)
        values: dict[str, object] = {}
        for side, frame in (("source", pair.source), ("deid", pair.deid)):
            face = faces.side(side).primary
            result = None if face is None else self.estimators[side].estimate(frame.image, face)
            values[f"{side}_aus"] = None if result is None else result.aus
            if self.rows is not None:
                self.rows.add(side, frame, face, result)
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
