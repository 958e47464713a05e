"""Pearson/RMSE/CCC (scalar and 17-channel) against scipy/numpy on the window tail after every update."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stats_reference import ccc_ref, pearson_ref, rmse_ref

from streameval.errors import InputError, UsageError
from streameval.stats import (
    CCC,
    RMSE,
    PairedMoments,
    PearsonCorr,
    Rolling,
    TimeRolling,
    VecCCC,
    VecMean,
    VecPearson,
    VecRMSE,
    VecVar,
    Windowed,
    json_result,
)

REL = 1e-9  # one-pass moments vs scipy/numpy two-pass on windows of O(10-100) values (~1e-13 seen).


def _au_like(rng: np.random.Generator, n: int, k: int = 17) -> tuple[np.ndarray, np.ndarray]:
    x = np.clip(rng.gamma(1.5, 0.8, size=(n, k)), 0, 5)
    y = np.clip(0.7 * x + rng.normal(0, 0.4, size=(n, k)) + 0.2, 0, 5)
    return x, y


def test_scalar_every_update_matches_reference() -> None:
    rng = np.random.default_rng(3)
    x, y = _au_like(rng, 200, 1)
    x, y = x[:, 0], y[:, 0]
    window = 30
    p, r, c = Rolling(PearsonCorr(), window), Rolling(RMSE(), window), Rolling(CCC(), window)
    for i in range(len(x)):
        for s in (p, r, c):
            s.update(x[i], y[i])
        tx, ty = x[max(0, i + 1 - window) : i + 1], y[max(0, i + 1 - window) : i + 1]
        assert r.get() == pytest.approx(rmse_ref(tx, ty), rel=REL)
        if len(tx) < 2:
            assert p.get() is None and p.reason == "fewer than 2 samples"
            assert c.get() is None
            continue
        assert p.get() == pytest.approx(pearson_ref(tx, ty), rel=REL, abs=1e-12)
        assert c.get() == pytest.approx(ccc_ref(tx, ty), rel=REL, abs=1e-12)


def test_vector_every_update_matches_reference() -> None:
    rng = np.random.default_rng(4)
    x, y = _au_like(rng, 150)
    window = 25
    pm = Rolling(PairedMoments(17), window)
    vp, vr, vc = Rolling(VecPearson(17), window), Rolling(VecRMSE(17), window), Rolling(VecCCC(17), window)
    vm, vv = Rolling(VecMean(17), window), Rolling(VecVar(17, ddof=1), window)
    for i in range(len(x)):
        for s in (pm, vp, vr, vc):
            s.update(x[i], y[i])
        vm.update(x[i])
        vv.update(x[i])
        tx, ty = x[max(0, i + 1 - window) : i + 1], y[max(0, i + 1 - window) : i + 1]
        summary = pm.get()
        np.testing.assert_allclose(summary.mean_x, tx.mean(axis=0), rtol=REL)
        np.testing.assert_allclose(vm.get(), tx.mean(axis=0), rtol=REL)
        np.testing.assert_allclose(summary.rmse.values, np.sqrt(((tx - ty) ** 2).mean(axis=0)), rtol=REL)
        np.testing.assert_allclose(vr.get(), summary.rmse.values, rtol=0, atol=0)
        if len(tx) < 2:
            assert np.isnan(vp.get()).all() and vp.reasons == ["fewer than 2 samples"] * 17
            continue
        ref_p = np.array([pearson_ref(tx[:, j], ty[:, j]) for j in range(17)])
        ref_c = np.array([ccc_ref(tx[:, j], ty[:, j]) for j in range(17)])
        np.testing.assert_allclose(vp.get(), ref_p, rtol=REL, atol=1e-12)
        np.testing.assert_allclose(summary.pearson.values, ref_p, rtol=REL, atol=1e-12)
        np.testing.assert_allclose(vc.get(), ref_c, rtol=REL, atol=1e-12)
        np.testing.assert_allclose(vv.get(), tx.var(axis=0, ddof=1), rtol=REL, atol=1e-14)


def test_constant_series_is_none_with_reason() -> None:
    p, c = PearsonCorr(), CCC()
    for v in (1.0, 2.0, 3.0):
        p.update(2.0, v)
        c.update(2.0, 2.0)
    assert p.get() is None and p.reason == "constant series (x)"
    assert c.get() is None and c.reason == "both series constant and equal"
    assert json.dumps(json_result(p)) == '{"value": null, "reason": "constant series (x)"}'
    # Both constant, different levels: CCC is defined (no concordance at all).
    c2 = CCC()
    for _ in range(3):
        c2.update(1.0, 2.0)
    assert c2.get() == 0.0


def test_channel_that_becomes_constant_in_window() -> None:
    # Channel 0 varies then goes flat: after the varying values expire it must read "constant", not a
    # correlation computed from round-off residues.
    rng = np.random.default_rng(5)
    w = Rolling(VecPearson(2), 10)
    for i in range(40):
        a = 1.5 if i >= 20 else rng.uniform(0, 5)
        w.update([a, rng.uniform(0, 5)], [rng.uniform(0, 5), rng.uniform(0, 5)])
    r = w.get()
    assert np.isnan(r[0]) and w.reasons[0] == "constant series (x)"
    assert np.isfinite(r[1]) and w.reasons[1] is None
    out = json_result(w)
    assert out["value"][0] is None and out["reason"] == ["constant series (x)", None]  # type: ignore[index]
    json.dumps(out, allow_nan=False)


def test_time_window_and_cumulative() -> None:
    rng = np.random.default_rng(6)
    x, y = _au_like(rng, 60)
    ts = np.cumsum(rng.uniform(0.05, 0.3, size=60))
    w = Windowed(PairedMoments(17), period=2.0)
    for i in range(60):
        w.update(x[i], y[i], t=ts[i])
        inside = ts[: i + 1] > ts[i] - 2.0
        if inside.sum() >= 2:
            ref = [pearson_ref(x[: i + 1][inside, j], y[: i + 1][inside, j]) for j in range(17)]
            np.testing.assert_allclose(w.window.get().pearson.values, ref, rtol=REL, atol=1e-12)
        np.testing.assert_allclose(w.total.get().rmse.values, np.sqrt(((x[: i + 1] - y[: i + 1]) ** 2).mean(0)))
    assert isinstance(w.window, TimeRolling)


def test_window_copies_caller_buffers() -> None:
    buf_x, buf_y = np.zeros(3), np.zeros(3)
    w = Rolling(PairedMoments(3), 2)
    seen = []
    for i in range(5):
        buf_x[:] = [i, 2 * i, i * i]
        buf_y[:] = [1, i, -i]
        seen.append((buf_x.copy(), buf_y.copy()))
        w.update(buf_x, buf_y)
    tx = np.array([s[0] for s in seen[-2:]])
    np.testing.assert_allclose(w.get().mean_x, tx.mean(0), rtol=1e-12)


def test_vector_errors_and_pickle() -> None:
    pm = PairedMoments(17)
    with pytest.raises(UsageError):
        pm.update(np.zeros(16), np.zeros(17))
    with pytest.raises(InputError):
        pm.update(np.full(17, np.nan), np.zeros(17))
    with pytest.raises(UsageError):
        pm.merge(PairedMoments(3))
    rng = np.random.default_rng(7)
    x, y = _au_like(rng, 10)
    w = Rolling(PairedMoments(17), 5)
    for i in range(10):
        w.update(x[i], y[i])
    w2 = pickle.loads(pickle.dumps(w))
    w2.update(x[0], y[0])
    w.update(x[0], y[0])
    np.testing.assert_array_equal(w2.get().ccc.values, w.get().ccc.values)


pairs = st.tuples(
    st.floats(min_value=-100, max_value=100, allow_nan=False), st.floats(min_value=-100, max_value=100, allow_nan=False)
)


@settings(max_examples=60, deadline=None)
@given(st.lists(pairs, min_size=3, max_size=30), pairs)
def test_paired_update_then_revert_is_identity(prefix: list[tuple[float, float]], obs: tuple[float, float]) -> None:
    s = PearsonCorr()
    for a, b in prefix:
        s.update(a, b)
    before = s.state
    s.update(*obs)
    s.revert(*obs)
    after = s.state
    scale = max(max(abs(a), abs(b)) for a, b in [*prefix, obs]) + 1.0
    assert after.n == before.n
    for f in ("mx", "my"):
        assert getattr(after, f) == pytest.approx(getattr(before, f), abs=1e-10 * scale)
    for f in ("sxx", "syy", "sxy"):
        assert getattr(after, f) == pytest.approx(getattr(before, f), abs=1e-8 * scale**2)
    assert after.msd == pytest.approx(before.msd, abs=1e-8 * scale**2)


@settings(max_examples=60, deadline=None)
@given(st.lists(pairs, min_size=2, max_size=40), st.integers(min_value=0, max_value=40))
def test_paired_merge_of_halves_equals_whole(data: list[tuple[float, float]], cut: int) -> None:
    cut = min(cut, len(data))
    a, b, whole = PairedMoments(1), PairedMoments(1), PairedMoments(1)
    for i, (u, v) in enumerate(data):
        (a if i < cut else b).update([u], [v])
        whole.update([u], [v])
    a.merge(b)
    scale = max(max(abs(u), abs(v)) for u, v in data) + 1.0
    sa, sw = a.state, whole.state
    assert sa.n == sw.n
    np.testing.assert_allclose([sa.mx, sa.my], [sw.mx, sw.my], atol=1e-10 * scale)
    np.testing.assert_allclose([sa.sxx, sa.syy, sa.sxy], [sw.sxx, sw.syy, sw.sxy], atol=1e-8 * scale**2)
    np.testing.assert_allclose(sa.msd, sw.msd, atol=1e-8 * scale**2)


@settings(max_examples=40, deadline=None)
@given(st.lists(pairs, min_size=1, max_size=50), st.integers(min_value=1, max_value=12))
def test_paired_window_equals_batch(data: list[tuple[float, float]], size: int) -> None:
    w = Rolling(RMSE(), size)
    for u, v in data:
        w.update(u, v)
    tail = np.array(data[-size:])
    # Reverting leaves round-off of the size of the values that passed through the window, and the square root
    # magnifies it (mean square 1e-12 -> RMSE 1e-6): the bound scales with the whole history, not the tail.
    scale = float(np.abs(np.array(data)).max()) + 1.0
    assert w.get() == pytest.approx(rmse_ref(tail[:, 0], tail[:, 1]), rel=1e-7, abs=1e-6 * scale)
