"""Pooling finished pairs into one table per method (and over all pairs), as in the paper.

Pooled values treat a method's videos as one long stream: the identity distances' mean and population std over
all analysed frames, per-AU PCC/RMSE over all frame pairs, and the FID over all clips' I3D features — each exact,
by merging the pairs' stored statistics (:mod:`streameval.batch.state`), not by averaging finished values.
Per-AU PCC/RMSE are also averaged over videos (each video one vote). Leak and swap rates are pooled over frames
with a 95 % percentile bootstrap interval that resamples videos, since frames of one video are not independent.
The attacker's view (``privacy``: the leak rate at the source face's location, the worst case over recognisers,
the share of pairs without a detected de-identified face, leak events) is pooled the same way from each pair's
report, where those counts are exact.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np

from streameval.batch.state import Gaussian, Moments, PairStats, Vec
from streameval.metrics.expression import AU_KEYS
from streameval.stats import paired
from streameval.stats.frechet import from_cov
from streameval.stats.moments import PairState, paired_merge

OVERALL = "overall"
BOOTSTRAP = 2000
CONFIDENCE = 0.95


@dataclass
class FinishedPair:
    id: str
    method: str
    report: dict[str, Any]
    stats: PairStats


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _merge_moments(items: Iterable[Moments]) -> Moments:
    return reduce(Moments.merge, items, Moments(0, 0.0, 0.0))


def _merge_gaussians(items: Sequence[Gaussian]) -> Gaussian | None:
    return reduce(Gaussian.merge, items) if items else None


def _fid(a: Gaussian | None, b: Gaussian | None) -> dict[str, Any]:
    if a is None or b is None or a.n < 2 or b.n < 2:
        return {"value": None, "low_n": None, "clips_source": a.n if a else 0, "clips_deid": b.n if b else 0}
    ca, cb = a.cov(), b.cov()
    assert ca is not None and cb is not None  # n >= 2
    result = from_cov(a.mean, (ca + ca.T) * 0.5, b.mean, (cb + cb.T) * 0.5, n1=a.n, n2=b.n)
    return {"value": result.value, "low_n": result.low_n, "clips_source": a.n, "clips_deid": b.n}


def bootstrap_rate(k: np.ndarray, n: np.ndarray, *, seed: int = 0, resamples: int = BOOTSTRAP) -> dict[str, Any]:
    """Pooled rate Σk/Σn over videos, the mean of the per-video rates, and a percentile bootstrap interval of the
    pooled rate resampling videos (only videos with observations count)."""
    keep = n > 0
    k, n = k[keep].astype(np.float64), n[keep].astype(np.float64)
    videos = int(keep.sum())
    if videos == 0:
        return {"rate": None, "ci_low": None, "ci_high": None, "video_mean": None, "videos": 0, "n": 0}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, videos, size=(resamples, videos))
    rates = k[idx].sum(axis=1) / n[idx].sum(axis=1)
    alpha = (1.0 - CONFIDENCE) / 2.0
    low, high = np.quantile(rates, [alpha, 1.0 - alpha])
    return {
        "rate": float(k.sum() / n.sum()),
        "ci_low": float(low),
        "ci_high": float(high),
        "video_mean": float(np.mean(k / n)),
        "videos": videos,
        "n": int(n.sum()),
    }


# The privacy block: (name in the batch summary, where the rate and its count are in a report's ``totals.deid``).
PRIVACY_RATES = (
    ("leak_rate_at_source", ("at_source", "leak_rate")),
    ("leak_any", ("leak_any",)),
    ("leak_any_at_source", ("leak_any_at_source",)),
    ("deid_face_missing_rate", ("deid_face_missing_rate",)),
)


def _rate_count(deid: dict[str, Any], path: tuple[str, ...]) -> tuple[int, int] | None:
    """(count, n) of one rate in a report's ``totals.deid``; None where the report has no such rate."""
    block: Any = deid
    for key in path[:-1]:
        block = block.get(key) if isinstance(block, dict) else None
    if not isinstance(block, dict):
        return None
    rate, n = block.get(path[-1]), block.get(f"{path[-1]}_n")
    if not isinstance(n, int):
        return None
    if n <= 0 or rate is None or not math.isfinite(rate):
        return 0, 0  # nothing measured: bootstrap_rate leaves the video out
    return round(rate * n), n  # the rate is count / n of whole pairs: exact after rounding


def _privacy(pairs: Sequence[FinishedPair], *, seed: int) -> dict[str, Any] | None:
    deids = [p.report.get("totals", {}).get("deid") for p in pairs]
    deids = [d for d in deids if isinstance(d, dict)]
    if not deids:
        return None
    out: dict[str, Any] = {}
    for name, path in PRIVACY_RATES:
        counts = [c for d in deids if (c := _rate_count(d, path)) is not None]
        if counts:
            out[name] = bootstrap_rate(np.array([k for k, _ in counts]), np.array([n for _, n in counts]), seed=seed)
    events = [d for d in deids if isinstance(d.get("leak_events_n"), int)]
    if events:
        out["leak_events"] = sum(int(d["leak_events_n"]) for d in events)
        out["leak_events_s"] = float(sum(float(d.get("leak_events_s") or 0.0) for d in events))
        out["videos_with_leak_events"] = sum(1 for d in events if d["leak_events_n"] > 0)
    return out or None


def _au_block(state: PairState[Vec] | None) -> dict[str, list[float | None]]:
    if state is None:
        return {}
    pcc, _ = paired.pearson_vec(state)
    rmse, _ = paired.rmse_vec(state)
    return {key: [_num(p), _num(r)] for key, p, r in zip(AU_KEYS, pcc, rmse, strict=True)}


def _video_means(pairs: Sequence[FinishedPair]) -> dict[str, dict[str, Any]]:
    """Per AU, the mean over videos of each video's PCC and RMSE (videos where the value is defined)."""
    out: dict[str, dict[str, Any]] = {}
    for key in AU_KEYS:
        pccs, rmses = [], []
        for pair in pairs:
            block = pair.report.get("paper", {}).get("deid", {}).get(key)
            if block is None:
                continue
            if block[0] is not None:
                pccs.append(float(block[0]))
            if block[1] is not None:
                rmses.append(float(block[1]))
        out[key] = {
            "pcc": float(np.mean(pccs)) if pccs else None,
            "rmse": float(np.mean(rmses)) if rmses else None,
            "videos": len(pccs),
        }
    return out


def summarise(pairs: Sequence[FinishedPair], *, seed: int = 0) -> dict[str, Any]:
    """The pooled table of one group of finished pairs."""
    out: dict[str, Any] = {"pairs": len(pairs), "pair_ids": [p.id for p in pairs]}
    paper: dict[str, dict[str, Any]] = {"source": {}, "deid": {}}
    with_deid = [p.stats for p in pairs if p.stats.distances is not None]
    if with_deid:
        for side, a, b in (("source", "source_a", "source_b"), ("deid", "deid_a", "deid_b")):
            for label, name in (("A", a), ("B", b)):
                m = _merge_moments(s.distances[name] for s in with_deid if s.distances)
                paper[side][f"{label}_mean"] = m.mean_or_none
                paper[side][f"{label}_std"] = m.std
                paper[side][f"{label}_n"] = m.n
        for name in ("leak", "swap"):
            k = np.array([s.rates[name][0] for s in with_deid if s.rates])
            n = np.array([s.rates[name][1] for s in with_deid if s.rates])
            out[f"{name}_rate"] = bootstrap_rate(k, n, seed=seed)
    privacy = _privacy(pairs, seed=seed)
    if privacy is not None:
        out["privacy"] = privacy
    with_expr = [p.stats.expression for p in pairs if p.stats.expression is not None]
    if with_expr:
        for side in ("source", "deid"):
            paper[side].update(_au_block(reduce(paired_merge, (e[side] for e in with_expr))))
        out["au_video_mean"] = _video_means(pairs)
    with_reality = [p.stats.reality for p in pairs if p.stats.reality is not None]
    if with_reality:
        reality: dict[str, Any] = {}
        for feature, key in (("pool", "fid"), ("logits", "fvd_logits")):
            src = _merge_gaussians([r[feature]["source"] for r in with_reality])
            deid = _merge_gaussians([r[feature]["deid"] for r in with_reality])
            reality[key] = _fid(src, deid)
        paper["deid"]["FID"] = reality["fid"]["value"]
        # The paper's source row compares the source with itself: 0 whenever defined (a d×d eigh saved).
        paper["source"]["FID"] = 0.0 if sum(r["pool"]["source"].n for r in with_reality) >= 2 else None
        out["reality"] = reality
    out["paper"] = paper
    coverage = [p.report.get("totals", {}).get("coverage") for p in pairs]
    frames = [c for c in coverage if c and c.get("frames")]
    if frames:
        total = sum(int(c["frames"]) for c in frames)
        out["coverage"] = {
            "frames": total,
            "source": sum(int(c["source_face_frames"]) for c in frames) / total,
            "deid": sum(int(c["deid_face_frames"]) for c in frames) / total,
            "video_mean_source": float(np.mean([c["source_face_frames"] / c["frames"] for c in frames])),
            "video_mean_deid": float(np.mean([c["deid_face_frames"] / c["frames"] for c in frames])),
        }
    return out


def aggregate(pairs: Sequence[FinishedPair], *, seed: int = 0) -> dict[str, dict[str, Any]]:
    """One pooled table per method, sorted by name, then ``overall`` over every finished pair."""
    methods = sorted({p.method for p in pairs})
    groups = {m: summarise([p for p in pairs if p.method == m], seed=seed) for m in methods}
    if pairs:
        groups[OVERALL] = summarise(pairs, seed=seed)
    return groups


def table_columns() -> list[str]:
    cols = ["method", "stream", "pairs", "A_mean", "A_std", "B_mean", "B_std", "FID"]
    for name in ("leak_rate", "swap_rate"):
        cols += [name, f"{name}_ci_low", f"{name}_ci_high", f"{name}_video_mean"]
    for name, _ in PRIVACY_RATES:
        cols += [name, f"{name}_ci_low", f"{name}_ci_high"]
    cols += ["leak_events", "coverage"]
    for key in AU_KEYS:
        cols += [f"{key}_pcc", f"{key}_rmse"]
    for key in AU_KEYS:
        cols += [f"{key}_pcc_video_mean", f"{key}_rmse_video_mean"]
    return cols


def table_csv(groups: dict[str, dict[str, Any]]) -> str:
    """The paper's table as CSV: a source and a de-identified row per method (and overall)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=table_columns(), lineterminator="\n")
    writer.writeheader()
    for method, g in groups.items():
        for stream in ("source", "deid"):
            paper = g.get("paper", {}).get(stream, {})
            row: dict[str, Any] = {"method": method, "stream": stream, "pairs": g["pairs"]}
            for key in ("A_mean", "A_std", "B_mean", "B_std", "FID"):
                row[key] = paper.get(key)
            for key in AU_KEYS:
                if key in paper:
                    row[f"{key}_pcc"], row[f"{key}_rmse"] = paper[key]
            if stream == "deid":
                for name in ("leak_rate", "swap_rate"):
                    rate = g.get(name, {})
                    row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"], row[f"{name}_video_mean"] = (
                        rate.get("rate"),
                        rate.get("ci_low"),
                        rate.get("ci_high"),
                        rate.get("video_mean"),
                    )
                privacy = g.get("privacy", {})
                for name, _ in PRIVACY_RATES:
                    rate = privacy.get(name, {})
                    row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = (
                        rate.get("rate"),
                        rate.get("ci_low"),
                        rate.get("ci_high"),
                    )
                row["leak_events"] = privacy.get("leak_events")
                for key, v in g.get("au_video_mean", {}).items():
                    row[f"{key}_pcc_video_mean"], row[f"{key}_rmse_video_mean"] = v["pcc"], v["rmse"]
            row["coverage"] = g.get("coverage", {}).get(stream)
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()
