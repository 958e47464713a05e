"""Per-face time of dlib's face ResNet: the converted ONNX graph (onnxruntime CPU) vs dlib itself, on aligned
150x150 chips of carphone_pristine.mp4 (alignment not timed). Prints a markdown table for docs/models.md.

Each round times every runtime once over the same chips, interleaved; the table shows the best round, so that
other work on a shared machine inflates the numbers as little as possible.

Usage: python tools/bench_dlib_onnx.py [--faces N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from streameval.datasets import example_video
from streameval.models import zoo
from streameval.models.dlib_resnet_onnx import INPUT_NAME, ONNX_FILENAME
from streameval.models.loaders import load_detector
from streameval.models.runtime import create_session


def _chips(n: int) -> list[np.ndarray]:
    import av
    import dlib

    models = zoo.resolve_models_dir()
    detector = load_detector(models, device="cpu")
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    chips = []
    with av.open(str(example_video("carphone_pristine"))) as container:
        for frame in container.decode(video=0):
            image = np.ascontiguousarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
            x0, y0, x1, y1 = (round(v) for v in detector.detect(image)[0].box)
            shape = predictor(image, dlib.rectangle(x0, y0, x1, y1))
            chips.append(np.asarray(dlib.get_face_chip(image, shape, size=150, padding=0.25)))
            if len(chips) == n:
                break
    return chips


def _ms_per_face(run: Callable[[list[np.ndarray]], object], chips: list[np.ndarray], batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(chips) - batch + 1, batch):
        run(chips[i : i + batch])
    return (time.perf_counter() - start) / (len(chips) // batch * batch) * 1000


def _machine_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (Linux /proc/stat), to see others' load."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    import dlib

    chips = _chips(args.faces)
    models = zoo.resolve_models_dir()
    runs: dict[str, tuple[Callable[[list[np.ndarray]], object], int]] = {}
    for threads in (1, 2):
        session = create_session(models / ONNX_FILENAME, device="cpu", threads=threads)

        def run(c: list[np.ndarray], s: Any = session) -> object:
            return s.run(None, {INPUT_NAME: np.stack(c).astype(np.float32)})

        for batch in (1, 2):
            runs[f"ONNX, onnxruntime CPU, {threads} intra-op thread(s), batch {batch}"] = (run, batch)
    recogniser = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
    runs["dlib `compute_face_descriptor(chip)` (1 thread; dlib-bin has no BLAS)"] = (
        lambda c: recogniser.compute_face_descriptor(c[0]),
        1,
    )
    best = dict.fromkeys(runs, float("inf"))
    for fn, batch in runs.values():
        fn(chips[:batch])  # warm-up
    busy0, total0 = _machine_seconds()
    ours0 = time.process_time()
    for _ in range(args.rounds):
        for name, (fn, batch) in runs.items():
            best[name] = min(best[name], _ms_per_face(fn, chips, batch))
    busy1, total1 = _machine_seconds()
    others = max(0.0, (busy1 - busy0) - (time.process_time() - ours0)) / (total1 - total0)
    print(
        f"{platform.machine()}, {os.cpu_count()} cores; best of {args.rounds} rounds of {len(chips)} chips; "
        f"other processes used {others:.0%} of the machine meanwhile\n"
    )
    print("| runtime | ms per face |\n|---|---|")
    for name, value in best.items():
        print(f"| {name} | {value:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
