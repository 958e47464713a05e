"""The ``identity`` analyser: face embeddings of both streams and their distances to the references.

Per analysed pair and recogniser (distances in the recogniser's metric: dlib Euclidean, ArcFace ``1 - cos``):

* ``deid_a``: de-identified face to identity A (reference image ``ref_a``, else the paired source face);
* ``deid_b``: de-identified face to reference ``ref_b`` (None without one);
* ``deid_src``: de-identified face to the paired source face (always, when both frames have a face);
* ``source_a`` / ``source_b``: the source face to A and B (the paper reports both streams).

dlib costs ~135 ms per face on one CPU core, so this lane is sampled (default 5 pairs per second).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streameval.analysis.base import Observation
from streameval.analysis.faces import find_face
from streameval.errors import InputError
from streameval.frames import FramePair
from streameval.models.base import Detection, Embedder, FaceDetector, FloatArray, Image, Landmarker

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
    except (av.FFmpegError, StopIteration) as exc:
        raise InputError(f"cannot read reference image {path}: {exc}") from exc
    return image


def reference_face(
    path: Path, detector: FaceDetector, landmarker: Landmarker | None
) -> tuple[Image, Detection, FloatArray | None]:
    """The largest face of a reference image (InputError when it has none)."""
    image = read_image(path)
    found = find_face(detector, image)
    if found.face is None:
        raise InputError(f"no face found in reference image {path}")
    if found.count > 1:
        log.warning("reference image %s has %d faces; using the largest", path, found.count)
    mesh = None if landmarker is None else landmarker.landmarks(image, found.face)
    return image, found.face, mesh


class IdentityAnalyser:
    """Observation values: ``source_faces``, ``deid_faces`` and ``distances``: {recogniser key: {name: float |
    None}} with the names listed in the module docstring."""

    name = "identity"

    def __init__(
        self,
        detector: FaceDetector,
        recognisers: list[Recogniser],
        *,
        landmarker: Landmarker | None = None,
        rate: float | None = 5.0,
    ) -> None:
        self.detector = detector
        self.recognisers = recognisers
        self.landmarker = landmarker  # only for embedders that align on the mesh (ArcFace with BlazeFace)
        self.rate = rate

    def _embed(self, image: Image) -> tuple[int, list[FloatArray] | None]:
        found = find_face(self.detector, image)
        if found.face is None:
            return found.count, None
        mesh = None if self.landmarker is None else self.landmarker.landmarks(image, found.face)
        return found.count, [r.embedder.embed(image, found.face, mesh) for r in self.recognisers]

    def analyse(self, pair: FramePair) -> Observation:
        n_src, src = self._embed(pair.source.image)
        n_deid, deid = self._embed(pair.deid.image)
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
        return Observation(self.name, pair.t, {"source_faces": n_src, "deid_faces": n_deid, "distances": distances})

    def close(self) -> list[Observation]:
        return []
