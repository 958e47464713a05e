"""Benchmark: peak memory of a replay does not grow with the stream's length.

Generates two long videos (same content rate, different lengths), replays each pair with the pixel metrics in a
fresh process, and records the peak resident set size of that process. Writes the ``memory`` section of
BENCHMARKS.md. Run: ``python tools/bench_memory.py [--seconds 60 240]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402

from tools.bench_md import machine, write_section  # noqa: E402

FPS = 25
# The replay runs in a child process so each length gets its own peak RSS (ru_maxrss of that process alone).
CHILD = """
import json, resource, sys, time
from streameval.cli import main
t = time.perf_counter()
code = main(sys.argv[1:])
print(json.dumps({"code": code, "wall_s": time.perf_counter() - t,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_long_video(path: Path, seconds: int) -> Path:
    """A 320x240 h264 video with a moving gradient (cheap to make, never static for the encoder)."""
    yy, xx = np.mgrid[0:240, 0:320]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(seconds * FPS):
            grey = ((xx + yy + 4 * i) % 256).astype(np.uint8)
            image = np.stack([grey, np.roll(grey, i % 320, axis=1), 255 - grey], axis=2)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def replay(video: Path, work: Path) -> dict[str, float]:
    frame_region = work / "frame_region.toml"  # the generated video has no face: PSNR/SSIM over whole frames
    frame_region.write_text('[pixel]\nregion = "frame"\n')
    args = ["-q", "replay", str(video), str(video), "--window", "10s", "--hop", "1s", "--config", str(frame_region),
            "--log", str(work / "log.jsonl"), "--report", str(work / "report.json")]  # fmt: skip
    out = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    report = json.loads((work / "report.json").read_text())
    result["pairs"] = report["pairing"]["paired"]
    result["records"] = sum(1 for _ in (work / "log.jsonl").open())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, nargs="+", default=[60, 240])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.seconds:
            work = Path(tmp) / f"long{seconds}"
            work.mkdir()
            started = time.perf_counter()
            video = write_long_video(work / "long.mp4", seconds)
            made = time.perf_counter() - started
            result = replay(video, work)
            print(f"{seconds:>5} s: {result} (video made in {made:.1f} s)", flush=True)
            rows.append((seconds, result))
    lines = [
        "## Memory: peak RSS against stream length",
        "",
        f"Command: `python tools/bench_memory.py --seconds {' '.join(map(str, args.seconds))}` on {machine()}.",
        "Each replay compares a generated 320x240 h264 video at 25 fps with itself (`--metrics pixel`, 10 s window,",
        "1 s hop) in a fresh process; peak RSS is that process's `ru_maxrss`.",
        "",
        "| stream length | pairs | records | wall time | peak RSS |",
        "|---|---|---|---|---|",
    ]
    for seconds, r in rows:
        rss = f"{r['peak_rss_mib']:.0f} MiB"
        cells = [f"{seconds} s", int(r["pairs"]), int(r["records"]), f"{r['wall_s']:.1f} s", rss]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    if len(rows) >= 2:
        (s0, r0), (s1, r1) = rows[0], rows[-1]
        growth = r1["peak_rss_mib"] - r0["peak_rss_mib"]
        lines += ["", f"{s1 / s0:.0f}x the stream length changes peak RSS by {growth:+.0f} MiB."]
    write_section("memory", "\n".join(lines))


if __name__ == "__main__":
    main()
