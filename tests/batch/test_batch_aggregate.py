"""Pooling over videos: merged statistics against numpy/scipy on the concatenated samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from numpy.typing import NDArray

from streameval.batch.aggregate import FinishedPair, aggregate, bootstrap_rate, summarise, table_csv
from streameval.batch.state import Gaussian, Moments, PairStats
from streameval.metrics.expression import AU_KEYS
from streameval.stats import GaussianStats, PairedMoments

Arr = NDArray[np.float64]


def frechet_sqrtm(x: Arr, y: Arr) -> float:
    """The textbook formula with scipy's matrix square root (the paper's reference code does the same)."""
    m1, m2 = x.mean(axis=0), y.mean(axis=0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _moments(x: Arr) -> Moments:
    return Moments(len(x), float(x.mean()), float(((x - x.mean()) ** 2).sum()))


def _pair(
    i: int, method: str, rng: np.random.Generator, dim: int, clips: int, frames: int
) -> tuple[FinishedPair, dict]:
    # features with a large common offset and per-video shifts: the merge must not lose accuracy to them
    src = 50.0 + rng.normal(size=(clips, dim)) + rng.normal(size=dim)
    deid = 50.0 + 1.5 * rng.normal(size=(clips, dim)) + 0.3
    aus_src = rng.uniform(0, 5, size=(frames, len(AU_KEYS)))
    aus_deid = 0.6 * aus_src + rng.uniform(0, 2, size=aus_src.shape) + i * 0.2
    dist = {
        name: rng.uniform(0.2, 1.0, size=frames) for name in ("deid_a", "deid_b", "deid_src", "source_a", "source_b")
    }
    gs = {}
    for side, x in (("source", src), ("deid", deid)):
        g = GaussianStats(dim)
        for row in x:  # one clip at a time, as the reality family adds them
            g.update(row[None])
        gs[side] = Gaussian.from_stats(g)
    pm, self_pm = PairedMoments(len(AU_KEYS)), PairedMoments(len(AU_KEYS))
    for a, b in zip(aus_src, aus_deid, strict=True):
        pm.update(a, b)
        self_pm.update(a, a)
    leak = int((dist["deid_a"] <= 0.6).sum())
    swap = int((dist["deid_b"] <= 0.6).sum())
    stats = PairStats(
        distances={k: _moments(v) for k, v in dist.items()},
        rates={"leak": (leak, frames), "swap": (swap, frames)},
        expression={"deid": pm.state, "source": self_pm.state},
        reality={"pool": gs, "logits": gs},
    )
    pcc = [float(np.corrcoef(aus_src[:, j], aus_deid[:, j])[0, 1]) for j in range(len(AU_KEYS))]
    rmse = [float(np.sqrt(np.mean((aus_src[:, j] - aus_deid[:, j]) ** 2))) for j in range(len(AU_KEYS))]
    report = {
        "status": "complete",
        "paper": {"deid": {k: [p, r] for k, p, r in zip(AU_KEYS, pcc, rmse, strict=True)}},
        "totals": {"coverage": {"frames": frames, "source_face_frames": frames, "deid_face_frames": frames - i}},
    }
    raw = {"src": src, "deid": deid, "aus_src": aus_src, "aus_deid": aus_deid, "dist": dist, "pcc": pcc, "rmse": rmse}
    return FinishedPair(f"p{i}", method, report, stats), raw


def test_pooled_values_equal_numpy_over_all_frames_and_clips(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    dim = 12
    made = [_pair(i, "blur" if i < 3 else "swap", rng, dim, clips=5 + i, frames=40 + 7 * i) for i in range(5)]
    groups = aggregate([p for p, _ in made])
    assert list(groups) == ["blur", "swap", "overall"]
    for method, members in (("blur", made[:3]), ("swap", made[3:]), ("overall", made)):
        g = groups[method]
        raws = [r for _, r in members]
        src = np.concatenate([r["src"] for r in raws])
        deid = np.concatenate([r["deid"] for r in raws])
        assert np.isclose(g["reality"]["fid"]["value"], frechet_sqrtm(src, deid), rtol=1e-7)
        assert g["paper"]["deid"]["FID"] == g["reality"]["fid"]["value"]
        assert g["paper"]["source"]["FID"] == 0.0
        for label, name in (("A", "deid_a"), ("B", "deid_b")):
            d = np.concatenate([r["dist"][name] for r in raws])
            assert np.isclose(g["paper"]["deid"][f"{label}_mean"], d.mean(), rtol=1e-12)
            assert np.isclose(g["paper"]["deid"][f"{label}_std"], d.std(), rtol=1e-10)  # population std
        a = np.concatenate([r["aus_src"] for r in raws])
        b = np.concatenate([r["aus_deid"] for r in raws])
        for j, key in enumerate(AU_KEYS):
            pcc, rmse = g["paper"]["deid"][key]
            assert np.isclose(pcc, np.corrcoef(a[:, j], b[:, j])[0, 1], rtol=1e-10)
            assert np.isclose(rmse, np.sqrt(np.mean((a[:, j] - b[:, j]) ** 2)), rtol=1e-10)
            assert g["paper"]["source"][key] == [1.0, 0.0]
            assert np.isclose(g["au_video_mean"][key]["pcc"], np.mean([r["pcc"][j] for r in raws]), rtol=1e-12)
        leaks = np.concatenate([r["dist"]["deid_a"] <= 0.6 for r in raws])
        assert g["leak_rate"]["rate"] == leaks.mean()
        assert g["leak_rate"]["ci_low"] <= g["leak_rate"]["rate"] <= g["leak_rate"]["ci_high"]
        frames = sum(len(r["aus_src"]) for r in raws)
        assert g["coverage"]["frames"] == frames
    csv_text = table_csv(groups)
    lines = csv_text.splitlines()
    assert len(lines) == 1 + 2 * 3
    assert lines[0].startswith("method,stream,pairs,A_mean")


def test_bootstrap_interval_resamples_videos() -> None:
    k = np.array([0, 10, 2, 30])
    n = np.array([50, 50, 40, 60])
    r = bootstrap_rate(k, n, seed=1)
    assert r["rate"] == 42 / 200
    assert r["video_mean"] == np.mean(k / n)
    # the interval comes from whole videos: it cannot go below the all-lowest-video rate or above the highest
    assert 0.0 <= r["ci_low"] < r["rate"] < r["ci_high"] <= 0.5
    assert bootstrap_rate(k, n, seed=1) == r  # seeded: reproducible tables
    one = bootstrap_rate(np.array([3]), np.array([10]))
    assert one["ci_low"] == one["ci_high"] == one["rate"] == 0.3
    assert bootstrap_rate(np.array([0]), np.array([0]))["rate"] is None


def test_state_file_round_trip_from_the_metric_families() -> None:
    """extract -> npz bytes -> parse gives back what the families hold, and the pooled FID of one pair equals the
    family's own whole-stream FID."""
    from streameval.analysis.base import Observation
    from streameval.batch.state import extract, from_bytes, to_bytes
    from streameval.metrics.expression import ExpressionMetric
    from streameval.metrics.reality import RealityMetric

    rng = np.random.default_rng(5)
    reality, expression = RealityMetric(window=2.0), ExpressionMetric(window=2.0)
    src, deid = 3.0 + rng.normal(size=(6, 1024)), rng.normal(size=(6, 1024))
    for feature, cut in (("pool", 1024), ("logits", 400)):
        # straight into the whole-stream statistics: the rolling window's refreshes are not under test
        g_src, g_deid = reality.total[feature]
        for a, b in zip(src, deid, strict=True):
            g_src.update(a[None, :cut])
            g_deid.update(b[None, :cut])
    aus = rng.uniform(0, 5, size=(30, len(AU_KEYS)))
    for t, a in enumerate(aus):
        expression.update(Observation("expression", t / 30, {"source_aus": a, "deid_aus": a[::-1].copy()}))
    stats = PairStats.parse(from_bytes(to_bytes(extract([reality, expression]))))
    assert stats.distances is None and stats.reality is not None and stats.expression is not None
    g = stats.reality["pool"]["deid"]
    assert g.n == 6 and np.allclose(g.mean, deid.mean(axis=0), rtol=0, atol=1e-12)
    assert np.array_equal(g.scatter, g.scatter.T)
    assert np.allclose(g.cov(), np.cov(deid, rowvar=False), rtol=1e-10, atol=1e-12)
    pair = FinishedPair("p", "m", {"paper": {}, "totals": {}}, stats)
    pooled = summarise([pair])
    assert pooled["reality"]["fid"]["value"] == pytest.approx(reality.total_values()["fid"], rel=1e-9)
    assert pooled["paper"]["deid"]["AU12"] == pytest.approx(expression.paper()["deid"]["AU12"], rel=1e-12)


def test_privacy_rates_and_leak_events_pool_exact_counts_from_the_reports() -> None:
    # per video (k, n) of each rate, as a report's totals.deid states them (rate = k / n)
    at_source = [(3, 20), (0, 25), (7, 10)]
    any_rec = [(4, 18), (1, 25), (0, 0)]  # the third video: no analysed pair
    missing = [(2, 20), (0, 25), (9, 10)]
    events = [(2, 1.5), (0, 0.0), (1, 0.2)]
    pairs = []
    for i in range(3):
        deid = {
            "at_source": {"leak_rate": at_source[i][0] / at_source[i][1], "leak_rate_n": at_source[i][1]},
            "leak_any": any_rec[i][0] / any_rec[i][1] if any_rec[i][1] else None,
            "leak_any_n": any_rec[i][1],
            "deid_face_missing_rate": missing[i][0] / missing[i][1],
            "deid_face_missing_rate_n": missing[i][1],
            "leak_events_n": events[i][0],
            "leak_events_s": events[i][1],
        }
        pairs.append(
            FinishedPair(f"p{i}", "blur", {"paper": {}, "totals": {"deid": deid}}, PairStats(None, None, None, None))
        )
    privacy = aggregate(pairs)["blur"]["privacy"]
    assert privacy["leak_rate_at_source"]["rate"] == 10 / 55 and privacy["leak_rate_at_source"]["n"] == 55
    assert privacy["leak_any"]["rate"] == 5 / 43 and privacy["leak_any"]["videos"] == 2  # the empty one left out
    assert privacy["deid_face_missing_rate"]["rate"] == 11 / 55
    assert "leak_any_at_source" not in privacy  # no report states it: no made-up value
    assert privacy["leak_events"] == 3 and privacy["leak_events_s"] == 1.7 and privacy["videos_with_leak_events"] == 2
    r = privacy["leak_rate_at_source"]
    assert r["ci_low"] <= r["rate"] <= r["ci_high"]
    row = next(line for line in table_csv(aggregate(pairs)).splitlines() if line.startswith("blur,deid"))
    header = table_csv(aggregate(pairs)).splitlines()[0].split(",")
    values = dict(zip(header, row.split(","), strict=True))
    assert float(values["leak_rate_at_source"]) == 10 / 55 and values["leak_events"] == "3"
