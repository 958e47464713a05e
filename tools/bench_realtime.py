"""Real-time benchmark: can streameval keep up with a camera, every metric family on, at 176x144 and 1280x720?

Inputs (made once, cached under ``out/bench_realtime/``): the bundled example pair (the real carphone clip,
176x144 at 29.97 fps, 120 frames = 4.0 s, and its face swap onto the astronaut) looped to ``--seconds`` of video
(frame times continue across loops) and scaled to each ``--sizes`` entry (PyAV/swscale bilinear), H.264 yuv420p
like a camera file.

Each measurement runs ``streameval`` in its own process with default settings (thread variables such as
OPENBLAS_NUM_THREADS are removed from its environment: the product decides):

* ``replay ORIG DEID --metrics FAMILIES --log FILE --report FILE`` per size: real-time factor (video s / wall
  s), the same after the first record (start-up and model loading excluded), time to the first record, CPU s
  per video s and peak RSS (``wait4`` rusage of that process), pairs and drops, and per analysis lane the mean
  busy ms and the busy seconds per video second (above 1.0 a lane cannot keep real time: the bottleneck).
* ``run ORIG DEID --realtime`` on the largest size, paced at the frame rate like a live camera: the per-pair lag
  p99 of the whole run (the report's ``health.lag_p99_s``: every analysed pair of every lane, 10 ms bins) and
  the largest lag, the share of due pairs each lane dropped, and the reality lane's I3D clip jobs (done,
  skipped because the previous one still ran, and their latency: they are clips, not pairs).
* ``--concurrent K``: K replays of the largest size at once: how many streams one machine keeps at real time.

Targets: >= 2x real time at 176x144 and >= 1.0x at 1280x720 (replay); live lag p99 <= 1 s with <= 1 % dropped.

Usage::

    python tools/bench_realtime.py       # 30 s of video, both sizes, live rehearsal; writes BENCHMARKS.md
    python tools/bench_realtime.py --seconds 12 --sizes 1280x720 --no-write
    python tools/bench_realtime.py --extra-args "--rate identity=2" --families identity,pixel --no-write
    python tools/bench_realtime.py --device cuda         # [models] device = "cuda" through a temporary config
    python tools/bench_realtime.py --concurrent 2 --no-live --sizes 1280x720
    python tools/bench_realtime.py --code /path/to/other/checkout   # measure another version of the code
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.bench_md import write_section  # noqa: E402

FAMILIES = "identity,expression,reality,pixel"
SIZES = ("176x144", "1280x720")
TARGETS = {"176x144": 2.0, "1280x720": 1.0}  # replay real-time factor to reach
LIVE_LAG_P99_S, LIVE_DROPPED_SHARE = 1.0, 0.01
# Thread variables a user might have exported: the benchmark measures the product's own decision instead.
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
# The child: the CLI of the code under test (works for versions without ``python -m streameval``).
# `python -c` puts the working directory first on sys.path: drop it, so that PYTHONPATH's checkout (--code) is the
# streameval that runs, not one that happens to lie in the directory the benchmark was started from.
CHILD = (
    "import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
    "from streameval.cli import main; raise SystemExit(main())"
)
_PROGRESS = re.compile(r"t=\s*(-?[\d.]+)s\s+records=(\d+)")


# -- inputs -----------------------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not m or int(m.group(1)) < 16 or int(m.group(2)) < 16 or int(m.group(1)) % 2 or int(m.group(2)) % 2:
        raise argparse.ArgumentTypeError(f"expected an even WIDTHxHEIGHT such as 1280x720, got {text!r}")
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class Clip:
    path: Path
    frames: int
    rate: Fraction

    @property
    def seconds(self) -> float:
        return float(self.frames / self.rate)


def base_pair(cache: Path) -> tuple[Path, Path]:
    """The bundled example: the carphone clip and its face swap onto the astronaut (made once)."""
    from streameval.datasets import example_video
    from streameval.deidentify.video import deidentify_video

    original = example_video("carphone_pristine")
    swap = cache / "carphone_swap.mp4"
    if not swap.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = swap.with_suffix(".part.mp4")
        deidentify_video(original, tmp, "swap")
        tmp.replace(swap)
    return original, swap


def looped(src: Path, dst: Path, size: tuple[int, int], seconds: float) -> Clip:
    """``src`` repeated until it lasts ``seconds`` (whole loops), scaled to ``size``, as H.264 yuv420p.

    Frame ``i`` of the output is frame ``i mod n`` of ``src`` at time ``i / rate``: the same frame times in
    both videos of a pair, monotonic across loops. Cached: an existing ``dst`` is reused.
    """
    import av

    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate or 25)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    loops = max(1, math.ceil(seconds * rate / len(frames)))
    clip = Clip(dst, loops * len(frames), rate)
    if dst.exists():
        return clip
    width, height = size
    tmp = dst.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        enc = out.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "18"})
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        scaled = []
        for image in frames:  # scale once, reuse for every loop
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            scaled.append(frame.reformat(width=width, height=height, format="yuv420p", interpolation="BILINEAR"))
        for i in range(clip.frames):
            frame = scaled[i % len(scaled)]
            frame.pts = i
            frame.time_base = 1 / rate
            for packet in enc.encode(frame):
                out.mux(packet)
        for packet in enc.encode():
            out.mux(packet)
    tmp.replace(dst)
    return clip


def make_inputs(cache: Path, size: tuple[int, int], seconds: float) -> tuple[Clip, Clip]:
    original, swap = base_pair(cache)
    tag = f"{size[0]}x{size[1]}_{seconds:g}s"
    return (
        looped(original, cache / f"carphone_original_{tag}.mp4", size, seconds),
        looped(swap, cache / f"carphone_swap_{tag}.mp4", size, seconds),
    )


# -- one child process ------------------------------------------------------------------------------------


@dataclass
class Child:
    """What one streameval process did, as seen from outside."""

    code: int
    wall_s: float
    cpu_s: float  # user + system of the child and its waited-for descendants
    peak_rss_mib: float
    progress: list[tuple[float, float]] = field(default_factory=list)  # (wall s since start, stream t) per record
    stderr_tail: str = ""


def child_env(code_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(code_dir), os.environ.get("PYTHONPATH", "")) if p)
    return env


class Running:
    """A started streameval process; :meth:`wait` reaps it with ``wait4`` for its own rusage."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # one progress line per record, flushed by the CLI
            self.lines.append((time.perf_counter() - self.started, line.rstrip("\n")))

    def wait(self) -> Child:
        _, status, usage = os.wait4(self.proc.pid, 0)
        wall = time.perf_counter() - self.started
        self.proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        self.reader.join()
        progress = [(w, float(m.group(1))) for w, line in self.lines if (m := _PROGRESS.search(line))]
        return Child(
            code=self.proc.returncode,
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            peak_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
            progress=progress,
            stderr_tail="\n".join(line for _, line in self.lines[-15:]),
        )


def evaluation_args(mode: str, pair: tuple[Clip, Clip], families: str, work: Path, extra: list[str]) -> list[str]:
    return [mode, str(pair[0].path), str(pair[1].path), "--metrics", families,
            "--log", str(work / "records.jsonl"), "--report", str(work / "report.json"), *extra]  # fmt: skip


# -- what the outputs say ---------------------------------------------------------------------------------


def steady_rate(progress: list[tuple[float, float]]) -> float | None:
    """Stream seconds per wall second between the first and the last record: start-up excluded."""
    if len(progress) < 2:
        return None
    (w0, t0), (w1, t1) = progress[0], progress[-1]
    return (t1 - t0) / (w1 - w0) if w1 > w0 else None


def startup(progress: list[tuple[float, float]]) -> float | None:
    """Wall seconds before stream time 0 at the steady rate: interpreter start, imports, model loading."""
    rate = steady_rate(progress)
    if not rate:
        return None
    wall, t = progress[0]
    return max(0.0, wall - t / rate)


def lanes(report: dict[str, Any], video_s: float) -> dict[str, dict[str, Any]]:
    """Per analysis lane: analyses done and dropped, mean busy ms, busy seconds per video second."""
    health = report.get("totals", {}).get("health", {})
    analysed = health.get("analysed", {})
    dropped = health.get("dropped_by_analyser", {})
    busy = health.get("busy_ms", {})
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(analysed) | set(dropped)):
        n, d, ms = analysed.get(name, 0), dropped.get(name, 0), busy.get(name)
        out[name] = {
            "analysed": n,
            "dropped": d,
            "dropped_share": d / (n + d) if n + d else 0.0,
            "busy_ms": ms,
            "load": (ms * n / 1000 / video_s) if ms is not None and video_s > 0 else None,
        }
    return out


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]) of a non-empty list, else None."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def lag_stats(records: list[dict[str, Any]], report: dict[str, Any] | None = None) -> dict[str, Any]:
    """Lag: the whole run's per-pair p99 and max from the report's health totals where it has them (else the
    p99 over the records' window maxima, an upper bound), the mean of the records' ``lag_s``, and the deferred
    background jobs (I3D clips) per lane."""
    metrics = [r for r in records if r.get("type") == "metrics"]
    maxima = [float(v) for r in metrics if (v := r.get("health", {}).get("lag_max_s")) is not None]
    means = [float(v) for r in metrics if (v := r.get("health", {}).get("lag_s")) is not None]
    totals = (report or {}).get("totals", {}).get("health", {})
    measured = totals.get("lag_p99_s")
    return {
        "records": len(metrics),
        "lag_p99_s": measured if measured is not None else percentile(maxima, 99),
        "lag_p99_measured": measured is not None,
        "lag_max_s": totals.get("lag_max_s", max(maxima) if maxima else None),
        "lag_mean_s": statistics.fmean(means) if means else None,
        "background": totals.get("background", {}),
    }


def summarize(child: Child, report: dict[str, Any], video_s: float) -> dict[str, Any]:
    """One row: speeds, resources, pairing and drops, per-lane load (see the module docstring)."""
    pairing = report.get("pairing", {})
    health = report.get("totals", {}).get("health", {})
    source_drops = sum(
        int(side.get("stats", {}).get("frames_dropped", 0)) for side in report.get("inputs", {}).values()
    )
    lane_stats = lanes(report, video_s)
    return {
        "status": report.get("status"),
        "video_s": video_s,
        "wall_s": child.wall_s,
        "rtf": video_s / child.wall_s if child.wall_s > 0 else None,
        "steady_rtf": steady_rate(child.progress),
        "first_record_s": child.progress[0][0] if child.progress else None,
        "startup_s": startup(child.progress),
        "cpu_per_video_s": child.cpu_s / video_s if video_s > 0 else None,
        # What the CPU time allows on this machine's cores if nothing else ran: robust to other users' load.
        "ceiling_rtf": video_s * (os.cpu_count() or 1) / child.cpu_s if child.cpu_s > 0 else None,
        "peak_rss_mib": child.peak_rss_mib,
        "pairs": pairing.get("paired"),
        "unpaired": (pairing.get("unpaired_source") or 0) + (pairing.get("unpaired_deid") or 0),
        "dropped": health.get("dropped"),
        "dropped_share_worst": max((v["dropped_share"] for v in lane_stats.values()), default=0.0),
        "source_frames_dropped": source_drops,
        "lanes": lane_stats,
    }


def read_outputs(work: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    report = json.loads((work / "report.json").read_text())
    records = [json.loads(line) for line in (work / "records.jsonl").read_text().splitlines() if line.strip()]
    return report, records


# -- the runs ---------------------------------------------------------------------------------------------


def measure(mode: str, pair: tuple[Clip, Clip], args: argparse.Namespace, work: Path, extra: list[str]) -> Any:
    work.mkdir(parents=True, exist_ok=True)
    child = Running(evaluation_args(mode, pair, args.families, work, extra), child_env(args.code)).wait()
    if child.code != 0:
        raise SystemExit(f"streameval {mode} failed (exit {child.code}):\n{child.stderr_tail}")
    report, records = read_outputs(work)
    row = summarize(child, report, pair[0].seconds)
    row.update(lag_stats(records, report))
    return row


def concurrent(k: int, pair: tuple[Clip, Clip], args: argparse.Namespace, work: Path, extra: list[str]) -> Any:
    env = child_env(args.code)
    procs = []
    for i in range(k):
        (work / f"c{i}").mkdir(parents=True, exist_ok=True)
        procs.append(Running(evaluation_args("replay", pair, args.families, work / f"c{i}", extra), env))
    children = [p.wait() for p in procs]
    rows = []
    for i, child in enumerate(children):
        if child.code != 0:
            raise SystemExit(f"concurrent replay {i} failed (exit {child.code}):\n{child.stderr_tail}")
        rows.append(summarize(child, read_outputs(work / f"c{i}")[0], pair[0].seconds))
    return rows


# -- the markdown -----------------------------------------------------------------------------------------


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    ram = ""
    try:
        kib = next(
            int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line
        )
        ram = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{model}, {os.cpu_count()} cores{ram}, Python {platform.python_version()}"


def _f(value: Any, fmt: str = ".2f", none: str = "n/a") -> str:
    return none if value is None else format(value, fmt)


def _verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def markdown(args: argparse.Namespace, command: str, load: float, results: dict[str, Any]) -> str:
    lines = [
        f"## {args.title}",
        "",
        f"Command: `{command}` — {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; machine: {machine()}; load average "
        f"{load:.1f} at the start (shared machine); code: `{args.code}`"
        + (f" ({results['revision']})" if results.get("revision") else "")
        + f". Families `{args.families}`, defaults otherwise"
        + (f", extra arguments `{' '.join(args.extra)}`" if args.extra else "")
        + (f', `[models] device = "{args.device}"`' if args.device != "cpu" else "")
        + ". Input: the bundled carphone pair (original and face swap, 29.97 fps) looped to the length shown.",
        "",
        "**Replay** (`streameval replay ORIG DEID --metrics ... --log FILE --report FILE`, one process per row). "
        "Real-time factor = video s / wall s; steady = the same between the first and the last record "
        "(start-up excluded); start-up = wall s before stream time 0 at the steady rate (interpreter, imports, "
        "model loading); CPU = user + system s of the process per video s; ceiling = cores / that: the factor "
        "the same work would reach with every core free (robust to the load of other users).",
        "",
        "| input | video s | pairs | dropped | wall s | real-time factor | target | met | steady | start-up s "
        "| first record s | CPU s per video s | ceiling | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, row in results["replay"].items():
        target = TARGETS.get(size)
        met = _verdict(row["rtf"] >= target) if target is not None else "—"
        lines.append(
            f"| {size} | {row['video_s']:.1f} | {row['pairs']} | {row['dropped']} | {row['wall_s']:.1f} "
            f"| {_f(row['rtf'])}x | {_f(target, '.1f', '—')}x | {met} | {_f(row['steady_rtf'])}x "
            f"| {_f(row['startup_s'], '.1f')} | {_f(row['first_record_s'], '.1f')} | {_f(row['cpu_per_video_s'])} "
            f"| {_f(row['ceiling_rtf'])}x | {row['peak_rss_mib']:.0f} |"
        )
    lines += [
        "",
        "Analysis lanes (replay): mean busy ms per analysis, and busy s per video s (a lane above 1.0 cannot keep "
        "real time on its own: the bottleneck). Busy is wall time in the lane: it includes waiting for a core "
        "while the other lanes (and other users) run.",
        "",
        "| input | lane | analyses | busy ms each | busy s per video s |",
        "|---|---|---|---|---|",
    ]
    for size, row in results["replay"].items():
        for name, lane in row["lanes"].items():
            lines.append(
                f"| {size} | {name} | {lane['analysed']} | {_f(lane['busy_ms'], '.0f')} | {_f(lane['load'])} |"
            )
    live = results.get("live")
    if live is not None:
        ok = (
            live["lag_p99_s"] is not None
            and live["lag_p99_s"] <= LIVE_LAG_P99_S
            and live["dropped_share_worst"] <= LIVE_DROPPED_SHARE
        )
        by_lane = ", ".join(f"{n} {v['dropped']}/{v['analysed'] + v['dropped']}" for n, v in live["lanes"].items())
        jobs = ", ".join(
            f"{n}: {v['done']} done, {v['skipped']} skipped, latency max {_f(v['latency_max_s'], '.1f')} s"
            for n, v in live.get("background", {}).items()
        )
        how = (
            "the whole run's per-pair p99 (`health.lag_p99_s` of the report: every analysed pair of every lane)"
            if live.get("lag_p99_measured")
            else "p99 over the metrics records of `health.lag_max_s` (window maxima: an upper bound)"
        )
        lines += [
            "",
            f"**Live rehearsal** (`streameval run ORIG DEID --realtime ...` on {results['live_size']}, paced at the "
            f"frame rate; policy drop-oldest). Lag p99 = {how}. Dropped = share of the pairs due at a lane that it "
            "dropped (worst lane). Clip jobs = the I3D work the reality lane defers to its background thread: a "
            "job due while the previous one still runs is skipped (the clip rate adapts to the CPU left over); "
            "its latency runs from the arrival of the clip's last frame to its features.",
            "",
            "| input | video s | wall s | records | lag p99 s | lag max s | mean lag s | dropped (worst lane) "
            "| dropped by lane | clip jobs | source frames dropped | target | met |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            f"| {results['live_size']} | {live['video_s']:.1f} | {live['wall_s']:.1f} | {live['records']} "
            f"| {_f(live['lag_p99_s'])} | {_f(live['lag_max_s'])} | {_f(live['lag_mean_s'])} "
            f"| {100 * live['dropped_share_worst']:.1f} % | {by_lane} | {jobs or '—'} | "
            f"{live['source_frames_dropped']} | p99 <= {LIVE_LAG_P99_S:g} s, <= {100 * LIVE_DROPPED_SHARE:g} % "
            f"| {_verdict(ok)} |",
        ]
    conc = results.get("concurrent")
    if conc:
        rtfs = [r["rtf"] for r in conc]
        lines += [
            "",
            f"**{len(conc)} concurrent replays** of {results['live_size']}: real-time factor of each "
            f"{', '.join(f'{x:.2f}x' for x in rtfs)}; {sum(x >= 1.0 for x in rtfs)} of {len(conc)} at real time; "
            f"together {sum(r['video_s'] for r in conc) / max(r['wall_s'] for r in conc):.2f} video s per wall s.",
        ]
    return "\n".join(lines)


def revision(code: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    except OSError:
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), type=lambda s: "x".join(map(str, parse_size(s))))
    ap.add_argument("--seconds", type=float, default=30.0, help="video length to loop the clip to (default 30)")
    ap.add_argument("--families", default=FAMILIES, help=f"--metrics of every run (default {FAMILIES})")
    ap.add_argument("--extra-args", default="", help="more streameval arguments for every run, one shell string")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="[models] device (default cpu)")
    ap.add_argument("--concurrent", type=int, default=0, metavar="K", help="also run K replays of the largest size")
    ap.add_argument("--no-live", action="store_true", help="skip the `run --realtime` rehearsal")
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose streameval runs (default this one)")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench_realtime", help="inputs cache and run outputs")
    ap.add_argument("--section", default="bench_realtime", help="BENCHMARKS.md section to write")
    ap.add_argument("--title", default="Real time (tools/bench_realtime.py)", help="heading of that section")
    ap.add_argument("--no-write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.concurrent < 0:
        ap.error("--seconds must be positive and --concurrent >= 0")
    args.extra = shlex.split(args.extra_args)
    args.code = args.code.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load = os.getloadavg()[0]
    command = " ".join(["python tools/bench_realtime.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    extra = list(args.extra)
    with tempfile.TemporaryDirectory(prefix="bench_realtime_") as tmp:
        if args.device != "cpu":
            config = Path(tmp) / "device.toml"
            config.write_text(f'[models]\ndevice = "{args.device}"\n')
            extra += ["--config", str(config)]
        results: dict[str, Any] = {"replay": {}, "revision": revision(args.code)}
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        pairs = {}
        for size in args.sizes:
            pairs[size] = make_inputs(args.out, parse_size(size), args.seconds)
            print(f"{size}: inputs ready ({pairs[size][0].seconds:.1f} s)", flush=True)
        for size in args.sizes:
            row = measure("replay", pairs[size], args, args.out / "runs" / stamp / f"replay_{size}", extra)
            results["replay"][size] = row
            print(f"{size} replay: {json.dumps(row)}", flush=True)
        largest = max(args.sizes, key=lambda s: math.prod(parse_size(s)))
        results["live_size"] = largest
        if not args.no_live:
            results["live"] = measure(
                "run", pairs[largest], args, args.out / "runs" / stamp / "live", [*extra, "--realtime"]
            )
            print(f"{largest} live: {json.dumps(results['live'])}", flush=True)
        if args.concurrent:
            results["concurrent"] = concurrent(
                args.concurrent, pairs[largest], args, args.out / "runs" / stamp / "concurrent", extra
            )
    section = markdown(args, command, load, results)
    print(section)
    if not args.no_write:
        write_section(args.section, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
