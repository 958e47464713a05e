"""The ``streameval`` command line.

Exit codes: 0 success, 2 bad usage or configuration (a refused output path included), 3 bad input (missing,
corrupt or truncated video, unreachable stream), 4 model problem (missing or corrupted model file), 5 output
problem (cannot write the log or report: disk full, read-only folder, stdout closed), 70 internal error (a bug:
please report it with the traceback from ``-v``), 130 interrupted (the report is still written). Every failure
is one line on stderr (docs/outputs.md).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from streameval import __version__, cli_args
from streameval.batch.cli import add_parser as add_batch_parser
from streameval.config import RunConfig, load_config
from streameval.deidentify.cli import add_parser as add_deidentify_parser
from streameval.errors import InputError, MissingExtraError, ModelError, SinkError, StreamevalError, UsageError
from streameval.extract import add_parser as add_extract_parser
from streameval.models.cli import add_parser as add_models_parser
from streameval.redact import RedactFilter, redact
from streameval.reporting.cli import add_parser as add_report_parser
from streameval.sinks.base import Record

log = logging.getLogger("streameval")

EXIT_OK, EXIT_USAGE, EXIT_INPUT, EXIT_MODEL, EXIT_SINK, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 2, 3, 4, 5, 70, 130

_EPILOG = """\
examples:
  streameval replay original.mp4 anonymised.mp4 --window 10s --hop 1s --report report.json
  streameval replay --config example/carphone.toml
  streameval run rtsp://cam/original udp://0.0.0.0:5000 --log metrics.jsonl --policy drop-oldest
  streameval extract original.mp4 --out aus.csv --au-model combined

Every flag --foo-bar can also be given as the key foo_bar in a TOML file passed with --config.
Records are JSON Lines on stdout (or --log FILE); the final report is JSON (--report).
"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so every usage error gets the same one-line form."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message}")


_duration = cli_args.duration
_rate = cli_args.rate


def _add_evaluation_args(p: argparse.ArgumentParser, live: bool) -> None:
    p.add_argument("source", nargs="?", help="original video: file, URL (rtsp/rtmp/http/udp/tcp/srt), /dev/videoN, -")
    p.add_argument("deid", nargs="?", help="de-identified video, same forms as SOURCE")
    p.add_argument("-c", "--config", help="TOML file with the same settings as the flags (flags win)")
    g = p.add_argument_group("windows")
    g.add_argument("--window", type=_duration("window"), help="rolling window in stream time (default 10s)")
    g.add_argument("--hop", type=_duration("hop"), help="time between records (default 1s)")
    g = p.add_argument_group("pairing")
    g.add_argument("--pair", choices=["time", "index"], help="pair frames by timestamp (default) or by frame index")
    g.add_argument("--offset", type=_duration("offset"), help="how far the de-identified stream runs behind (0s)")
    g.add_argument("--tolerance", type=_duration("tolerance"), help="max time gap of a pair (half a frame)")
    g.add_argument("--index-offset", type=int, help="with --pair index: deid frame i+N pairs with source frame i")
    g.add_argument("--max-pending", type=int, help="frames held for one stream while the other lags (64)")
    g = p.add_argument_group("analysis")
    g.add_argument("--metrics", help="comma-separated families: identity, expression, reality, pixel (default: pixel)")
    g.add_argument("--rate", type=_rate, action="append", help="analyser sampling rate, NAME=PER_SECOND (repeat)")
    g.add_argument(
        "--policy",
        choices=["block", "drop-oldest"],
        help="when analysis falls behind: wait, or drop the oldest queued pair "
        f"(default {'drop-oldest' if live else 'block'})",
    )
    g.add_argument("--queue-size", type=int, help="pairs queued per analyser (4)")
    g = p.add_argument_group("sources")
    g.add_argument("--realtime", action="store_true", default=None, help="pace files at their native frame rate")
    g.add_argument("--read-timeout", type=_duration("read_timeout"), help="a read that stalls longer is a drop (10s)")
    if live:
        g.add_argument(
            "--no-reconnect",
            dest="reconnect",
            action="store_false",
            default=None,
            help="give up when a live stream ends instead of reconnecting",
        )
        g.add_argument(
            "--give-up-after",
            type=_duration("give_up_after"),
            help="end a live stream after this long without frames, e.g. 5m (default: keep reconnecting)",
        )
    g = p.add_argument_group("output")
    g.add_argument("--log", help="JSON Lines records: a file, or - for stdout (default)")
    g.add_argument("--no-log", action="store_true", help="do not write JSON Lines records")
    g.add_argument("--report", help="final report JSON file, or - for stdout (default streameval_report.json)")
    g.add_argument(
        "--frames",
        help="also write both streams' per-frame AUs to this CSV (OpenFace layout with a stream column, as "
        "'streameval extract'; needs the expression family)",
    )
    g.add_argument("--sink", action="append", help="extra sink URL, e.g. mqtt://user@host:1883/prefix (repeat)")
    g.add_argument("--stream-id", help="name of this stream pair in records and topics (default 'default')")
    g.add_argument(
        "--live-view",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="at a terminal, a block of the latest values, alerts, lag and drops instead of the progress line "
        "(default: on for run, off for replay)",
    )
    g.add_argument("--html", help="also draw the run as a self-contained HTML page (see 'streameval report')")
    g.add_argument(
        "--metrics-port", help="serve Prometheus metrics on PORT (127.0.0.1) or HOST:PORT, at /metrics, during the run"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="streameval",
        description="Streaming evaluator for video face de-identification: compares an original video with its "
        "de-identified version over rolling windows and for the whole stream.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"streameval {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr, no progress")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    modes = [
        ("replay", False, "evaluate recorded videos as fast as possible, with a final report",
         "Offline evaluation: nothing is dropped; progress is shown on stderr."),
        ("run", True, "monitor live streams (reconnects, bounded lag, drops counted)",
         "Live evaluation: analysis drops the oldest work when it falls behind, so lag stays bounded."),
    ]  # fmt: skip
    for name, live, summary_line, description in modes:
        mode = sub.add_parser(
            name,
            help=summary_line,
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=_EPILOG,
        )
        _add_evaluation_args(mode, live=live)
        mode.set_defaults(handler=_cmd_evaluate, live=live)
    add_models_parser(sub)
    add_extract_parser(sub)
    add_deidentify_parser(sub)
    add_report_parser(sub)
    add_batch_parser(sub)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Only the flags the user actually gave, named like the TOML keys."""
    keys = [
        "source", "deid", "window", "hop", "pair", "offset", "tolerance", "index_offset", "max_pending",
        "metrics", "policy", "queue_size", "realtime", "read_timeout", "log", "report", "sink", "stream_id",
        "give_up_after", "metrics_port", "frames",
    ]  # fmt: skip
    out = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if getattr(args, "reconnect", None) is not None:
        out["reconnect"] = args.reconnect
    if args.rate:
        out["rate"] = dict(args.rate)
    if args.no_log:
        out["log"] = None
    return out


class _Progress:
    """One status line on stderr per record (rewritten in place on a terminal), or the live view (a block of
    the latest values, :mod:`streameval.liveview`) when asked for and stderr is a terminal."""

    def __init__(self, enabled: bool, view: bool = False) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.view: Any = None
        if enabled and view and self.tty:
            from streameval.liveview import LiveView

            self.view = LiveView(sys.stderr)

    def __call__(self, record: Record) -> None:
        if self.enabled and self.view is not None:
            self.view(record)
            return
        if not self.enabled or record.get("type") != "metrics":
            return
        window = record["window"]
        health = record.get("health", {})
        wall = time.monotonic() - self.started
        speed = window["end"] / wall if wall > 0 and window["end"] > 0 else 0.0
        line = (
            f"t={window['end']:7.2f}s  records={record['seq'] + 1}  window pairs={health.get('paired', 0)}"
            f"  dropped={health.get('dropped', 0)}  speed={speed:.1f}x"
        )
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.tty and self.view is None:
            sys.stderr.write("\n")


class _Interrupts:
    """Counts SIGINT/SIGTERM from the very start of a run: a signal that arrives while the models load, before
    the event loop exists, must still end the run cleanly with a report (not a KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.count = 0
        self.on_signal: Callable[[int], None] | None = None

    def __call__(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.on_signal is not None:
            self.on_signal(self.count)

    def install(self) -> dict[int, Any]:
        """Handle both signals from now on; returns the previous handlers for ``restore``."""
        if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
            return {}
        return {sig: signal.signal(sig, self) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def restore(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    interrupts = _Interrupts()
    previous = interrupts.install()
    try:
        return _evaluate_command(args, interrupts)
    finally:
        _Interrupts.restore(previous)


def _evaluate_command(args: argparse.Namespace, interrupts: _Interrupts) -> int:
    import asyncio  # here, like every heavy import: `import streameval.cli` stays cheap (tests/test_startup.py)

    overrides = _overrides(args)
    overrides["live"] = bool(args.live)
    config = load_config(args.config, overrides)
    html = Path(args.html) if args.html else None
    if html is not None:  # refused before the run, not after it
        from streameval.outputs import check_output

        inputs = [(name, p) for name, p in (("source", config.source), ("de-identified input", config.deid)) if p]
        check_output("--html", str(html), [(name, p) for name, p in inputs if p != "-"])
        for option, other in (("--report", config.report), ("--log", config.log)):
            if other and other != "-" and Path(other).resolve() == html.resolve():
                raise UsageError(f"--html {html}: is also the {option} file; give the page its own file")
    log.info("evaluating %s against %s", config.source, config.deid)  # URLs are redacted by the log filter
    view = args.live_view if args.live_view is not None else bool(args.live)  # run: on at a terminal
    progress = _Progress(enabled=not args.quiet, view=view)
    report = asyncio.run(_evaluate_with_signals(config, progress, interrupts))
    progress.done()
    if html is not None:
        _write_html(report, config.log, html)
    if report["status"] == "interrupted":
        where = f"report written to {config.report}" if config.report else "no report (none asked for)"
        sys.stderr.write(f"streameval: interrupted; {where}\n")  # even with -q: the user asked for it
        return EXIT_INTERRUPTED
    if not args.quiet:
        sys.stderr.write(summary(report))
    return EXIT_OK


def _write_html(report: dict[str, Any], log_file: str | None, html: Path) -> None:
    """The page of the run just ended; its time series come from the JSON Lines log when that is a file."""
    from streameval.reporting.cli import write_report_html
    from streameval.reporting.inputs import with_log

    write_report_html(with_log(report, Path(log_file) if log_file and log_file != "-" else None), html)


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def _counted(values: dict[str, Any], key: str, what: str) -> str:
    """`` (k/n <what>)`` for a rate with its count: a rate without its count hides how little it may rest on."""
    rate, n = values.get(key), values.get(f"{key}_n")
    if n is None:
        return ""
    return f" ({0 if rate is None else round(rate * n)}/{n} {what})"


def _privacy_lines(d: dict[str, Any]) -> list[str]:
    """The attacker's view: identity at the source face's location, and the pairs the detector missed."""
    at = d.get("at_source")
    if not isinstance(at, dict):
        return []
    missing, with_source = d.get("deid_face_missing_rate"), d.get("deid_face_missing_rate_n")
    line = f"  at the source face's location: leak rate {_fmt(at.get('leak_rate'))}{_counted(at, 'leak_rate', 'pairs')}"
    if missing is not None and with_source:
        line += f"; {round(missing * with_source)} of {with_source} pairs without a detected de-identified face"
    lines = [line]
    if "leak_events_n" in d:
        lines.append(
            f"  any recogniser: leak rate {_fmt(d.get('leak_any'))}{_counted(d, 'leak_any', 'analysed')}, at the "
            f"source location {_fmt(d.get('leak_any_at_source'))}{_counted(d, 'leak_any_at_source', 'pairs')}; "
            f"leak events: {d['leak_events_n']} ({_fmt(d.get('leak_events_s'), 1)} s)"
        )
    return lines


def summary(report: dict[str, Any]) -> str:
    """A few whole-stream lines for a person at the terminal (the report file has everything)."""
    totals = report.get("totals", {})
    pairing = report.get("pairing", {})
    lines = [
        f"status: {report.get('status')}  pairs: {pairing.get('paired', 0)}  unpaired: "
        f"{pairing.get('unpaired_source', 0)} source / {pairing.get('unpaired_deid', 0)} de-identified"
    ]
    if "deid" in totals:
        d = totals["deid"]
        lines.append(
            f"identity ({d.get('recogniser')}, threshold {d.get('threshold')}): leak rate "
            f"{_fmt(d.get('leak_rate'))}{_counted(d, 'leak_rate', 'analysed')}"
            f", swap rate {_fmt(d.get('swap_rate'))}, distance to A {_fmt(d.get('dist_a_mean'))}"
            f", to B {_fmt(d.get('dist_b_mean'))}"
        )
        privacy = _privacy_lines(d)
        lines.extend(privacy[:1])
        for block in d.values():  # the other recognisers, each under its key (deid.faceres, ...)
            if isinstance(block, dict) and "threshold" in block and block.get("recogniser") != d.get("recogniser"):
                at: dict[str, Any] = block["at_source"] if isinstance(block.get("at_source"), dict) else {}
                lines.append(
                    f"  {block.get('recogniser')} (threshold {block.get('threshold')}): leak rate "
                    f"{_fmt(block.get('leak_rate'))}{_counted(block, 'leak_rate', 'analysed')}, at the source "
                    f"location {_fmt(at.get('leak_rate'))}{_counted(at, 'leak_rate', 'pairs')}, swap rate "
                    f"{_fmt(block.get('swap_rate'))}, distance to A {_fmt(block.get('dist_a_mean'))}"
                )
        lines.extend(privacy[1:])
    if "expression" in totals:
        e = totals["expression"]
        lines.append(
            f"expression ({e.get('au_source', 'mesh')} AUs): AU PCC {_fmt(e.get('pcc_mean'))}"
            f", RMSE {_fmt(e.get('rmse_mean'))}"
            f", CCC {_fmt(e.get('ccc_mean'))} (mean over {e.get('pcc_aus', 0)} AUs)"
        )
    if "reality" in totals:
        r = totals["reality"]
        low = " (few clips: biased up, compare like with like)" if r.get("fid_low_n") else ""
        lines.append(f"reality: FID {_fmt(r.get('fid'), 2)} over {r.get('clips', 0)} clip pairs{low}")
    if "coverage" in totals:
        c = totals["coverage"]
        lines.append(f"face coverage: source {_fmt(c.get('source'), 2)}, de-identified {_fmt(c.get('deid'), 2)}")
    if "pixel" in totals:
        p = totals["pixel"]
        where = " (face region)" if p.get("region") == "face" else ""
        line = f"pixel{where}: PSNR {_fmt(p.get('psnr_mean'), 2)} dB, SSIM {_fmt(p.get('ssim_mean'))}"
        if p.get("no_face_pairs"):
            skipped = p["no_face_pairs"]
            line += f"; {skipped} pairs without a source face not compared ([pixel] region = 'frame': whole frames)"
        lines.append(line)
    alerts = report.get("alerts", {})
    if alerts.get("events"):
        lines.append(f"alerts: {len(alerts['events'])} events, {len(alerts.get('active_at_end', []))} active at end")
    if report.get("report_path"):
        lines.append(f"report: {report['report_path']}")
    return "\n".join(lines) + "\n"


async def _evaluate_with_signals(config: RunConfig, progress: _Progress, interrupts: _Interrupts) -> dict[str, Any]:
    """The first signal stops reading (what was measured is published and reported); the second also stops
    waiting for outputs that cannot deliver, e.g. an MQTT broker that is down."""
    import asyncio

    from streameval.evaluation import evaluate

    stop, hurry = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(count: int) -> None:  # runs in the signal handler: hand over to the loop
        loop.call_soon_threadsafe(react, count)

    def react(count: int) -> None:
        if count == 1:
            log.warning("interrupted: finishing the report (interrupt again to stop waiting for the outputs)")
            stop.set()
        elif not hurry.is_set():
            log.warning("interrupted again: not waiting for the outputs any longer")
            stop.set()
            hurry.set()

    for count in range(1, interrupts.count + 1):  # signals that came before the loop started
        react(count)
    interrupts.on_signal = on_signal
    try:
        return await evaluate(config, stop=stop, hurry=hurry, on_record=progress)
    finally:
        interrupts.on_signal = None


def _one_line(text: str) -> str:
    """Errors are one line on stderr: library messages (FFmpeg's among them) may hold newlines."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="streameval: %(levelname)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactFilter())  # no log line may carry a password from a source or sink URL


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        sys.stderr.write(f"streameval: error: {_one_line(redact(str(exc)))} (see 'streameval --help')\n")
        return EXIT_USAGE
    _setup_logging(args.verbose, args.quiet)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    codes: list[tuple[type[BaseException], int]] = [
        (UsageError, EXIT_USAGE),
        (MissingExtraError, EXIT_USAGE),
        (InputError, EXIT_INPUT),
        (ModelError, EXIT_MODEL),
        (SinkError, EXIT_SINK),
    ]
    try:
        return int(args.handler(args))
    except StreamevalError as exc:
        sys.stderr.write(f"streameval: error: {_one_line(redact(str(exc)))}\n")
        return next((code for kind, code in codes if isinstance(exc, kind)), EXIT_INTERNAL)
    except KeyboardInterrupt:  # commands without a report (models, deidentify): say so, no traceback
        sys.stderr.write("streameval: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception:
        log.critical("internal error (a bug in streameval)", exc_info=True)
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
