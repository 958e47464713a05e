"""The face stage: both streams' faces, once per pair, shared by every face analyser.

The pipeline runs the stage in its own lane ahead of the face analysers and hands them the pair with
``pair.faces`` set. The source stream is tracked in the lane's thread and the de-identified stream in a second
thread at the same time, so the stage's latency is that of the slower stream, not their sum.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor

from streameval.analysis.base import Observation
from streameval.faces.tracker import FaceTracker, MeshNetwork, TrackerOptions
from streameval.faces.types import FrameFaces, PairFaces
from streameval.frames import FramePair
from streameval.models.base import FaceDetector

SIDES = ("source", "deid")


def face_values(side: str, faces: FrameFaces, new_tracks: int) -> dict[str, object]:
    primary = faces.primary
    return {
        f"{side}_faces": faces.count,
        f"{side}_track": None if primary is None else primary.track_id,
        f"{side}_detector": faces.detector_ran,
        f"{side}_cut": faces.cut,
        f"{side}_new_tracks": new_tracks,
    }


class FaceStage:
    """Observation values per pair and side: ``<side>_faces`` (faces tracked), ``<side>_track`` (the primary
    subject's track id or None), ``<side>_detector`` (the detector ran), ``<side>_cut`` (a shot change),
    ``<side>_new_tracks`` (tracks started on this frame)."""

    name = "faces"

    def __init__(
        self,
        detector: FaceDetector,
        landmarker: MeshNetwork,
        options: TrackerOptions | None = None,
        *,
        rate: float | None = None,
        mesh_468: MeshNetwork | None = None,
    ) -> None:
        """``landmarker`` tracks; ``mesh_468`` runs beside a 478-point ``landmarker`` (see :class:`FaceTracker`)."""
        self.trackers = {side: FaceTracker(detector, landmarker, options, mesh_468=mesh_468) for side in SIDES}
        self.rate = rate
        self._deid_thread = ThreadPoolExecutor(1, thread_name_prefix="se-faces-deid")
        self.last_helper_cpu_s = 0.0  # CPU time of the last pair's work in the second thread

    def _track_deid(self, pair: FramePair) -> FrameFaces:
        started = time.thread_time()
        try:
            return self.trackers["deid"].process(pair.deid.image, pair.t)
        finally:
            self.last_helper_cpu_s = time.thread_time() - started

    def process(self, pair: FramePair) -> tuple[FramePair, Observation]:
        """The pair with its faces, and the stage's observation (face counts, tracking events)."""
        started = {side: tr.tracks_started for side, tr in self.trackers.items()}
        deid = self._deid_thread.submit(self._track_deid, pair)
        try:
            source = self.trackers["source"].process(pair.source.image, pair.t)
        finally:
            deid_faces = deid.result()  # never leave the second thread running on a failed pair
        values: dict[str, object] = {}
        for side, faces in (("source", source), ("deid", deid_faces)):
            values |= face_values(side, faces, self.trackers[side].tracks_started - started[side])
        return dataclasses.replace(pair, faces=PairFaces(source, deid_faces)), Observation(self.name, pair.t, values)

    def close(self) -> None:
        self._deid_thread.shutdown(wait=True)
