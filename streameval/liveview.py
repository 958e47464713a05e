"""The live terminal view of a run: the latest window's values, active alerts, lag, drops and lane rates.

:func:`render` is a pure function of the latest metrics record and the alert states (what the tests check);
:class:`LiveView` redraws its lines in place on a terminal with two ANSI sequences (cursor to the start of a
previous line, erase line), which every terminal emulator since the VT100 understands, so no curses or rich
is needed. Off a terminal the caller keeps the plain one-line progress instead.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from typing import Any, TextIO

from streameval.sinks.base import Record, field, finite

CSI = "\x1b["


def _num(value: object, digits: int = 3, unit: str = "") -> str:
    if finite(value) is None:
        return "–"
    text = str(value) if isinstance(value, int) else f"{value:.{digits}f}"
    return text + unit


def render(
    record: Record, alerts: Mapping[str, Mapping[str, Any]], *, speed: float | None = None, width: int = 100
) -> list[str]:
    """The view's lines for the latest ``metrics`` record and the currently raised ``alerts`` (rule -> event)."""
    w = field(record, "window") or {}
    health = field(record, "health") or {}
    seq = record.get("seq")
    records = seq + 1 if isinstance(seq, int) and not isinstance(seq, bool) else None
    head = (
        f"streameval  stream {record.get('stream_id', '?')}  t={_num(field(w, 'end'), 2)} s"
        f"  window {_num(field(w, 'length_s'), 1)} s  records {_num(records)}"
        + (f"  speed {speed:.2f}x" if speed is not None else "")
    )
    lines = [head]
    deid = field(record, "deid")
    if isinstance(deid, Mapping):
        lines.append(
            f"identity    leak {_num(deid.get('leak_rate'))} (n={_num(deid.get('leak_rate_n'))})"
            f"  swap {_num(deid.get('swap_rate'))}  dist A {_num(deid.get('dist_a_mean'))}"
            f"  src {_num(deid.get('dist_src_mean'))}  threshold {_num(deid.get('threshold'), 2)}"
        )
    expr = field(record, "expression")
    if isinstance(expr, Mapping):
        lines.append(
            f"expression  PCC {_num(expr.get('pcc_mean'))}  CCC {_num(expr.get('ccc_mean'))}"
            f"  RMSE {_num(expr.get('rmse_mean'))} (n={_num(expr.get('n'))})"
        )
    reality = field(record, "reality")
    if isinstance(reality, Mapping):
        low = "  (few clips: biased up)" if reality.get("fid_low_n") else ""
        lines.append(
            f"reality     FID {_num(reality.get('fid'), 2)} over {_num(reality.get('fid_clips_source'))}"
            f"/{_num(reality.get('fid_clips_deid'))} clips{low}"
        )
    pixel = field(record, "pixel")
    if isinstance(pixel, Mapping):
        lines.append(f"pixel       PSNR {_num(pixel.get('psnr_mean'), 2, ' dB')}  SSIM {_num(pixel.get('ssim_mean'))}")
    coverage = field(record, "coverage")
    if isinstance(coverage, Mapping):
        lines.append(f"coverage    source {_num(coverage.get('source'), 2)}  de-id {_num(coverage.get('deid'), 2)}")
    rates = field(health, "analysis_rate")
    dropped = field(health, "dropped_by_analyser")
    lanes = sorted(rates) if isinstance(rates, Mapping) else []
    per_lane = "  ".join(
        f"{lane} {_num(rates[lane], 1)}/s"
        + (f" ({dropped[lane]} dropped)" if isinstance(dropped, Mapping) and dropped.get(lane) else "")
        for lane in lanes
    )
    lines.append(
        f"health      pairs {_num(field(health, 'paired'))}  dropped {_num(field(health, 'dropped'))}"
        f"  lag {_num(field(health, 'lag_s'), 2, ' s')} (max {_num(field(health, 'lag_max_s'), 2, ' s')})"
    )
    if per_lane:
        lines.append(f"lanes       {per_lane}")
    if alerts:
        active = ", ".join(
            f"{rule} ({event.get('severity', '?')}, since {_num(event.get('time'), 1)} s)"
            for rule, event in sorted(alerts.items())
        )
        lines.append(f"ALERTS      {active}")
    else:
        lines.append("alerts      none active")
    return [line if len(line) <= width else line[: max(1, width - 1)] + "…" for line in lines]


class LiveView:
    """Redraws :func:`render`'s lines in place on ``stream`` (a terminal) for each record; tracks alert states."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.alerts: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()
        self._drawn = 0

    def __call__(self, record: Record) -> None:
        kind = record.get("type")
        if kind == "alert":
            rule = str(record.get("rule"))
            if record.get("event") == "raise":
                self.alerts[rule] = dict(record)
            else:
                self.alerts.pop(rule, None)
            return
        if kind != "metrics":
            return
        end = field(record, "window.end")
        wall = time.monotonic() - self.started
        speed = end / wall if isinstance(end, int | float) and end > 0 and wall > 0 else None
        width = shutil.get_terminal_size((100, 24)).columns
        lines = render(record, self.alerts, speed=speed, width=width)
        out = []
        if self._drawn:
            out.append(f"{CSI}{self._drawn}F")  # back to the first line of the previous drawing
        out += [f"{CSI}2K{line}\n" for line in lines]
        if self._drawn > len(lines):  # a shorter drawing: clear what is left of the longer one
            out += [f"{CSI}2K\n"] * (self._drawn - len(lines))
            out.append(f"{CSI}{self._drawn - len(lines)}F")
        self.stream.write("".join(out))
        self.stream.flush()
        self._drawn = len(lines)
