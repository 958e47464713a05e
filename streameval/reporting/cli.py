"""``streameval report REPORT.json [LOG.jsonl] -o report.html [--png DIR]`` and the ``--html`` of a run.

Nothing heavy at import (matplotlib loads when a page is drawn), so ``streameval --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streameval.errors import MissingExtraError, SinkError, UsageError

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="draw a run's report (and log) as one self-contained HTML page",
        description="One HTML file that needs no network: windowed values over time with alert bands, the AU map "
        "(per-AU PCC and RMSE), distance histograms with the threshold, coverage and health, the paper block, "
        "inputs, alerts and costs. The time series need the run's JSON Lines log.",
    )
    p.add_argument("report", help="the run's report JSON (--report of replay/run), or a batch's summary.json")
    p.add_argument("log", nargs="?", help="the run's JSON Lines log (--log), for the time series")
    p.add_argument("-o", "--output", required=True, help="HTML file to write")
    p.add_argument("--png", metavar="DIR", help="also write each figure as a PNG into DIR")
    p.set_defaults(handler=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from streameval.reporting.inputs import load_report, with_log

    report, log_path = Path(args.report), Path(args.log) if args.log else None
    png = Path(args.png) if args.png else None
    check_output(Path(args.output), [report, *([log_path] if log_path else [])])
    data = load_report(report)
    if data.get("type") == "batch_summary":
        if log_path is not None:
            raise UsageError(
                "a batch summary has no log: give the summary.json alone (each pair's log is in its folder)"
            )
        _write_batch(data, Path(args.output), png)
        return 0
    write_report_html(with_log(data, log_path), Path(args.output), png)
    return 0


def check_output(path: Path, inputs: Sequence[Path], option: str = "-o") -> None:
    """Refuse, before anything is drawn, an output that is one of the inputs, a directory or not a regular file
    (a device, a FIFO, a standard stream): the rules of every output (:func:`streameval.outputs.check_output`)."""
    from streameval.outputs import check_output as check

    check(option, str(path), [("input", str(p)) for p in inputs])


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401  (checked here to name the extra, not deep inside a draw call)
    except ImportError as exc:
        raise MissingExtraError("report", "matplotlib", "drawing the HTML report") from exc


def write_batch_html(summary_path: Path, output: Path, png_dir: Path | None = None) -> None:
    """The page of a batch from its ``summary.json``."""
    from streameval.reporting.inputs import load_report

    check_output(output, [summary_path])
    _write_batch(load_report(summary_path), output, png_dir)


def _write_batch(summary: dict[str, Any], output: Path, png_dir: Path | None) -> None:
    _require_matplotlib()
    from streameval.outputs import write_file_atomic
    from streameval.reporting.batch_page import render_batch

    page, figures = render_batch(summary)
    write_file_atomic(output, page)
    log.info("HTML batch report: %s (%d figures)", output, len(figures))
    if png_dir is not None:
        _write_pngs(figures, png_dir)


def _write_pngs(figures: Any, png_dir: Path) -> None:
    from streameval.reporting.html import write_pngs

    try:
        written = write_pngs(figures, png_dir)
    except OSError as exc:
        raise SinkError(f"cannot write the PNG figures into {png_dir}: {exc.strerror or exc}") from exc
    log.info("PNG figures: %s", ", ".join(str(p) for p in written))


def write_report_html(records: Any, output: Path, png_dir: Path | None = None) -> None:
    """Render ``records`` (:class:`~streameval.reporting.inputs.RunRecords`) to ``output`` (and PNGs)."""
    _require_matplotlib()
    from streameval.outputs import write_file_atomic
    from streameval.reporting.html import render

    check_output(output, [p for p in (records.log_path,) if p is not None])
    page, figures = render(records)
    write_file_atomic(output, page)
    log.info("HTML report: %s (%d figures)", output, len(figures))
    if png_dir is not None:
        _write_pngs(figures, png_dir)
