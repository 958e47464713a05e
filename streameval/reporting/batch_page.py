"""The page of a batch (``streameval batch``'s ``summary.json``): one table per method, as in the paper.

Same rules as the run page (:mod:`streameval.reporting.html`): no script, SVG figures in ``data:`` URIs, a
Content-Security-Policy, every text escaped. Figures: leak and swap rates per method with their bootstrap
intervals, the pooled FID per method, and per-AU PCC per method (rows: methods, columns: AUs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from streameval.metrics.expression import AU_KEYS
from streameval.reporting.figures import WIDTH, Plot
from streameval.reporting.html import esc, figures_html, fmt, page_head, table
from streameval.sinks.base import finite

OVERALL = "overall"
METHOD_COLUMNS = [
    "method", "pairs", "A mean", "A std", "B mean", "leak rate", "95 % interval", "FID", "mean AU PCC",
    "coverage (de-id)",
]  # fmt: skip


def _methods(summary: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    methods = summary.get("methods")
    if not isinstance(methods, Mapping):
        return []
    return [(str(k), v) for k, v in methods.items() if isinstance(v, Mapping)]


def rates_figure(methods: Sequence[tuple[str, Mapping[str, Any]]]) -> Figure | None:
    """Leak and swap rate per method (pooled over frames) with the 95 % bootstrap interval over videos."""
    rows = [(m, g) for m, g in methods if isinstance(g.get("leak_rate"), Mapping)]
    if not rows or all(finite(g["leak_rate"].get("rate")) is None for _, g in rows):
        return None
    fig = Figure(figsize=(WIDTH, 0.5 + 0.45 * len(rows) * 2), layout="constrained")
    ax = fig.subplots()
    for offset, name, colour in ((-0.18, "leak_rate", "#d62728"), (0.18, "swap_rate", "#1f77b4")):
        for i, (_, g) in enumerate(rows):
            block = g.get(name)
            rate = finite(block.get("rate")) if isinstance(block, Mapping) else None
            if rate is None:
                continue
            assert isinstance(block, Mapping)
            lo, hi = finite(block.get("ci_low")), finite(block.get("ci_high"))
            err = [[rate - lo], [hi - rate]] if lo is not None and hi is not None else None
            label = (
                ("leak rate (verified as A)" if name == "leak_rate" else "swap rate (verified as B)")
                if i == 0
                else None
            )
            ax.barh(i + offset, rate, height=0.34, color=colour, xerr=err, capsize=3, label=label)
    ax.set_yticks(range(len(rows)), [m for m, _ in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of analysed pairs (bars: pooled; whiskers: 95 % bootstrap over videos)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return fig


def fid_figure(methods: Sequence[tuple[str, Mapping[str, Any]]]) -> Figure | None:
    rows = []
    for m, g in methods:
        reality = g.get("reality")
        fid = reality.get("fid") if isinstance(reality, Mapping) else None
        value = finite(fid.get("value")) if isinstance(fid, Mapping) else None
        if value is not None and isinstance(fid, Mapping):
            rows.append((m, value, bool(fid.get("low_n")), fid.get("clips_deid")))
    if not rows:
        return None
    fig = Figure(figsize=(WIDTH, 0.6 + 0.4 * len(rows)), layout="constrained")
    ax = fig.subplots()
    ax.barh(
        range(len(rows)), [v for _, v, _, _ in rows], color=["#9467bd" if not low else "#c5b0d5" for *_, low, _ in rows]
    )
    for i, (_, v, low, clips) in enumerate(rows):
        ax.text(v, i, f"  {v:.2f} ({clips} clips{', few: biased up' if low else ''})", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [m for m, *_ in rows])
    ax.invert_yaxis()
    ax.set_xlabel("FID of the pooled I3D clip features (de-identified vs original)")
    ax.grid(axis="x", alpha=0.3)
    return fig


def au_figure(methods: Sequence[tuple[str, Mapping[str, Any]]]) -> Figure | None:
    rows: list[tuple[str, list[float]]] = []
    for m, g in methods:
        paper = g.get("paper")
        deid = paper.get("deid") if isinstance(paper, Mapping) else None
        if not isinstance(deid, Mapping) or not any(isinstance(deid.get(au), list) for au in AU_KEYS):
            continue
        values = []
        for au in AU_KEYS:
            pair = deid.get(au)
            v = finite(pair[0]) if isinstance(pair, list) and pair else None
            values.append(float("nan") if v is None else v)
        rows.append((m, values))
    if not rows:
        return None
    fig = Figure(figsize=(WIDTH, 0.8 + 0.45 * len(rows)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow([v for _, v in rows], cmap="RdYlGn", vmin=-1, vmax=1, aspect="auto")
    for r, (_, values) in enumerate(rows):
        for c, v in enumerate(values):
            ax.text(c, r, "–" if math.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), [m for m, _ in rows])
    ax.set_xticks(range(len(AU_KEYS)), [au.replace("AU", "") for au in AU_KEYS], fontsize=8)
    ax.set_xlabel("action unit: PCC of the AU series, pooled over every frame pair of the method's videos")
    fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
    return fig


def batch_plots(summary: Mapping[str, Any]) -> list[Plot]:
    methods = _methods(summary)
    out = []
    if (fig := rates_figure(methods)) is not None:
        out.append(
            Plot(
                "batch_rates",
                "Leak and swap rates per method",
                fig,
                "Pooled over all analysed frames of the method's videos; whiskers resample whole videos.",
            )
        )
    if (fig := fid_figure(methods)) is not None:
        out.append(Plot("batch_fid", "FID per method", fig, "Fréchet distance of the merged Gaussian statistics."))
    if (fig := au_figure(methods)) is not None:
        out.append(Plot("batch_au_pcc", "Expression preservation per method", fig, "Per-AU PCC, pooled."))
    return out


def _method_rows(methods: Sequence[tuple[str, Mapping[str, Any]]]) -> list[list[object]]:
    rows: list[list[object]] = []
    for m, g in methods:
        paper = g.get("paper") if isinstance(g.get("paper"), Mapping) else {}
        assert isinstance(paper, Mapping)
        deid = paper.get("deid") if isinstance(paper.get("deid"), Mapping) else {}
        assert isinstance(deid, Mapping)
        pccs = [finite(deid[au][0]) for au in AU_KEYS if isinstance(deid.get(au), list) and deid[au]]
        defined = [p for p in pccs if p is not None]
        leak = g.get("leak_rate") if isinstance(g.get("leak_rate"), Mapping) else {}
        assert isinstance(leak, Mapping)
        ci = f"{fmt(leak.get('ci_low'))} – {fmt(leak.get('ci_high'))}" if leak.get("ci_low") is not None else None
        coverage = g.get("coverage") if isinstance(g.get("coverage"), Mapping) else {}
        assert isinstance(coverage, Mapping)
        rows.append(
            [
                m,
                g.get("pairs"),
                deid.get("A_mean"),
                deid.get("A_std"),
                deid.get("B_mean"),
                leak.get("rate"),
                ci,
                deid.get("FID"),
                sum(defined) / len(defined) if defined else None,
                coverage.get("deid"),
            ]
        )
    return rows


def render_batch(summary: Mapping[str, Any]) -> tuple[str, list[Plot]]:
    figures = batch_plots(summary)
    methods = _methods(summary)
    counts = summary.get("counts") if isinstance(summary.get("counts"), Mapping) else {}
    assert isinstance(counts, Mapping)
    run = summary.get("run") if isinstance(summary.get("run"), Mapping) else {}
    assert isinstance(run, Mapping)
    figure_html = figures_html(figures)
    pairs = summary.get("pairs") if isinstance(summary.get("pairs"), list) else []
    assert isinstance(pairs, list)
    pair_rows = [
        [p.get("id"), p.get("method"), p.get("status"), p.get("error")] for p in pairs if isinstance(p, Mapping)
    ]
    status = str(summary.get("status", "unknown"))
    interrupted = (
        '<p class="note">The batch did not finish: the tables pool the pairs finished so far.</p>'
        if status != "complete"
        else ""
    )
    page = (
        page_head(f"streameval batch: {summary.get('manifest', '')}")
        + f"""<h1>streameval batch</h1>
<p><span class="status {esc(status)}">{esc(status)}</span> Manifest {esc(summary.get("manifest", "?"))}:
 {fmt(counts.get("complete"))} pairs complete, {fmt(counts.get("failed"))} failed,
 {fmt(counts.get("invalid"))} invalid rows; {fmt(run.get("wall_s"))} s.</p>
{interrupted}
<h2>Per method (pooled, as in the paper)</h2>
{table(METHOD_COLUMNS, _method_rows(methods))}
<h2>Figures</h2>
{figure_html or "<p>Nothing to draw.</p>"}
<h2>Pairs</h2>
{table(["pair", "method", "status", "error"], pair_rows)}
</body></html>
"""
    )
    return page, figures
