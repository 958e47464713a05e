"""The ``identity`` analyser: face embeddings of both streams and their distances to the references.

Per analysed pair and recogniser (distances in the recogniser's metric: dlib Euclidean, ArcFace ``1 - cos``):

* ``deid_a``: de-identified face to identity A (reference image ``ref_a``, else the paired source face);
* ``deid_b``: de-identified face to reference ``ref_b`` (None without one);
* ``deid_src``: de-identified face to the paired source face (always, when both frames have a face);
* ``source_a`` / ``source_b``: the source face to A and B (the paper reports both streams).

Faces come from the face stage (the primary subject of each stream), so this lane only embeds. It is sampled
(default 5 pairs per second): an embedding costs far more than tracking a face.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streameval.analysis.base import Observation
from streameval.errors import InputError
from streameval.faces.types import TrackedFace, faces_of
from streameval.frames import FramePair
from streameval.models.base import Embedder, FloatArray, Image

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


class IdentityAnalyser:
    """Observation values: ``source_faces``, ``deid_faces`` (the face stage's counts) and ``distances``:
    {recogniser key: {name: float | None}} with the names listed in the module docstring."""

    name = "identity"

    needs_faces = True

    def __init__(self, recognisers: list[Recogniser], *, rate: float | None = 5.0) -> None:
        self.recognisers = recognisers
        self.rate = rate

    def _embed(self, image: Image, face: TrackedFace | None) -> list[FloatArray] | None:
        if face is None:
            return None
        detection = face.detection()
        return [r.embedder.embed(image, detection, face.mesh) for r in self.recognisers]

    def analyse(self, pair: FramePair) -> Observation:
        faces = faces_of(pair)
        src = self._embed(pair.source.image, faces.source.primary)
        deid = self._embed(pair.deid.image, faces.deid.primary)
        distances: dict[str, dict[str, float | None]] = {}
        for i, rec in enumerate(self.recognisers):
            s = None if src is None else src[i]
            d = None if deid is None else deid[i]
            a = rec.ref_a if rec.ref_a is not None else s  # without ref_a, A is the paired source face

            def dist(x: FloatArray | None, y: FloatArray | None, rec: Recogniser = rec) -> float | None:
                return None if x is None or y is None else rec.distance(x, y)

            distances[rec.key] = {
                "deid_a": dist(d, a),
                "deid_b": dist(d, rec.ref_b),
                "deid_src": dist(d, s),
                "source_a": dist(s, a),
                "source_b": dist(s, rec.ref_b),
            }
        values = {"source_faces": faces.source.count, "deid_faces": faces.deid.count, "distances": distances}
        return Observation(self.name, pair.t, values)

    def close(self) -> list[Observation]:
        return []
