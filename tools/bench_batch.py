"""Benchmark ``streameval batch``: pairs per minute with 1 and 2 local workers (and optionally Ray).

Writes the "Batch" section of BENCHMARKS.md (replacing a previous one). Run:

    python tools/bench_batch.py                 # ~3 min on 2 cores
    python tools/bench_batch.py --ray           # also the Ray engine on a local Ray instance
    python tools/bench_batch.py --no-write      # print only

Input: the example set (the 4 s carphone clip, 176x144, against blur, pixelate, mask and swap, plus the clip
against itself: 5 pairs), every family (identity, expression, reality, pixel) with the defaults. Each run starts
from an empty batch directory. CPU s per pair is the workers' process time (every thread of the replay).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streameval.batch.runner import BatchSettings, run_batch  # noqa: E402
from streameval.deidentify.examples import make_examples  # noqa: E402
from tools.bench_md import write_section  # noqa: E402

METRICS = ["identity", "expression", "reality", "pixel"]


def manifest(examples: dict[str, Path], path: Path) -> Path:
    lines = ["source,deid,method,ref_b"]
    for method in ("blur", "pixelate", "mask", "swap"):
        ref_b = examples["astronaut"] if method == "swap" else ""
        lines.append(f"{examples['original']},{examples[method]},{method},{ref_b}")
    lines.append(f"{examples['original']},{examples['original']},none,")
    path.write_text("\n".join(lines) + "\n")
    return path


def run(m: Path, out: Path, workers: int, engine: str) -> dict[str, Any]:
    started = time.monotonic()
    result = run_batch(m, BatchSettings(out=out, workers=workers, engine=engine, overrides={"metrics": METRICS}))
    wall = time.monotonic() - started
    rows = result.summary["pairs"]
    if not result.all_complete:
        raise SystemExit(f"batch incomplete: {rows}")
    cpu = [json.loads((out / "pairs" / r["id"] / "pair.json").read_text())["cpu_s"] for r in rows]
    pair_wall = [r["wall_s"] for r in rows]
    return {
        "engine": engine,
        "workers": workers,
        "pairs": len(rows),
        "wall_s": wall,
        "pairs_per_min": 60.0 * len(rows) / wall,
        "cpu_per_pair": sum(cpu) / len(cpu),
        "wall_per_pair": sum(pair_wall) / len(pair_wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ray", action="store_true", help="also run the Ray engine (local instance, 2 CPUs)")
    parser.add_argument("--no-write", action="store_true", help="print, do not rewrite BENCHMARKS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    ray_start = None
    with tempfile.TemporaryDirectory() as tmp:
        examples = make_examples(Path(tmp) / "examples")
        m = manifest(examples, Path(tmp) / "m.csv")
        for workers in (1, 2):
            rows.append(run(m, Path(tmp) / f"local{workers}", workers, "local"))
            print(rows[-1], flush=True)
        if args.ray:
            import ray

            started = time.monotonic()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            ray_start = time.monotonic() - started
            try:
                rows.append(run(m, Path(tmp) / "ray", 2, "ray"))
                print(rows[-1], flush=True)
            finally:
                ray.shutdown()
    lines = [
        "## Batch (tools/bench_batch.py)",
        "",
        f"Command: `python tools/bench_batch.py{' --ray' if args.ray else ''}` — {time.strftime('%Y-%m-%d %H:%M')}; "
        f"{platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, load average "
        f"{load:.1f} at the start (shared machine). Input: the example set, 5 pairs of the 4 s carphone clip "
        f"(176x144, 120 frames): original against blur, pixelate, mask, swap and itself; families "
        f"`{','.join(METRICS)}`, defaults otherwise; an empty batch directory each time.",
        "",
        "| engine | workers | pairs | wall s | pairs per minute | wall s per pair (in its worker) | CPU s per pair |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['engine']} | {r['workers']} | {r['pairs']} | {r['wall_s']:.1f} | {r['pairs_per_min']:.1f} | "
            f"{r['wall_per_pair']:.1f} | {r['cpu_per_pair']:.1f} |"
        )
    if ray_start is not None:
        lines += ["", f"Ray start-up (`ray.init(num_cpus=2)`, a local instance): {ray_start:.1f} s, not in the row."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("bench_batch", body)


if __name__ == "__main__":
    main()
