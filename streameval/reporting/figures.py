"""The report's figures, drawn with matplotlib's object API (no pyplot: no global state, safe in threads).

Each ``*_figure`` function returns a :class:`Figure` or None when the run has nothing to draw for it (a family
that did not run, a report without a log), so a partial report still gets every figure it can.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from streameval.metrics.expression import AU_KEYS
from streameval.sinks.base import field, finite

WIDTH = 9.0  # inches; at 100 dpi the page's 900-px column
ALERT_COLOUR = "#d62728"


@dataclass(frozen=True, slots=True)
class Plot:
    name: str  # file stem for --png
    title: str
    figure: Figure
    caption: str = ""


def series(records: Sequence[Mapping[str, Any]], path: str) -> tuple[list[float], list[float]]:
    """(window end times, values) of ``path`` over the metrics records that define it."""
    ts: list[float] = []
    vs: list[float] = []
    for r in records:
        t, v = finite(field(r, "window.end")), finite(field(r, path))
        if t is not None and v is not None:
            ts.append(t)
            vs.append(v)
    return ts, vs


def alert_spans(events: Iterable[Mapping[str, Any]], end: float | None) -> list[tuple[str, float, float]]:
    """(rule, raised at, cleared at or the end of the stream) for every raise event, in order."""
    spans: list[tuple[str, float, float]] = []
    open_at: dict[str, float] = {}
    for e in sorted(events, key=lambda e: finite(e.get("time")) or 0.0):
        rule, t = str(e.get("rule")), finite(e.get("time"))
        if t is None:
            continue
        if e.get("event") == "raise":
            open_at.setdefault(rule, t)
        elif e.get("event") == "clear" and rule in open_at:
            spans.append((rule, open_at.pop(rule), t))
    last = end if end is not None else max([t for _, t, _ in spans] + list(open_at.values()), default=0.0)
    spans += [(rule, t, max(t, last)) for rule, t in open_at.items()]
    return spans


def _shade(ax: Axes, spans: Sequence[tuple[str, float, float]]) -> None:
    for _rule, t0, t1 in spans:
        ax.axvspan(t0, t1, color=ALERT_COLOUR, alpha=0.12, linewidth=0)


@dataclass(frozen=True, slots=True)
class Line:
    path: str
    label: str
    twin: bool = False  # on the right-hand axis


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    ylabel: str
    lines: tuple[Line, ...]
    count: str | None = None  # path of the observation count, drawn as a thin grey step
    threshold: str | None = None  # path of the threshold in the records (drawn from the latest that has one)
    twin_label: str = ""
    ylim: tuple[float, float] | None = None


def timeseries_figure(
    records: Sequence[Mapping[str, Any]], panels: Sequence[Panel], spans: Sequence[tuple[str, float, float]]
) -> Figure | None:
    """One row per panel that has data; None when no panel has any."""
    drawable = [p for p in panels if any(series(records, line.path)[0] for line in p.lines)]
    if not drawable:
        return None
    fig = Figure(figsize=(WIDTH, 2.3 * len(drawable)), layout="constrained")
    axes = fig.subplots(len(drawable), 1, sharex=True, squeeze=False)[:, 0]
    for ax, panel in zip(axes, drawable, strict=True):
        twin = ax.twinx() if any(line.twin for line in panel.lines) else None
        for line in panel.lines:
            t, v = series(records, line.path)
            if t:
                target = twin if line.twin and twin is not None else ax
                target.plot(
                    t,
                    v,
                    marker="." if len(t) < 60 else None,
                    linewidth=1.4,
                    label=line.label,
                    linestyle="--" if line.twin else "-",
                )
        if panel.count is not None:
            t, n = series(records, panel.count)
            if t:
                counts = ax.twinx() if twin is None else twin
                counts.step(t, n, where="post", color="0.6", linewidth=0.8, label="n (observations)")
                if twin is None:
                    counts.set_ylabel("n", color="0.4")
        threshold = series(records, panel.threshold)[1] if panel.threshold is not None else []
        if threshold:
            ax.axhline(threshold[-1], color="0.2", linestyle=":", linewidth=1, label=f"threshold {threshold[-1]:g}")
        if panel.ylim is not None:
            ax.set_ylim(*panel.ylim)
        _shade(ax, spans)
        ax.set_title(panel.title, loc="left", fontsize=10)
        ax.set_ylabel(panel.ylabel)
        if twin is not None and panel.twin_label:
            twin.set_ylabel(panel.twin_label)
        handles, labels = ax.get_legend_handles_labels()
        if twin is not None:
            h2, l2 = twin.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        if handles:
            ax.legend(handles, labels, fontsize=8, loc="upper right", ncols=min(4, len(handles)))
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("stream time (s), window end")
    return fig


def au_map_figure(expression: Mapping[str, Any]) -> Figure | None:
    """Per-AU PCC and RMSE over the whole stream as two annotated rows (the paper's AU map)."""
    pcc = [finite(expression.get(f"{au}_pcc")) for au in AU_KEYS]
    rmse = [finite(expression.get(f"{au}_rmse")) for au in AU_KEYS]
    if all(v is None for v in pcc + rmse):
        return None
    fig = Figure(figsize=(WIDTH, 2.6), layout="constrained")
    ax_p, ax_r = fig.subplots(2, 1, sharex=True)
    nan = float("nan")
    for ax, values, cmap, lim, label in (
        (ax_p, pcc, "RdYlGn", (-1.0, 1.0), "PCC"),
        (ax_r, rmse, "YlOrRd", (0.0, max([v for v in rmse if v is not None] + [1.0])), "RMSE"),
    ):
        row = [[nan if v is None else v for v in values]]
        image = ax.imshow(row, cmap=cmap, vmin=lim[0], vmax=lim[1], aspect="auto")
        for i, v in enumerate(values):
            ax.text(i, 0, "–" if v is None else f"{v:.2f}", ha="center", va="center", fontsize=8)
        ax.set_yticks([0], [label])
        fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
    ax_r.set_xticks(range(len(AU_KEYS)), [au.replace("AU", "") for au in AU_KEYS], fontsize=8)
    ax_r.set_xlabel("action unit (AU number); – = undefined (e.g. a constant series)")
    return fig


def histogram_figure(deid: Mapping[str, Any]) -> Figure | None:
    """Distances of the de-identified face to A, B and the source, per recogniser, with its threshold."""
    recs = [(k, v) for k, v in deid.items() if isinstance(v, Mapping) and isinstance(v.get("histograms"), Mapping)]
    if not recs:
        return None
    fig = Figure(figsize=(WIDTH, 2.6 * len(recs)), layout="constrained")
    axes = fig.subplots(len(recs), 1, squeeze=False)[:, 0]
    drew = False
    for ax, (key, block) in zip(axes, recs, strict=True):
        for name, label in (("dist_a", "to A"), ("dist_b", "to B"), ("dist_src", "to the source face")):
            hist = block["histograms"].get(name)
            if not isinstance(hist, Mapping) or not sum(hist.get("counts", [])):
                continue
            edges, counts = list(hist["edges"]), list(hist["counts"])
            ax.stairs(counts, edges, label=f"{label} (n={sum(counts) + hist.get('under', 0) + hist.get('over', 0)})")
            drew = True
        threshold = finite(block.get("threshold"))
        if threshold is not None:
            ax.axvline(threshold, color="0.1", linestyle=":", label=f"threshold {threshold:g} (verified below)")
        ax.set_title(
            f"{key}: {block.get('recogniser', '')} ({block.get('metric', '')} distance)", loc="left", fontsize=10
        )
        ax.set_ylabel("pairs")
        ax.set_xlabel("distance")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return fig if drew else None


IDENTITY = Panel(
    "identity",
    "distance / rate",
    (
        Line("deid.dist_a_mean", "to A (mean)"),
        Line("deid.dist_src_mean", "to source (mean)"),
        Line("deid.leak_rate", "leak rate"),
    ),
    count="deid.leak_rate_n",
    threshold="deid.threshold",
)
EXPRESSION = Panel(
    "expression",
    "correlation",
    (
        Line("expression.pcc_mean", "PCC (mean over AUs)"),
        Line("expression.ccc_mean", "CCC (mean over AUs)"),
        Line("expression.rmse_mean", "RMSE (mean over AUs)", twin=True),
    ),
    twin_label="RMSE (0-5)",
)
REALITY = Panel(
    "photo-reality", "FID (window)", (Line("reality.fid", "FID, window clips"),), count="reality.fid_clips_deid"
)
PIXEL = Panel(
    "pixel",
    "PSNR (dB)",
    (Line("pixel.psnr_mean", "PSNR"), Line("pixel.ssim_mean", "SSIM", twin=True)),
    twin_label="SSIM",
)
COVERAGE = Panel(
    "face coverage",
    "share of frames",
    (Line("coverage.source", "source"), Line("coverage.deid", "de-id")),
    ylim=(-0.02, 1.02),
)
HEALTH = Panel(
    "health",
    "pairs per window",
    (
        Line("health.paired", "paired"),
        Line("health.dropped", "dropped"),
        Line("health.lag_s", "lag (s)", twin=True),
        Line("health.lag_max_s", "max lag (s)", twin=True),
    ),
    twin_label="lag (s)",
)


def plots(
    report: Mapping[str, Any], records: Sequence[Mapping[str, Any]], alerts: Sequence[Mapping[str, Any]]
) -> list[Plot]:
    """Every figure the run's data allows, in page order."""
    out: list[Plot] = []
    events = list(alerts) or list(field(report, "alerts.events") or [])
    spans = alert_spans(events, finite(field(report, "stream.last_t")))
    families = timeseries_figure(records, (IDENTITY, EXPRESSION, REALITY, PIXEL), spans)
    if families is not None:
        out.append(
            Plot(
                "timeseries",
                "Windowed values over the stream",
                families,
                "One point per record (window end); grey steps: observations in the window; red bands: alerts raised.",
            )
        )
    totals = report.get("totals") if isinstance(report.get("totals"), Mapping) else {}
    assert isinstance(totals, Mapping)
    expression = totals.get("expression")
    if isinstance(expression, Mapping) and (fig := au_map_figure(expression)) is not None:
        out.append(
            Plot(
                "au_map",
                "Action units: PCC and RMSE over the whole stream",
                fig,
                "Pearson correlation and RMSE of each AU's intensity series between the two streams.",
            )
        )
    deid = totals.get("deid")
    if isinstance(deid, Mapping) and (fig := histogram_figure(deid)) is not None:
        out.append(
            Plot(
                "distances",
                "Distances of the de-identified face",
                fig,
                "Whole-stream histograms; a distance below the threshold means verified as that identity.",
            )
        )
    health = timeseries_figure(records, (COVERAGE, HEALTH), spans)
    if health is not None:
        out.append(Plot("health", "Coverage and health", health, "Faces found, pairs, drops and lag per window."))
    return out
