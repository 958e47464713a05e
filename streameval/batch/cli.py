"""``streameval batch MANIFEST --out DIR``: evaluate every pair of a manifest and write per-method tables.

Light at import (argument parsing only): the engines, numpy and the evaluation load when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from streameval import cli_args
from streameval.errors import UsageError

EXIT_OK, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 0, 3, 130

_EPILOG = """\
manifest (CSV with a header row, or JSON Lines), one pair per row:
  source,deid,method[,ref_a,ref_b,id,options]
  carphone.mp4,carphone_blur.mp4,blur
  carphone.mp4,carphone_swap.mp4,swap,,astronaut.png,,"{""reality"": {""clip_every"": ""1s""}}"

examples:
  streameval batch dataset.csv --out runs/ds --metrics identity,expression,reality --workers 2
  streameval batch dataset.jsonl --out runs/ds --config eval.toml --engine ray --ray-address auto

Rerunning with the same DIR skips the pairs already complete. Exit code 0 when every row completed, 3 when some
row is invalid or failed (see DIR/pairs.csv), 130 when interrupted (finished pairs and the summary are kept).
"""


_duration = cli_args.duration
_rate = cli_args.rate


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


# The replay options a batch passes on to every pair (same names as `streameval replay`).
_EVALUATION_KEYS = (
    "window", "hop", "pair", "offset", "tolerance", "index_offset", "max_pending", "metrics", "policy",
    "queue_size", "read_timeout",
)  # fmt: skip


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "batch",
        help="evaluate every pair of a manifest (local processes or Ray) and tabulate per method",
        description="Replay each (original, de-identified) pair of MANIFEST in a worker, store each pair's report, "
        "records and statistics in DIR, and write the paper's table per method and overall (summary.json, "
        "table.csv, pairs.csv). Resumable: finished pairs are skipped on rerun.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    p.add_argument("manifest", help="CSV or JSON Lines file: source, deid, method[, ref_a, ref_b, id, options]")
    p.add_argument("--out", required=True, help="batch directory (created; rerun with the same one to resume)")
    p.add_argument("-c", "--config", help="TOML file with the evaluation settings shared by every pair")
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=["local", "ray"], default="local", help="process pool (default) or Ray")
    g.add_argument("--workers", type=_positive, help="pairs evaluated at once (default: CPUs, or the cluster's)")
    g.add_argument("--ray-address", help="Ray cluster to join, e.g. auto or ray://head:10001 (default: local)")
    g.add_argument("--retries", type=int, default=1, help="extra attempts of a failing pair (default 1)")
    g.add_argument(
        "--no-model-check",
        dest="check_models",
        action="store_false",
        help="let workers run with a model zoo that differs from this machine's",
    )
    p.add_argument("--html", help="also draw the per-method tables as a self-contained HTML page")
    g = p.add_argument_group("evaluation (as for replay; every pair)")
    g.add_argument("--metrics", help="comma-separated families: identity, expression, reality, pixel")
    g.add_argument("--window", type=_duration("window"), help="rolling window in stream time (default 10s)")
    g.add_argument("--hop", type=_duration("hop"), help="time between records (default 1s)")
    g.add_argument("--pair", choices=["time", "index"], help="pair frames by timestamp (default) or by frame index")
    g.add_argument("--offset", type=_duration("offset"), help="how far the de-identified stream runs behind (0s)")
    g.add_argument("--tolerance", type=_duration("tolerance"), help="max time gap of a pair (half a frame)")
    g.add_argument("--index-offset", type=int, help="with --pair index: deid frame i+N pairs with source frame i")
    g.add_argument("--max-pending", type=int, help="frames held for one stream while the other lags (64)")
    g.add_argument("--rate", type=_rate, action="append", help="analyser sampling rate, NAME=PER_SECOND (repeat)")
    g.add_argument("--policy", choices=["block", "drop-oldest"], help="when analysis falls behind (default block)")
    g.add_argument("--queue-size", type=int, help="pairs queued per analyser (4)")
    g.add_argument("--read-timeout", type=_duration("read_timeout"), help="a read that stalls longer is a drop")
    p.set_defaults(handler=_cmd_batch)


def _table(summary: dict[str, Any]) -> str:
    def fmt(value: Any, digits: int = 3) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    c = summary["counts"]
    lines = [
        f"batch {summary['status']}: {c['complete']}/{c['rows']} pairs complete, {c['failed']} failed, "
        f"{c['invalid']} invalid, {c['not_run']} not run ({summary['run']['replays']} replays, "
        f"{summary['run']['skipped']} skipped)"
    ]
    for method, g in summary["methods"].items():
        deid = g.get("paper", {}).get("deid", {})
        parts = [f"{method:>10} ({g['pairs']} pairs):"]
        if "A_mean" in deid:
            leak = g.get("leak_rate", {})
            parts.append(
                f"dist A {fmt(deid.get('A_mean'))}, leak {fmt(leak.get('rate'))} "
                f"[{fmt(leak.get('ci_low'))}, {fmt(leak.get('ci_high'))}]"
            )
            privacy = g.get("privacy", {})
            if privacy:
                parts.append(
                    f"at source {fmt(privacy.get('leak_rate_at_source', {}).get('rate'))}, any recogniser "
                    f"{fmt(privacy.get('leak_any', {}).get('rate'))}, leak events {privacy.get('leak_events', 'n/a')}"
                )
        if "AU01" in deid:
            pccs = [v[0] for k, v in deid.items() if k.startswith("AU") and v[0] is not None]
            parts.append(f"AU PCC {fmt(sum(pccs) / len(pccs) if pccs else None)}")
        if "FID" in deid:
            parts.append(f"FID {fmt(deid.get('FID'), 2)}")
        lines.append(" ".join(parts))
    return "\n".join(lines) + "\n"


def _cmd_batch(args: argparse.Namespace) -> int:
    from streameval.batch.runner import BatchSettings, run_batch

    overrides: dict[str, Any] = {k: getattr(args, k) for k in _EVALUATION_KEYS if getattr(args, k) is not None}
    if args.rate:
        overrides["rate"] = dict(args.rate)
    if args.retries < 0:
        raise UsageError("--retries must be >= 0")
    settings = BatchSettings(
        out=Path(args.out),
        config=args.config,
        overrides=overrides,
        workers=args.workers,
        engine=args.engine,
        ray_address=args.ray_address,
        retries=args.retries,
        check_models=args.check_models,
    )
    if not args.quiet:
        logging.getLogger("streameval.batch.progress").setLevel(logging.INFO)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = run_batch(args.manifest, settings, stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if args.html:  # also after an interrupt: the page says which pairs are pooled
        from streameval.reporting.cli import write_batch_html

        write_batch_html(Path(args.out) / "summary.json", Path(args.html))
    if not args.quiet:
        sys.stderr.write(_table(result.summary))
        sys.stderr.write(f"summary: {Path(args.out) / 'summary.json'}, table: {Path(args.out) / 'table.csv'}\n")
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.all_complete else EXIT_INCOMPLETE
