"""Synchronous Python API over :func:`streameval.evaluation.evaluate` for two recorded videos.

In the spirit of the paper's reference code (``calculate_face_recognition_distances``,
``get_attribute_preservation_metrics``, ``calculate_video_FID``), but streaming: the videos are decoded frame
by frame and memory stays bounded. Each function runs one replay and returns a block of the final report;
:func:`evaluate_videos` returns the whole report (``report["paper"]`` holds the paper-compatible block).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any

from streameval.config import RunConfig, apply_settings

PathLike = str | os.PathLike[str]


def evaluate_videos(
    source: PathLike,
    deid: PathLike,
    *,
    metrics: Sequence[str] = ("identity", "expression", "reality"),
    window: float = 10.0,
    hop: float = 1.0,
    rate: Mapping[str, float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    report: PathLike | None = None,
) -> dict[str, Any]:
    """Replay ``source`` against ``deid`` and return the final report (no JSON Lines log).

    ``options`` are the TOML tables by name, e.g. ``{"identity": {"ref_a": "a.png"}, "models": {"device":
    "cpu"}}``; ``rate`` maps analyser names to analyses per second.
    """
    from streameval.evaluation import evaluate

    config = RunConfig(
        source=os.fspath(source),
        deid=os.fspath(deid),
        window=window,
        hop=hop,
        metrics=list(metrics),
        rate=dict(rate or {}),
        log=None,
        report=None if report is None else os.fspath(report),
    )
    apply_settings(config, {name: dict(table) for name, table in (options or {}).items()}, "options")
    return asyncio.run(evaluate(config.validate()))


def calculate_face_recognition_distances(
    source: PathLike,
    deid: PathLike,
    *,
    ref_a: PathLike | None = None,
    ref_b: PathLike | None = None,
    rate: float | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Distances to A and B of both streams: ``{"source": {A_mean, A_std, B_mean, B_std}, "deid": {...},
    "deid_totals": <whole-stream deid family>, "coverage": <whole-stream coverage>}``.

    ``rate``: identity analyses per second (default 5; ``float('inf')`` is not allowed, use a high number such
    as the frame rate to analyse every frame).
    """
    tables: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (options or {}).items()}
    identity = tables.setdefault("identity", {})
    if ref_a is not None:
        identity["ref_a"] = os.fspath(ref_a)
    if ref_b is not None:
        identity["ref_b"] = os.fspath(ref_b)
    rep = evaluate_videos(
        source, deid, metrics=["identity"], options=tables, rate=None if rate is None else {"identity": rate}
    )
    keys = ("A_mean", "A_std", "B_mean", "B_std")
    out: dict[str, Any] = {side: {k: rep["paper"][side].get(k) for k in keys} for side in ("source", "deid")}
    out["deid_totals"] = rep["totals"]["deid"]
    out["coverage"] = rep["totals"]["coverage"]
    return out


def get_attribute_preservation_metrics(
    source: PathLike, deid: PathLike, *, options: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Per AU ``[PCC, RMSE]`` of the de-identified stream against the source (``"AU01"`` ... ``"AU45"``), plus
    ``"totals"``: the whole-stream expression family (CCC, means, reasons for undefined values)."""
    rep = evaluate_videos(source, deid, metrics=["expression"], options=options)
    out: dict[str, Any] = {k: v for k, v in rep["paper"]["deid"].items() if k.startswith("AU")}
    out["totals"] = rep["totals"]["expression"]
    return out


def calculate_video_fid(
    source: PathLike, deid: PathLike, *, options: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Whole-stream Fréchet distance of I3D face-clip features: ``{"fid": pool-1024 (the paper's), "fvd_logits":
    logits-400, "fid_low_n": ..., "clips": ...}`` (the reality family's whole-stream values)."""
    rep = evaluate_videos(source, deid, metrics=["reality"], options=options)
    totals: dict[str, Any] = rep["totals"]["reality"]
    return totals
