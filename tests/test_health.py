"""Health metric: the per-pair lag quantile and the background block, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np

from streameval.analysis.base import Observation
from streameval.metrics.health import ANALYSIS, HealthMetric


def analysed(t: float, lag: float, name: str = "faces") -> Observation:
    return Observation(ANALYSIS, t, {"analyser": name, "busy_s": 0.01, "lag_s": lag})


def test_lag_p99_bounds_numpys_percentile_within_one_bin_in_the_window_and_in_total() -> None:
    rng = np.random.default_rng(7)
    lags = rng.gamma(2.0, 0.1, 400)
    health = HealthMetric(window=5.0)
    for i, lag in enumerate(lags):  # 40 per second for 10 s
        health.update(analysed(i / 40, float(lag)))
    health.expire(399 / 40)
    total = health.total_values()
    exact = float(np.quantile(lags, 0.99, method="inverted_cdf"))
    assert exact <= total["lag_p99_s"] <= exact + 0.01
    assert total["lag_p99_s"] <= total["lag_max_s"] == lags.max()
    window = health.window_values()
    recent = lags[[i for i in range(400) if i / 40 > 399 / 40 - 5.0]]  # (now - 5 s, now]
    exact_w = float(np.quantile(recent, 0.99, method="inverted_cdf"))
    assert exact_w <= window["lag_p99_s"] <= exact_w + 0.01


def test_lag_p99_beyond_the_histogram_is_the_maximum() -> None:
    health = HealthMetric(window=10.0)
    for i, lag in enumerate([0.1] * 50 + [12.0, 15.0]):
        health.update(analysed(i * 0.01, lag))
    assert health.total_values()["lag_p99_s"] == 15.0  # the 52nd of 52 values lies beyond 10 s


def test_background_jobs_are_reported_apart_from_pairs() -> None:
    health = HealthMetric(window=10.0)
    health.update(analysed(0.0, 0.05, "reality"))
    health.update(
        Observation(ANALYSIS, 0.5, {"analyser": "reality", "background": True, "busy_s": 2.0, "latency_s": 2.5})
    )
    health.update(Observation(ANALYSIS, 1.0, {"analyser": "reality", "background": True, "skipped": True}))
    health.update(
        Observation(ANALYSIS, 1.5, {"analyser": "reality", "background": True, "busy_s": 1.0, "latency_s": 3.5})
    )
    for values in (health.total_values(), health.window_values()):
        assert values["background"] == {"reality": {"done": 2, "skipped": 1, "busy_ms": 1500.0, "latency_max_s": 3.5}}
        assert values["analysed"] == {"reality": 1} and values["dropped"] == 0  # jobs are not pairs
        assert values["lag_max_s"] == 0.05 and math.isclose(values["lag_p99_s"], 0.05, abs_tol=0.01)
