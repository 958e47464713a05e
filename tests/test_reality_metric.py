"""The reality family's whole-stream values: the paper's FID rows against a direct computation."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from streameval.analysis.base import Observation
from streameval.metrics.reality import RealityMetric


def frechet_sqrtm(x: np.ndarray, y: np.ndarray) -> float:
    m1, m2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def clip(t: float, rng: np.random.Generator, shift: float) -> Observation:
    values = {
        "source_pool": rng.normal(size=1024),
        "deid_pool": rng.normal(size=1024) + shift,
        "source_logits": rng.normal(size=400),
        "deid_logits": rng.normal(size=400) + shift,
        "clip_start": t,
    }
    return Observation("reality", t, values)


def test_paper_rows_totals_and_their_reuse() -> None:
    rng = np.random.default_rng(5)
    metric = RealityMetric(window=10.0)
    metric.update(clip(0.5, rng, 0.3))
    assert metric.paper() == {"source": {"FID": None}, "deid": {"FID": None}}  # one clip: undefined
    obs = [clip(0.5 + 4 * i, rng, 0.3) for i in range(1, 6)]
    for o in obs:
        metric.update(o)
    first = metric.total_values()
    paper = metric.paper()
    assert paper["source"]["FID"] == 0.0  # the source against itself
    assert paper["deid"]["FID"] == first["fid"] is not None
    # the cached value is the distance of all 6 clips, recomputed after one more clip arrives
    metric.update(clip(30.0, rng, 0.3))
    assert metric.total_values()["fid"] != first["fid"]
    assert metric.total_values()["clips"] == 7


def test_total_fid_equals_scipy_sqrtm() -> None:
    rng = np.random.default_rng(9)
    metric = RealityMetric(window=100.0)
    obs = [clip(float(i), rng, 0.5) for i in range(12)]
    for o in obs:
        metric.update(o)
    src = np.stack([np.asarray(o.values["source_pool"]) for o in obs])
    deid = np.stack([np.asarray(o.values["deid_pool"]) for o in obs])
    assert np.isclose(metric.total_values()["fid"], frechet_sqrtm(src, deid), rtol=1e-6)
    assert metric.paper()["deid"]["FID"] == metric.total_values()["fid"]
