"""Per-face cost of the face stage with each mesh network, and of the blendshape network, on carphone_pristine.mp4.

Times the face tracker over the clip's 120 frames (detector runs included) tracking with the 468-point mesh
(``au_model = "geometry"``), the Face Landmarker's 478-point mesh (``"blendshapes"``) and both (``"combined"``),
then the blendshape network on the stage's 478 landmarks and, for comparison, the 478-point mesh on each frame's
detection crop (what the expression lane ran per face before the stage tracked with it). Configurations are
interleaved round by round, so a change in the machine's load touches them all; prints the median and minimum.

Usage: python tools/bench_face_stage.py [--rounds N] [--threads T]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Callable

import numpy as np

from streameval.datasets import example_video
from streameval.faces.tracker import FaceTracker, MeshNetwork, TrackerOptions
from streameval.faces.types import TrackedFace
from streameval.models.face_landmarker import FaceBlendshapes, FaceMesh478
from streameval.models.face_mesh import crop_for_detection
from streameval.models.loaders import load_blendshapes, load_detector, load_landmarker, load_mesh_478


def _frames() -> list[np.ndarray]:
    import av

    with av.open(str(example_video("carphone_pristine"))) as container:
        return [np.ascontiguousarray(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def _per_face(fn: Callable[[], int]) -> float:
    start = time.perf_counter()
    faces = fn()
    return (time.perf_counter() - start) / faces * 1e3


def _blendshapes(network: FaceBlendshapes, faces: list[tuple[int, TrackedFace]]) -> int:
    for _, face in faces:
        assert face.landmarks_478 is not None
        network.scores(face.landmarks_478)
    return len(faces)


def _on_detection(mesh: FaceMesh478, frames: list[np.ndarray], faces: list[tuple[int, TrackedFace]]) -> int:
    for i, face in faces:
        mesh.on_crop(frames[i], crop_for_detection(face.detection()))
    return len(faces)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    frames = _frames()
    det = load_detector(device="cpu", threads=args.threads)
    m468 = load_landmarker(device="cpu", threads=args.threads)
    m478 = load_mesh_478(device="cpu", threads=args.threads)
    blendshapes = load_blendshapes(device="cpu", threads=args.threads)
    stages: dict[str, tuple[MeshNetwork, MeshNetwork | None]] = {
        "face stage, 468-point mesh (geometry)": (m468, None),
        "face stage, 478-point mesh (blendshapes)": (m478, None),
        "face stage, 478-point mesh + 468-point beside (combined)": (m478, m468),
    }
    times: dict[str, list[float]] = {name: [] for name in stages}
    times["blendshape network on the stage's 478 landmarks"] = []
    times["478-point mesh on a detection crop (the lane's former path)"] = []
    faces: list[tuple[int, TrackedFace]] = []
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for name, (tracking, beside) in stages.items():
            tracker = FaceTracker(det, tracking, TrackerOptions(), mesh_468=beside)
            primaries: list[tuple[int, TrackedFace]] = []

            def track(tracker: FaceTracker = tracker, primaries: list[tuple[int, TrackedFace]] = primaries) -> int:
                for i, image in enumerate(frames):
                    face = tracker.process(image, i / 29.97).primary
                    if face is not None:
                        primaries.append((i, face))
                return len(primaries)

            times[name].append(_per_face(track))
            if tracking is m478 and beside is None:
                faces = primaries

        times["blendshape network on the stage's 478 landmarks"].append(
            _per_face(functools.partial(_blendshapes, blendshapes, faces))
        )
        times["478-point mesh on a detection crop (the lane's former path)"].append(
            _per_face(functools.partial(_on_detection, m478, frames, faces))
        )
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; {args.threads} thread(s)")
    print("| step | ms per face, median (min) |")
    print("|---|---|")
    for name, values in times.items():
        print(f"| {name} | {np.median(values):.2f} ({min(values):.2f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
