"""The ``identity`` analyser: face embeddings of both streams and their distances to the references.

Per analysed pair and recogniser (distances in the recogniser's metric: dlib Euclidean, ArcFace ``1 - cos``):

* ``deid_a``: de-identified face to identity A (reference image ``ref_a``, else the paired source face);
* ``deid_b``: de-identified face to reference ``ref_b`` (None without one);
* ``deid_src``: de-identified face to the paired source face (always, when both frames have a face);
* ``source_a`` / ``source_b``: the source face to A and B (the paper reports both streams);
* ``at_source_a``, ``at_source_b``, ``at_source_src``: the same three for the de-identified frame embedded at the
  source face's location and alignment (the attacker's view): measured on every pair with a source face,
  whether or not the face stage finds a face on the de-identified frame. For dlib the chip is cut at the five
  landmarks its shape predictor finds on the source frame; embedders aligned by the face stage's landmarks
  (ArcFace) get the source face's landmarks. Streams of different sizes are mapped by scaling.

Faces come from the face stage (the primary subject of each stream), so this lane only embeds. It is sampled
(default 5 pairs per second): an embedding costs far more than tracking a face.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from streameval.analysis.base import Observation
from streameval.errors import InputError
from streameval.faces.types import TrackedFace, faces_of
from streameval.frames import FramePair
from streameval.models.base import Detection, Embedder, FloatArray, Image

log = logging.getLogger(__name__)

Distance = Callable[[FloatArray, FloatArray], float]


def euclidean(a: FloatArray, b: FloatArray) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b.astype(np.float64)))


def cosine(a: FloatArray, b: FloatArray) -> float:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    denom = float(np.linalg.norm(a64) * np.linalg.norm(b64))
    if denom == 0.0:
        raise InputError("cosine distance of a zero embedding is undefined")
    return 1.0 - float(a64 @ b64) / denom


DISTANCES: dict[str, Distance] = {"euclidean": euclidean, "cosine": cosine}


@dataclass(frozen=True)
class Recogniser:
    """One identity model with its verification threshold and references (embeddings of A and B)."""

    key: str  # short name in records: 'dlib', 'insightface'
    embedder: Embedder
    threshold: float
    ref_a: FloatArray | None = None
    ref_b: FloatArray | None = None

    @property
    def metric(self) -> str:
        return self.embedder.metric

    def distance(self, a: FloatArray, b: FloatArray) -> float:
        return DISTANCES[self.embedder.metric](a, b)


def read_image(path: Path) -> Image:
    """An RGB uint8 image from a file (any format FFmpeg reads: PNG, JPEG, ...)."""
    import av

    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            image: Image = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
    except FileNotFoundError as exc:
        raise InputError(f"reference image {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise InputError(f"reference image {path} is a directory, not an image file") from exc
    except (av.FFmpegError, StopIteration) as exc:
        raise InputError(f"cannot read reference image {path}: {exc}") from exc
    return image


@runtime_checkable
class Realigns(Protocol):
    """An embedder that can cut other images at one face's alignment (dlib's: its five landmarks)."""

    def align(self, image: Image, detection: Detection) -> FloatArray: ...

    def embed_aligned(self, images: list[Image], points: FloatArray) -> FloatArray: ...


def rescaled(face: TrackedFace, src: Image, dst: Image) -> TrackedFace:
    """``face`` (found on ``src``) in the pixel coordinates of ``dst``, for streams of different sizes."""
    (hs, ws), (hd, wd) = src.shape[:2], dst.shape[:2]
    if (hs, ws) == (hd, wd):
        return face
    sx, sy = wd / ws, hd / hs
    x0, y0, x1, y1 = face.box
    mesh = np.asarray(face.mesh, np.float32).copy()
    mesh[:, 0] *= sx
    mesh[:, 1] *= sy
    mesh[:, 2] *= sx
    return dataclasses.replace(face, box=(x0 * sx, y0 * sy, x1 * sx, y1 * sy), mesh=mesh)


class IdentityAnalyser:
    """Observation values: ``source_faces``, ``deid_faces`` (the face stage's counts), ``distances``:
    {recogniser key: {name: float | None}} with the names listed in the module docstring, and ``embeddings``:
    {recogniser key: {"source", "deid", "at_source", "a": vector | None}} for the track-level attacker."""

    name = "identity"

    needs_faces = True

    def __init__(self, recognisers: list[Recogniser], *, rate: float | None = 5.0) -> None:
        self.recognisers = recognisers
        self.rate = rate

    def _source_and_at_source(
        self, rec: Recogniser, pair: FramePair, face: TrackedFace
    ) -> tuple[FloatArray, FloatArray]:
        """The source face's embedding and the de-identified frame's embedding at the source face's location
        and alignment (what an attacker who knows where the face is would embed)."""
        src_image, deid_image = pair.source.image, pair.deid.image
        there = rescaled(face, src_image, deid_image)
        emb = rec.embedder
        if isinstance(emb, Realigns):
            # the source's landmarks, not the de-identified frame's: a blur or mask must not move the crop
            points = emb.align(src_image, face.detection())
            if there is face:
                both = emb.embed_aligned([src_image, deid_image], points)
                return both[0], both[1]
            (hs, ws), (hd, wd) = src_image.shape[:2], deid_image.shape[:2]
            scaled = np.asarray(points, np.float64) * np.array([wd / ws, hd / hs])
            return emb.embed_aligned([src_image], points)[0], emb.embed_aligned([deid_image], scaled)[0]
        # embedders aligned by the face stage's landmarks (ArcFace) get the source face's landmarks anyway
        return emb.embed(src_image, face.detection(), face.mesh), emb.embed(deid_image, there.detection(), there.mesh)

    def analyse(self, pair: FramePair) -> Observation:
        faces = faces_of(pair)
        src_face, deid_face = faces.source.primary, faces.deid.primary
        distances: dict[str, dict[str, float | None]] = {}
        embeddings: dict[str, dict[str, FloatArray | None]] = {}
        for rec in self.recognisers:
            s = x = d = None
            if src_face is not None:
                s, x = self._source_and_at_source(rec, pair, src_face)
            if deid_face is not None:
                d = rec.embedder.embed(pair.deid.image, deid_face.detection(), deid_face.mesh)
            a = rec.ref_a if rec.ref_a is not None else s  # without ref_a, A is the paired source face

            def dist(u: FloatArray | None, v: FloatArray | None, rec: Recogniser = rec) -> float | None:
                return None if u is None or v is None else rec.distance(u, v)

            distances[rec.key] = {
                "deid_a": dist(d, a),
                "deid_b": dist(d, rec.ref_b),
                "deid_src": dist(d, s),
                "source_a": dist(s, a),
                "source_b": dist(s, rec.ref_b),
                "at_source_a": dist(x, a),
                "at_source_b": dist(x, rec.ref_b),
                "at_source_src": dist(x, s),
            }
            embeddings[rec.key] = {"source": s, "deid": d, "at_source": x, "a": a}
        values = {
            "source_faces": faces.source.count,
            "deid_faces": faces.deid.count,
            "distances": distances,
            "embeddings": embeddings,
        }
        return Observation(self.name, pair.t, values)

    def close(self) -> list[Observation]:
        return []
