"""Fréchet distance: exact cases, sqrtm reference (well-conditioned), 50-digit mpmath reference (singular)."""

from __future__ import annotations

import numpy as np
import pytest
from stats_reference import frechet_mp_ref, frechet_sqrtm_ref

from streameval.errors import InputError, UsageError
from streameval.stats import (
    GaussianStats,
    RollingFrechet,
    frechet_distance,
    frechet_distance_from_features,
    frechet_result,
    frechet_result_from_features,
    frechet_result_from_stats,
)


def _cov(x: np.ndarray) -> np.ndarray:
    return np.cov(x, rowvar=False)


def test_identity_covariances_in_2048_d_give_exactly_2048() -> None:
    d = 2048
    r = frechet_result(np.zeros(d), np.eye(d), np.ones(d), np.eye(d))
    assert r.value == 2048.0
    assert not r.clamped and not r.low_n


def test_identical_inputs_give_zero() -> None:
    rng = np.random.default_rng(20)
    for n, d in [(5, 40), (60, 40), (300, 64)]:
        x = rng.normal(3.0, 2.0, size=(n, d))
        r = frechet_result_from_features(x, x)
        assert r.value == 0.0 and r.clamped
        assert abs(r.raw) < 1e-10 * np.trace(_cov(x))
        rc = frechet_result(x.mean(0), _cov(x), x.mean(0), _cov(x))
        assert rc.value == 0.0


def test_well_conditioned_matches_sqrtm_reference() -> None:
    rng = np.random.default_rng(21)
    for n1, n2, d in [(400, 300, 32), (200, 250, 64)]:
        mix = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)
        x = rng.normal(size=(n1, d)) @ mix
        y = rng.normal(0.2, 1.3, size=(n2, d))
        ref = frechet_sqrtm_ref(x.mean(0), _cov(x), y.mean(0), _cov(y))
        assert frechet_distance(x.mean(0), _cov(x), y.mean(0), _cov(y)) == pytest.approx(ref, rel=1e-6)
        r = frechet_result_from_features(x, y)
        assert r.value == pytest.approx(ref, rel=1e-6)
        assert not r.low_n and r.method == "covariance"


@pytest.mark.parametrize(("n1", "n2", "d"), [(4, 6, 12), (5, 5, 16), (3, 9, 10), (12, 8, 12)])
def test_singular_matches_high_precision_reference(n1: int, n2: int, d: int) -> None:
    # n <= d: both covariances singular. Reference: 50-digit mpmath (stats_reference.frechet_mp_ref).
    rng = np.random.default_rng(n1 * 100 + n2 * 10 + d)
    x = rng.normal(size=(n1, d)) * rng.uniform(0.1, 3.0, size=d) + 5.0
    y = rng.normal(size=(n2, d)) + 5.3
    ref = frechet_mp_ref(x, y)
    r = frechet_result_from_features(x, y)
    assert r.value == pytest.approx(ref, rel=1e-6)
    assert r.low_n and r.method == "features"
    rc = frechet_result(x.mean(0), _cov(x), y.mean(0), _cov(y))
    assert rc.value == pytest.approx(ref, rel=1e-6)
    assert isinstance(rc.value, float)


def test_feature_and_covariance_routes_agree_when_singular_at_scale() -> None:
    # d = 256 with 40 and 60 samples: the covariance route drops round-off eigenvalues before sqrt.
    rng = np.random.default_rng(22)
    d = 256
    x = np.abs(rng.normal(size=(40, d))) * 0.5
    y = np.abs(rng.normal(size=(60, d))) * 0.6 + 0.05
    a = frechet_distance_from_features(x, y)
    b = frechet_distance(x.mean(0), _cov(x), y.mean(0), _cov(y))
    assert a == pytest.approx(b, rel=1e-9)
    # Independent check of the feature route: its trace term vs the sum of sqrt(eigvals(S1 S2)) in float64
    # agrees only to ~1e-7 here (sqrt of round-off eigenvalues), so compare loosely to a different method.
    ev = np.linalg.eigvals(_cov(x) @ _cov(y))
    approx = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(_cov(x)) + np.trace(_cov(y))
    approx -= 2 * np.sqrt(np.clip(ev.real, 0, None)).sum()
    assert a == pytest.approx(approx, rel=1e-4)


def test_from_stats_matches_features() -> None:
    rng = np.random.default_rng(23)
    d = 20
    x, y = rng.normal(size=(50, d)), rng.normal(1.0, 1.0, size=(15, d))
    gx, gy = GaussianStats(d), GaussianStats(d)
    gx.update(x)
    gy.update(y)
    r = frechet_result_from_stats(gx, gy)
    assert r.value == pytest.approx(frechet_distance_from_features(x, y), rel=1e-9)
    assert r.low_n and (r.n1, r.n2) == (50, 15)


def test_rolling_frechet_equals_batch_on_window() -> None:
    rng = np.random.default_rng(24)
    d = 32
    f = RollingFrechet(d, period=3.0)
    xs, ys, ts = [], [], []
    for i in range(30):
        t = 0.5 * i
        x, y = rng.normal(size=d), rng.normal(0.3, 1.1, size=d)
        xs.append(x)
        ys.append(y)
        ts.append(t)
        f.update(x=x, y=y if i % 3 else None, t=t)
        inside = [j for j in range(i + 1) if ts[j] > t - 3.0]
        tx = np.array([xs[j] for j in inside])
        ty = np.array([ys[j] for j in inside if j % 3])
        if len(ty) < 2:
            assert f.get() is None and f.reason is not None
            continue
        r = f.result()
        assert r is not None and r.low_n
        assert r.value == pytest.approx(frechet_sqrtm_ref(tx.mean(0), _cov(tx), ty.mean(0), _cov(ty)), rel=1e-5)
        assert r.value == pytest.approx(frechet_distance_from_features(tx, ty), rel=1e-12)


@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_rolling_frechet_through_buffer_compaction(offset: float) -> None:
    # 300 clips at uneven rates on both sides: the buffers (capacity 64) compact and grow many times.
    rng = np.random.default_rng(26)
    d = 16
    f = RollingFrechet(d, size=40)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for i in range(300):
        if i % 2 == 0 or i > 200:
            xs.append(offset + rng.normal(size=d))
            f.update(x=xs[-1])
        ys.append(offset + rng.normal(0.5, 1.0, size=(2, d)) if i % 3 == 0 else rng.normal(offset, 2.0, size=(1, d)))
        f.update(y=ys[-1])
        tx, ty = np.array(xs[-40:]), np.concatenate(ys)[-40:]
        assert (f.n_x, f.n_y) == (len(tx), len(ty))
        if min(len(tx), len(ty)) < 2:
            continue
        r = f.result()
        assert r is not None
        ref = frechet_distance_from_features(tx, ty)
        # Double-centring the shifted cross-Gram loses ~eps·(offset/spread)² relative.
        assert r.value == pytest.approx(ref, rel=1e-9 if offset == 0 else 1e-6)
    np.testing.assert_allclose(f.features("x"), np.array(xs[-40:]), rtol=1e-12)


def test_rolling_frechet_many_clips_uses_covariance_route() -> None:
    rng = np.random.default_rng(27)
    d = 8
    f = RollingFrechet(d)
    x, y = rng.normal(size=(30, d)), rng.normal(1.0, 1.0, size=(25, d))
    f.update(x=x, y=y)
    r = f.result()
    assert r is not None and r.method == "covariance" and not r.low_n
    assert r.value == pytest.approx(frechet_sqrtm_ref(x.mean(0), _cov(x), y.mean(0), _cov(y)), rel=1e-9)


def test_errors() -> None:
    with pytest.raises(UsageError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(UsageError):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(InputError):
        frechet_distance(np.zeros(3), np.full((3, 3), np.nan), np.zeros(3), np.eye(3))
    with pytest.raises(InputError):
        frechet_distance_from_features(np.zeros((1, 4)), np.zeros((3, 4)))
    with pytest.raises(UsageError):
        frechet_distance_from_features(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(UsageError):
        RollingFrechet(4, period=1.0).update(x=np.zeros(4))


def test_negative_round_off_is_clamped_and_reported() -> None:
    # Equal covariances, means 1e-9 apart: the exact value 3e-18 is far below round-off of the traces.
    rng = np.random.default_rng(25)
    x = rng.normal(100.0, 1.0, size=(8, 3))
    s = _cov(x)
    r = frechet_result(x.mean(0), s, x.mean(0) + 1e-9, s)
    assert r.value == 0.0 and r.clamped
    assert abs(r.raw) < 1e-12
