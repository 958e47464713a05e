"""One self-contained HTML page for a run: figures, the paper block, inputs, alerts, costs.

Self-contained means no request leaves the file: no script at all, the figures are SVG documents in ``data:``
URIs (each its own document, so the ids matplotlib gives clip paths and glyphs cannot collide between
figures), styles inline, and a Content-Security-Policy that forbids every other source, so even a browser that
found a URL in the page would not fetch it. Every text taken from the report (paths, rule names, errors) is
HTML-escaped: a file name is data, never markup.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from streameval.reporting.figures import Plot, plots
from streameval.reporting.inputs import RunRecords

log = logging.getLogger(__name__)

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 60rem;
       color: #222; line-height: 1.4; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; } h2 { font-size: 1.15rem; margin-top: 2rem;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: right; }
th { background: #f4f4f4; } td.k, th.k { text-align: left; }
figure { margin: 1rem 0; } figure img { width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; }
.status { display: inline-block; padding: 0.1rem 0.6rem; border-radius: 0.8rem; color: white; font-weight: 600; }
.complete { background: #2ca02c; } .interrupted, .truncated { background: #ff7f0e; } .failed { background: #d62728; }
.note { background: #fff8e1; border-left: 4px solid #ffb300; padding: 0.4rem 0.8rem; font-size: 0.9rem; }
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: object) -> str:
    """A cell: numbers to 4 significant digits, null as an en dash, everything else escaped text."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return esc(value)
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.4g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple) and all(isinstance(v, int | float) or v is None for v in value):
        return " / ".join(fmt(v) for v in value)
    if isinstance(value, Mapping | list | tuple):
        return esc(json.dumps(value, default=str))
    return esc(value)


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f'<th class="k">{esc(header[0])}</th>' + "".join(f"<th>{esc(h)}</th>" for h in header[1:]))
    body = "".join(
        "<tr>" + f'<td class="k">{fmt(row[0])}</td>' + "".join(f"<td>{fmt(v)}</td>" for v in row[1:]) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def svg_data_uri(plot: Plot) -> str:
    from matplotlib import rc_context

    buf = io.StringIO()
    # no timestamp and a fixed salt for the element ids: the same run draws the same page, byte for byte
    with rc_context({"svg.hashsalt": "streameval"}):
        plot.figure.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue().encode()).decode("ascii")


def page_head(title: str) -> str:
    """The start of a page up to ``<body>``: charset, the Content-Security-Policy, the inline style."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{STYLE}</style></head><body>
"""


def figures_html(figures: Sequence[Plot]) -> str:
    """Each figure as an SVG ``data:`` image with its caption."""
    return "".join(
        f'<figure><img alt="{esc(p.title)}" src="{svg_data_uri(p)}"><figcaption><b>{esc(p.title)}.</b> '
        f"{esc(p.caption)}</figcaption></figure>"
        for p in figures
    )


def _paper(report: Mapping[str, Any]) -> str:
    paper = report.get("paper")
    if not isinstance(paper, Mapping) or not paper:
        return "<p>No paper block in this report (no identity, expression or reality family ran).</p>"
    sides = [s for s in ("source", "deid") if isinstance(paper.get(s), Mapping)]
    keys: list[str] = []
    for s in sides:
        keys += [k for k in paper[s] if k not in keys]
    rows = [[k, *(paper[s].get(k) for s in sides)] for k in keys]
    return (
        "<p>Bursic et al. (ICPR 2020): identity distances (mean, population std), per-AU [PCC, RMSE] and FID, "
        "each stream against the original.</p>" + table(["quantity", *sides], rows)
    )


def _totals(report: Mapping[str, Any]) -> str:
    totals = report.get("totals")
    if not isinstance(totals, Mapping):
        return "<p>No totals.</p>"
    parts = []
    for family, values in totals.items():
        if not isinstance(values, Mapping):
            continue
        rows = [
            [k, v] for k, v in values.items() if isinstance(v, int | float | str | type(None)) and k != "null_reasons"
        ]
        if rows:
            parts.append(f"<h3>{esc(family)}</h3>" + table(["key", "whole stream"], rows))
    return "".join(parts) or "<p>No totals.</p>"


def _inputs(report: Mapping[str, Any]) -> str:
    inputs = report.get("inputs")
    if not isinstance(inputs, Mapping):
        return "<p>No input information.</p>"
    rows = []
    for side, block in inputs.items():
        if not isinstance(block, Mapping):
            continue
        info = block.get("info") if isinstance(block.get("info"), Mapping) else {}
        stats = block.get("stats") if isinstance(block.get("stats"), Mapping) else {}
        assert isinstance(info, Mapping) and isinstance(stats, Mapping)
        size = f"{info.get('width')}x{info.get('height')}" if info.get("width") else None
        rows.append(
            [
                side,
                block.get("spec"),
                size,
                info.get("fps"),
                info.get("codec"),
                stats.get("frames_decoded"),
                stats.get("frames_dropped"),
                stats.get("end_reason"),
            ]
        )
    return table(["stream", "input", "size", "fps", "codec", "decoded", "dropped", "end"], rows)


def _alerts(report: Mapping[str, Any], records: RunRecords) -> str:
    block = report.get("alerts") if isinstance(report.get("alerts"), Mapping) else {}
    assert isinstance(block, Mapping)
    events: list[Mapping[str, Any]] = list(records.alerts) or [
        e for e in block.get("events", []) if isinstance(e, Mapping)
    ]
    if not events:
        return "<p>No alert events.</p>"
    rows = [
        [e.get("time"), e.get("event"), e.get("rule"), e.get("severity"), e.get("field"), e.get("value")]
        for e in events
    ]
    active = block.get("active_at_end") or []
    tail = f"<p>Still raised at the end: {esc(', '.join(map(str, active)))}</p>" if active else ""
    return table(["stream time (s)", "event", "rule", "severity", "field", "value"], rows) + tail


def _privacy(report: Mapping[str, Any]) -> str:
    """The privacy incident log: every run of pairs where the de-identified face was verified as A."""
    totals = report.get("totals")
    deid = totals.get("deid") if isinstance(totals, Mapping) else None
    if not isinstance(deid, Mapping):
        return "<p>No identity family in this run.</p>"
    events = [e for e in deid.get("leak_events", []) if isinstance(e, Mapping)]
    if not events:
        return "<p>No leak event: no analysed pair was verified as identity A.</p>"
    rows = []
    for e in events:
        m = e.get("strongest") if isinstance(e.get("strongest"), Mapping) else {}
        assert isinstance(m, Mapping)
        rows.append(
            [e.get("start"), e.get("end"), e.get("duration_s"), e.get("pairs"), "open" if e.get("open") else "",
             m.get("recogniser"), m.get("path"), m.get("distance"), m.get("threshold"), m.get("t")]
        )  # fmt: skip
    shown = "" if len(events) == deid.get("leak_events_n") else f" (the last {len(events)} shown)"
    header = [
        "start (s)",
        "end (s)",
        "duration (s)",
        "pairs",
        "",
        "recogniser",
        "path",
        "distance",
        "threshold",
        "at (s)",
    ]
    return f"<p>{fmt(deid.get('leak_events_n'))} leak events{shown}.</p>" + table(header, rows)


def _budget(report: Mapping[str, Any]) -> str:
    budget = report.get("budget")
    if not isinstance(budget, Mapping) or not isinstance(budget.get("lanes"), Mapping):
        return "<p>No cost measurements.</p>"
    rows = [
        [name, lane.get("ms_per_call"), lane.get("cpu_ms_per_call"), lane.get("calls_per_video_s"), lane.get("load")]
        for name, lane in budget["lanes"].items()
        if isinstance(lane, Mapping)
    ]
    head = (
        f"<p>Analysis could run at up to {fmt(budget.get('speed_bound'))}x real time on {fmt(budget.get('cores'))} "
        f"cores, limited by the {esc(budget.get('limiting_lane'))} lane; "
        f"{fmt(budget.get('cpu_s_per_video_s'))} CPU s per video s in the lanes.</p>"
    )
    return head + table(["lane", "ms per call", "CPU ms per call", "calls per video s", "load"], rows)


def _key_values(title: str, value: object) -> str:
    if isinstance(value, Mapping) and value:
        return f"<h3>{esc(title)}</h3>" + table(["key", "value"], [[k, v] for k, v in value.items()])
    if isinstance(value, list) and value:
        return f"<h3>{esc(title)}</h3>" + "".join(
            table(["key", "value"], [[k, v] for k, v in item.items()]) for item in value if isinstance(item, Mapping)
        )
    return ""


def render(records: RunRecords) -> tuple[str, list[Plot]]:
    """The page and the figures on it (for ``--png``)."""
    report = records.report
    figures = plots(report, records.metrics, records.alerts)
    status = str(report.get("status", "unknown"))
    stream = report.get("stream") if isinstance(report.get("stream"), Mapping) else {}
    assert isinstance(stream, Mapping)
    notes = []
    if report.get("error"):
        notes.append(f"The run ended with an error: {esc(report['error'])}")
    if records.log_path is None:
        notes.append("No JSON Lines log was given: the time series need it (`streameval report REPORT LOG`).")
    elif not records.metrics:
        notes.append(f"The log {esc(records.log_path)} holds no metrics records.")
    if records.skipped_lines:
        notes.append(f"{records.skipped_lines} line(s) of the log could not be read and were skipped (a cut line?).")
    missing = [f for f in ("deid", "expression", "reality", "pixel") if f not in (report.get("totals") or {})]
    if missing:
        notes.append(f"Families not in this report: {esc(', '.join(missing))}; their figures are left out.")
    figure_html = figures_html(figures)
    first, last = stream.get("first_t"), stream.get("last_t")
    duration = last - first if isinstance(first, int | float) and isinstance(last, int | float) else None
    page = (
        page_head(f"streameval report: {report.get('stream_id', '')}")
        + f"""<h1>streameval report: {esc(report.get("stream_id", ""))}</h1>
<p><span class="status {esc(status)}">{esc(status)}</span>
 streameval {esc(report.get("streameval_version", "?"))}, started {esc(report.get("started_at", "?"))},
 {fmt(duration)} s of stream in {fmt(report.get("wall_s"))} s, {fmt(stream.get("records"))} records.</p>
{"".join(f'<p class="note">{n}</p>' for n in notes)}
<h2>Figures</h2>
{figure_html or "<p>Nothing to draw.</p>"}
<h2>Paper block</h2>
{_paper(report)}
<h2>Privacy incidents</h2>
{_privacy(report)}
<h2>Alerts</h2>
{_alerts(report, records)}
<h2>Inputs</h2>
{_inputs(report)}
<h2>Whole-stream values</h2>
{_totals(report)}
<h2>Cost</h2>
{_budget(report)}
<h2>Run</h2>
{_key_values("configuration", report.get("config"))}
{_key_values("pairing", report.get("pairing"))}
{_key_values("models", report.get("models"))}
{_key_values("sinks", report.get("sinks"))}
</body></html>
"""
    )
    return page, figures


def write_pngs(figures: Sequence[Plot], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for plot in figures:
        path = directory / f"{plot.name}.png"
        plot.figure.savefig(path, format="png", dpi=100, metadata={"Software": None})
        out.append(path)
    return out
