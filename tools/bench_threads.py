"""onnxruntime intra-op threads per model: the measurements behind ``streameval.threads.onnx_threads``.

Interleaved runs (1 thread, 2 threads, 1, 2, ...) so that the load of a shared machine hits both alike:

* I3D on one clip pair (batch 2, as the reality lane runs it) alone, then next to a thread running the face
  mesh non-stop (a busy per-frame lane, the normal state of a real-time run): I3D's wall time and how many
  mesh calls per second that lane still gets.
* BlazeFace and the face mesh (the ONNX call alone, one face) at 1 and 2 threads.

Usage: ``python tools/bench_threads.py [--repeats 4] [--no-write]``; writes the ``bench_threads`` section of
BENCHMARKS.md. Needs the built zoo (``streameval models build``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streameval.models.runtime import create_session  # noqa: E402
from streameval.models.zoo import FACE_DETECTOR, FACE_MESH, model_file  # noqa: E402
from tools.bench_md import machine, write_section  # noqa: E402

THREADS = (1, 2)


def session(path: Path, threads: int) -> Any:
    return create_session(path, device="cpu", threads=threads)


def inputs(sess: Any, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    return {sess.get_inputs()[0].name: np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)}


def wall(sess: Any, feed: dict[str, np.ndarray]) -> float:
    t0 = time.perf_counter()
    sess.run(None, feed)
    return time.perf_counter() - t0


def next_to_busy_lane(
    sess: Any, feed: dict[str, np.ndarray], mesh: Any, mesh_feed: dict[str, np.ndarray]
) -> tuple[float, float]:
    """One run of ``sess`` while another thread runs the mesh non-stop: (wall s, mesh calls per s)."""
    stop = threading.Event()
    calls = [0]

    def lane() -> None:
        while not stop.is_set():
            mesh.run(None, mesh_feed)
            calls[0] += 1

    worker = threading.Thread(target=lane)
    worker.start()
    time.sleep(0.05)
    before = calls[0]
    seconds = wall(sess, feed)
    rate = (calls[0] - before) / seconds
    stop.set()
    worker.join()
    return seconds, rate


def i3d_rows(repeats: int) -> list[str]:
    i3d_path = model_file("i3d", "i3d_kinetics400.onnx")
    mesh = session(model_file(FACE_MESH.name, FACE_MESH.files[0]), 1)
    mesh_feed = inputs(mesh, (1, 192, 192, 3))
    i3d = {t: session(i3d_path, t) for t in THREADS}
    feed = inputs(i3d[1], (2, 16, 224, 224, 3))
    for s in i3d.values():
        s.run(None, feed)  # warm-up: memory planning
    alone: dict[int, list[float]] = {t: [] for t in THREADS}
    cpu: dict[int, list[float]] = {t: [] for t in THREADS}
    busy: dict[int, list[float]] = {t: [] for t in THREADS}
    mesh_rate: dict[int, list[float]] = {t: [] for t in THREADS}
    for _ in range(repeats):
        for t in THREADS:
            used = time.process_time()
            alone[t].append(wall(i3d[t], feed))
            cpu[t].append(time.process_time() - used)
        for t in THREADS:
            seconds, rate = next_to_busy_lane(i3d[t], feed, mesh, mesh_feed)
            mesh_rate[t].append(rate)
            busy[t].append(seconds)
    rows = [
        "| I3D threads | alone: s per clip pair (median, min) | alone: CPU s | next to a busy mesh lane: s per "
        "clip pair (median, min) | mesh lane meanwhile (calls/s) |",
        "|---|---|---|---|---|",
    ]
    for t in THREADS:
        rows.append(
            f"| {t} | {statistics.median(alone[t]):.2f} ({min(alone[t]):.2f}) | {statistics.median(cpu[t]):.2f} "
            f"| {statistics.median(busy[t]):.2f} "
            f"({min(busy[t]):.2f}) | {statistics.median(mesh_rate[t]):.0f} |"
        )
    return rows


def face_rows(calls: int) -> list[str]:
    rows = [
        "| model (ONNX call, one face) | 1 thread: ms (median, min) | 2 threads: ms (median, min) |",
        "|---|---|---|",
    ]
    for spec, shape in ((FACE_DETECTOR, (1, 128, 128, 3)), (FACE_MESH, (1, 192, 192, 3))):
        sessions = {t: session(model_file(spec.name, spec.files[0]), t) for t in THREADS}
        feed = inputs(sessions[1], shape)
        times: dict[int, list[float]] = {t: [] for t in THREADS}
        for s in sessions.values():
            s.run(None, feed)
        for _ in range(calls):
            for t in THREADS:
                times[t].append(wall(sessions[t], feed) * 1e3)
        cells = [f"{statistics.median(times[t]):.1f} ({min(times[t]):.1f})" for t in THREADS]
        rows.append(f"| {spec.name} | {' | '.join(cells)} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=4, help="I3D runs per setting (default 4)")
    ap.add_argument("--calls", type=int, default=300, help="detector/mesh calls per setting (default 300)")
    ap.add_argument("--no-write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = ap.parse_args(argv)
    host = machine()
    started = time.perf_counter()
    i3d = i3d_rows(args.repeats)
    faces = face_rows(args.calls)
    command = " ".join(["python tools/bench_threads.py", *(sys.argv[1:] if argv is None else argv)])
    section = "\n".join(
        [
            "## onnxruntime threads per model (tools/bench_threads.py)",
            "",
            f"Command: `{command}` on {host}; {time.perf_counter() - started:.0f} s. Settings interleaved, so a "
            "shared machine's load hits both alike; I3D on one clip pair (batch 2, 16x224x224), as the reality "
            "lane runs it.",
            "",
            *i3d,
            "",
            *faces,
            "",
            'Hence `[models] threads = "auto"` (streameval.threads.onnx_threads): 1 thread for the per-frame '
            "models, and for I3D `clamp(cores - 2, 1, 2)`: a second I3D thread only pays when a core is idle, "
            "which a real-time run does not leave.",
        ]
    )
    print(section)
    if not args.no_write:
        write_section("bench_threads", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
