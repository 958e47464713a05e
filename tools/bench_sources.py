"""Benchmark: decode throughput of ``open_source`` (fast replay) against a bare PyAV decode loop.

Writes the ``sources`` section of BENCHMARKS.md. Run: ``python tools/bench_sources.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streameval.datasets import example_video  # noqa: E402
from streameval.sources import open_source  # noqa: E402
from tests.videos import VideoCase, write_video  # noqa: E402
from tools.bench_md import write_section  # noqa: E402


def bare_pyav(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            n += 1
    return n, time.perf_counter() - start


async def _through_source(path: Path) -> int:
    n = 0
    async with open_source(str(path)) as source:
        async for _frame in source:
            n += 1
    return n


def through_source(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    n = asyncio.run(_through_source(path))
    return n, time.perf_counter() - start


def best_of(fn: Callable[[Path], tuple[int, float]], path: Path, repeat: int) -> tuple[int, float]:
    runs = [fn(path) for _ in range(repeat)]
    return min(runs, key=lambda r: r[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hd = VideoCase("hd", ".mp4", "libx264", "yuv420p", Fraction(25), 1280, 720, 150, (("preset", "veryfast"),))
        inputs = {
            "carphone_pristine.mp4 (176x144 h264, 120 frames)": example_video("carphone_pristine"),
            "generated 1280x720 h264, 150 frames": write_video(Path(tmp) / "hd.mp4", hd),
        }
        rows = []
        for name, path in inputs.items():
            n_bare, t_bare = best_of(bare_pyav, path, args.repeat)
            n_src, t_src = best_of(through_source, path, args.repeat)
            rows.append(f"| {name} | {n_bare / t_bare:.0f} | {n_src / t_src:.0f} | {t_src / t_bare:.2f} |")
    section = "\n".join(
        [
            "## sources: decode throughput (fast replay)",
            "",
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
            f"Python {platform.python_version()}, PyAV {av.__version__}. Command: `python tools/bench_sources.py` "
            f"(best of {args.repeat}). Frames decoded and converted to RGB ndarrays per second.",
            "",
            "| input | bare PyAV fps | open_source fps | time ratio |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    write_section("bench_sources", section, path=args.output)
    print(section)


if __name__ == "__main__":
    main()
