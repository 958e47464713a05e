"""Per-face latency of the zoo's face models on carphone_pristine.mp4; writes the "Face models" section of
BENCHMARKS.md.

Usage: python tools/bench_face_models.py [--frames N] [--threads T] [--no-write]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from streameval.datasets import example_video
from streameval.models.loaders import (
    load_detector,
    load_dlib_embedder,
    load_dlib_onnx_embedder,
    load_faceres_embedder,
    load_landmarker,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.bench_md import write_section  # noqa: E402

log = logging.getLogger("bench_face_models")


def _frames(n: int) -> list[np.ndarray]:
    import av

    out: list[np.ndarray] = []
    with av.open(str(example_video("carphone_pristine"))) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if len(out) >= n:
                break
    return out


def _time(fn: Callable[[np.ndarray], object], frames: list[np.ndarray]) -> float:
    fn(frames[0])  # warm-up
    start = time.perf_counter()
    for f in frames:
        fn(f)
    return (time.perf_counter() - start) / len(frames) * 1000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    frames = _frames(args.frames)
    det = load_detector(device="cpu", threads=args.threads)
    mesh = load_landmarker(device="cpu", threads=args.threads)
    dlib = load_dlib_embedder()
    dlib_onnx = load_dlib_onnx_embedder(device="cpu", threads=args.threads)
    faceres = load_faceres_embedder(device="cpu", threads=args.threads)
    dets = {id(f): det.detect(f)[0] for f in frames}
    meshes = {id(f): mesh.landmarks(f, dets[id(f)]) for f in frames}
    rows = [
        ("BlazeFace detect (176x144 frame, letterbox + ONNX + NMS)", _time(det.detect, frames)),
        ("face mesh (rotated crop + ONNX + projection)", _time(lambda f: mesh.landmarks(f, dets[id(f)]), frames)),
        (
            "dlib ResNet embedding (5-point align + chip + ResNet)",
            _time(lambda f: dlib.embed(f, dets[id(f)], None), frames),
        ),
        (
            "dlib ResNet on onnxruntime (5-point align + chip + ONNX; the default `dlib` recogniser)",
            _time(lambda f: dlib_onnx.embed(f, dets[id(f)], None), frames),
        ),
        (
            "faceres (upright 224x224 crop + ONNX)",
            _time(lambda f: faceres.embed(f, dets[id(f)], meshes[id(f)]), frames),
        ),
    ]
    cmd = "python tools/bench_face_models.py " + " ".join(sys.argv[1:])
    lines = [
        "## Face models",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"onnxruntime CPU, {args.threads} intra-op thread(s). Command: `{cmd.strip()}`",
        "",
        "| step | ms per face |",
        "|---|---|",
    ]
    lines += [f"| {name} | {ms:.1f} |" for name, ms in rows]
    text = "\n".join(lines) + "\n"
    log.info("%s", text)
    if not args.no_write:
        write_section("bench_face_models", text, path=Path("BENCHMARKS.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
