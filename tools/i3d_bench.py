"""Benchmark I3D (ONNX, onnxruntime) per 16-frame clip and record it in BENCHMARKS.md.

Usage: python tools/i3d_bench.py [--model models/i3d_kinetics400.onnx] [--threads 2] [--device cpu]
       [--repeats 5] [--batch 1] [--no-write]
Builds the model into the cache first if --model does not exist. Replaces only its own section of
BENCHMARKS.md (between the i3d-bench markers).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from streameval.models.fetch import cache_dir
from streameval.models.i3d import I3DFeatureExtractor
from streameval.models.i3d_export import ONNX_FILENAME, build_i3d

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.bench_md import write_section  # noqa: E402

log = logging.getLogger("i3d_bench")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=cache_dir() / "models" / ONNX_FILENAME)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print only, do not update BENCHMARKS.md")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if not args.model.is_file():
        build_i3d(cache_dir() / "packages", args.model.parent)
    extractor = I3DFeatureExtractor(args.model, device=args.device, threads=args.threads)
    clips = np.random.default_rng(0).uniform(-1, 1, (args.batch, 16, 224, 224, 3)).astype(np.float32)
    extractor.features(clips)  # warm-up: session initialisation and memory planning
    wall, cpu = [], []
    for _ in range(args.repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        extractor.features(clips)
        wall.append((time.perf_counter() - w0) / args.batch)
        cpu.append((time.process_time() - c0) / args.batch)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    line = (
        f"| I3D Kinetics-400 ONNX, 1 clip 16x224x224 (batch {args.batch}) | {args.device}, {args.threads} threads "
        f"| {statistics.median(wall):.3f} s wall (min {min(wall):.3f}) | {statistics.median(cpu):.3f} s CPU |"
    )
    section = "\n".join(
        [
            "## I3D feature extraction",
            "",
            f"Machine: {_cpu_name()}, {os.cpu_count()} logical cores, load average {load:.1f} at the start "
            f"(shared machine); onnxruntime, Python {platform.python_version()}.",
            f"Command: `python tools/i3d_bench.py --threads {args.threads} --device {args.device} "
            f"--repeats {args.repeats} --batch {args.batch}`; median of {args.repeats} runs after one warm-up, "
            "per clip.",
            "",
            "| model | device | time per clip | CPU time per clip |",
            "|---|---|---|---|",
            line,
        ]
    )
    log.info("%s", section)
    if not args.no_write:
        write_section("i3d-bench", section, path=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
