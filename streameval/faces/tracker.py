"""Per-stream face tracking: detect, then follow each face with the mesh, as MediaPipe's face-mesh graph does.

On each frame every live track runs the mesh on the crop derived from its previous landmarks
(:func:`~streameval.models.face_mesh.crop_for_mesh`); a track whose face-presence score falls below
``min_presence`` is lost. The detector runs only when it is needed:

* on the first frame, and on every frame while nothing is tracked (to notice a face that appears);
* when a track was lost on this frame (the face may have moved too fast for the crop);
* after a shot change (a cut), when every track ends and the faces are found afresh;
* on a schedule (``redetect_every`` seconds of stream time), to pick up faces that enter beside tracked ones.

A detection that overlaps a live track (IoU of the boxes >= ``match_iou``) confirms it; any other detection
starts a new track with a new id, unless it overlaps a track lost on this very frame, which
then continues under its old id (a presence flicker is not a new face). Track ids are never reused.

The primary subject is the track that was primary on the previous frame while it lives; when there is none (the
start, after a cut, or when the primary face is lost), the largest face becomes primary. So the subject does
not flip to another face that is briefly larger or crosses in front, and "the largest face" is only the rule
for choosing a new subject.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from streameval.config import FacesTable
from streameval.errors import InputError
from streameval.faces.types import FrameFaces, TrackedFace, mesh_box
from streameval.models.base import FaceDetector, FloatArray, Image
from streameval.models.face_mesh import NUM_LANDMARKS, Crop, crop_for_detection, crop_for_mesh

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]

#: side of the thumbnail the cut detector compares (grey levels averaged over blocks)
CUT_THUMB = 16

_FACES = FacesTable()


class MeshNetwork(Protocol):
    """What the tracker needs of a mesh network: the 468-point face mesh
    (:class:`~streameval.models.face_mesh.FaceMeshLandmarker`) or the Face Landmarker's 478-point mesh
    (:class:`~streameval.models.face_landmarker.FaceMesh478`, whose first 468 points have the same topology;
    the blendshapes need its 478). Both take the same :class:`Crop` (centre, side, rotation) at their own input
    size, MediaPipe's convention for both."""

    def on_crop(self, image: Image, crop: Crop) -> tuple[FloatArray, float]: ...


@dataclass(frozen=True, slots=True)
class TrackerOptions:
    """``tracking = False`` runs the detector and a detector-crop mesh on every frame (the reference mode)."""

    # the defaults are the [faces] table's (streameval.config), declared there once
    tracking: bool = _FACES.tracking
    redetect_every: float = _FACES.redetect_every  # seconds of stream time between scheduled detector runs
    min_presence: float = _FACES.min_presence  # MediaPipe's min_tracking_confidence
    max_faces: int = _FACES.max_faces
    match_iou: float = 0.3
    # mean absolute difference of consecutive grey thumbnails, in [0, 1]
    cut_threshold: float = _FACES.cut_threshold


@dataclass(slots=True)
class _Track:
    track_id: int
    mesh: FloatArray  # the tracking network's landmarks (468 or 478 points)
    box_in_face: Box  # the detector's box in the face's coordinates (see box_in_face_coords)
    score: float
    presence: float
    detected: bool = False
    geometry: FloatArray | None = None  # the 468-point network's mesh on the same crop, when it runs beside

    def box(self) -> Box:
        return carry_box(self.box_in_face, self.mesh)


# Mesh points that do not move with expressions (eye corners, nose bridge and tip): the detector box is carried
# along with them rather than with the whole mesh, whose box stretches when the jaw opens.
_STABLE = [33, 133, 362, 263, 168, 6, 1]


def anchor(mesh: FloatArray) -> tuple[float, float, float]:
    """Centre and scale (outer eye-corner distance) of the face's stable points."""
    xy = np.asarray(mesh, np.float64)[:, :2]
    cx, cy = xy[_STABLE].mean(axis=0)
    scale = float(np.hypot(*(xy[263] - xy[33])))
    return float(cx), float(cy), max(scale, 1e-6)


def box_in_face_coords(box: Box, mesh: FloatArray) -> Box:
    """``box`` in the face's own coordinates (origin at the stable points' centre, unit = eye-corner distance)."""
    cx, cy, s = anchor(mesh)
    x0, y0, x1, y1 = box
    return (x0 - cx) / s, (y0 - cy) / s, (x1 - cx) / s, (y1 - cy) / s


def carry_box(relative: Box, mesh: FloatArray) -> Box:
    """Inverse of :func:`box_in_face_coords`: a box in face coordinates placed on this mesh."""
    cx, cy, s = anchor(mesh)
    u0, v0, u1, v1 = relative
    return cx + u0 * s, cy + v0 * s, cx + u1 * s, cy + v1 * s


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def grey_thumbnail(image: Image, side: int = CUT_THUMB) -> np.ndarray:
    """A small grey image for comparing frames (block means, so it is robust to noise and fine motion)."""
    import cv2

    # Every step-th pixel first (a 1280x720 frame becomes ~120x65), so the block means cost ~0.05 ms, not 2 ms.
    step = max(1, min(image.shape[0], image.shape[1]) // (4 * side))
    small = cv2.resize(image[::step, ::step], (side, side), interpolation=cv2.INTER_AREA)
    grey: np.ndarray = small.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0
    return grey


class FaceTracker:
    """Tracks the faces of one stream. Not thread-safe: one tracker per stream, called in frame order."""

    def __init__(
        self,
        detector: FaceDetector,
        landmarker: MeshNetwork,
        options: TrackerOptions | None = None,
        *,
        mesh_468: MeshNetwork | None = None,
    ) -> None:
        """``landmarker`` tracks the faces. With the 478-point mesh as ``landmarker``, ``mesh_468`` (the 468-point
        network) also runs on each face's crop and gives the faces' ``mesh`` (what the AU geometry was calibrated
        on); without it ``mesh`` is the first 468 of the 478 points."""
        self.detector = detector
        self.landmarker = landmarker
        self.mesh_468 = mesh_468
        self.options = options or TrackerOptions()
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._primary: int | None = None
        self._last_detect_t = -math.inf
        self._thumb: np.ndarray | None = None
        # counters for the report
        self.frames = 0
        self.detector_calls = 0
        self.tracks_started = 0
        self.cuts = 0

    # -- steps ----------------------------------------------------------------------------------------------
    def _is_cut(self, image: Image) -> bool:
        thumb = grey_thumbnail(image)
        previous, self._thumb = self._thumb, thumb
        if previous is None:
            return False
        return float(np.mean(np.abs(thumb - previous))) > self.options.cut_threshold

    def _mesh(self, image: Image, crop: Crop) -> tuple[FloatArray, float, FloatArray | None]:
        """The tracking network's landmarks and presence on ``crop``, and the 468-point mesh beside it if any."""
        mesh, presence = self.landmarker.on_crop(image, crop)
        geometry = None if self.mesh_468 is None else self.mesh_468.on_crop(image, crop)[0]
        return mesh, presence, geometry

    def _follow(self, image: Image) -> list[_Track]:
        """Run the mesh on each track's crop from its previous landmarks; return the tracks lost."""
        lost = []
        for track in list(self._tracks):
            try:
                mesh, presence, geometry = self._mesh(image, crop_for_mesh(track.mesh))
            except InputError:  # landmarks that collapsed to a point or left the image: the face is gone
                log.debug("no mesh crop for track %d; treating it as lost", track.track_id, exc_info=True)
                presence, mesh, geometry = 0.0, track.mesh, None
            if presence < self.options.min_presence:
                self._tracks.remove(track)
                lost.append(track)
                continue
            track.mesh, track.presence, track.detected, track.geometry = mesh, presence, False, geometry
        self._drop_duplicates()
        return lost

    def _drop_duplicates(self) -> None:
        """Two tracks that converged on one face: keep the older (smaller id)."""
        keep: list[_Track] = []
        for track in sorted(self._tracks, key=lambda tr: tr.track_id):
            box = mesh_box(track.mesh)
            if all(iou(box, mesh_box(k.mesh)) < 0.5 for k in keep):
                keep.append(track)
        self._tracks = keep

    def _new_id(self) -> int:
        self._next_id += 1
        self.tracks_started += 1
        return self._next_id - 1

    def _detect(self, image: Image, t: float, lost: list[_Track]) -> None:
        self.detector_calls += 1
        self._last_detect_t = t
        for det in self.detector.detect(image):
            match = self._best(det.box, self._tracks)
            if match is not None:
                if not self.options.tracking:  # reference mode: the mesh always comes from the detection
                    match.mesh, match.presence, match.geometry = self._mesh(image, crop_for_detection(det))
                match.box_in_face = box_in_face_coords(det.box, match.mesh)
                match.score, match.detected = det.score, True
                continue
            if len(self._tracks) >= self.options.max_faces:
                continue
            # A detection is a face even where the mesh's presence score is low (blurred or pixelated faces score
            # ~0 while the detector still finds them): coverage counts what the detector sees; only tracking
            # needs the mesh to be sure, so such a face is detected afresh on the next frame.
            mesh, presence, geometry = self._mesh(image, crop_for_detection(det))
            if any(iou(mesh_box(mesh), mesh_box(tr.mesh)) >= 0.5 for tr in self._tracks):
                continue
            revived = self._best(det.box, lost)
            track_id = revived.track_id if revived is not None else self._new_id()
            if revived is not None:
                lost.remove(revived)
            box = box_in_face_coords(det.box, mesh)
            self._tracks.append(_Track(track_id, mesh, box, det.score, presence, True, geometry))

    def _best(self, box: Box, tracks: list[_Track]) -> _Track | None:
        """The track whose box overlaps ``box`` most, if at least ``match_iou``."""
        best, best_iou = None, self.options.match_iou
        for track in tracks:
            overlap = iou(box, track.box())
            if overlap >= best_iou:
                best, best_iou = track, overlap
        return best

    # -- public ---------------------------------------------------------------------------------------------
    def process(self, image: Image, t: float) -> FrameFaces:
        """The faces of the next frame of this stream (stream time ``t`` in seconds)."""
        opts = self.options
        self.frames += 1
        cut = self._is_cut(image)
        if cut:
            self.cuts += 1
            self._tracks.clear()
            self._primary = None
        if opts.tracking:
            lost = self._follow(image)
            due = not self._tracks or bool(lost) or t - self._last_detect_t >= opts.redetect_every - 1e-9
            if due:
                self._detect(image, t, lost)
        else:  # reference mode: every frame detected; a face the detector misses ends its track
            for track in self._tracks:
                track.detected = False
            self._detect(image, t, [])
            self._tracks = [tr for tr in self._tracks if tr.detected]
            due = True
        return self._frame_faces(detector_ran=due, cut=cut)

    def _frame_faces(self, *, detector_ran: bool, cut: bool) -> FrameFaces:
        faces = tuple(
            TrackedFace(
                track_id=tr.track_id,
                box=tr.box(),
                mesh=tr.geometry if tr.geometry is not None else tr.mesh[:NUM_LANDMARKS],
                presence=tr.presence,
                score=tr.score,
                detected=tr.detected,
                landmarks_478=tr.mesh if len(tr.mesh) > NUM_LANDMARKS else None,
            )
            for tr in sorted(self._tracks, key=lambda tr: tr.track_id)
        )
        primary = next((f for f in faces if f.track_id == self._primary), None)
        if primary is None and faces:
            primary = max(faces, key=lambda f: f.area)
        self._primary = None if primary is None else primary.track_id
        return FrameFaces(faces=faces, primary=primary, detector_ran=detector_ran, cut=cut)

    def stats(self) -> dict[str, int]:
        return {
            "frames": self.frames,
            "detector_calls": self.detector_calls,
            "tracks": self.tracks_started,
            "cuts": self.cuts,
        }


def detection_faces(detector: FaceDetector, landmarker: MeshNetwork, image: Image) -> FrameFaces:
    """The faces of a single still image (a reference photo): detect, mesh each face, primary = largest."""
    tracker = FaceTracker(detector, landmarker, TrackerOptions(tracking=False))
    return tracker.process(image, 0.0)
