"""Count/Mean/Var/Std/Rate against numpy after every update, in windows, and under property tests."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streameval.errors import InputError, UsageError
from streameval.stats import Count, Mean, Rate, Rolling, Std, TimeRolling, Var, json_result, json_safe

REL = 1e-9  # Welford vs numpy's two-pass/pairwise sums on O(100) values: agreement to ~1e-13 seen.

floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def test_every_update_matches_numpy_on_window_tail() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=300)
    window = 25
    mean, var0, var1, std1 = (Rolling(s, window) for s in (Mean(), Var(ddof=0), Var(ddof=1), Std(ddof=1)))
    for i, x in enumerate(data):
        for s in (mean, var0, var1, std1):
            s.update(x)
        tail = data[max(0, i + 1 - window) : i + 1]
        assert mean.get() == pytest.approx(tail.mean(), rel=REL)
        assert var0.get() == pytest.approx(tail.var(), rel=REL, abs=1e-12)
        if len(tail) >= 2:
            assert var1.get() == pytest.approx(tail.var(ddof=1), rel=REL)
            assert std1.get() == pytest.approx(tail.std(ddof=1), rel=REL)
        else:
            assert var1.get() is None and var1.reason == "fewer than 2 samples"
        assert mean.n == len(tail)


def test_large_offset_keeps_accuracy() -> None:
    # 10^6 values near 1e6 with unit variance: raw power sums would lose ~all digits of the variance.
    rng = np.random.default_rng(1)
    data = 1e6 + rng.normal(size=1_000_000)
    v = Var(ddof=1)
    for x in data.tolist():
        v.update(x)
    assert v.get() == pytest.approx(np.var(data, ddof=1), rel=1e-9)
    assert v.mean == pytest.approx(data.mean(), abs=1e-6)  # 1e-6 of the spread


def test_update_revert_cycles_do_not_drift() -> None:
    rng = np.random.default_rng(2)
    data = 1e6 + rng.normal(size=100_000)
    w = Rolling(Var(ddof=1), 50)
    for x in data.tolist():
        w.update(x)
    assert w.get() == pytest.approx(np.var(data[-50:], ddof=1), rel=1e-8)
    assert w.stat.mean == pytest.approx(data[-50:].mean(), abs=1e-6)  # type: ignore[attr-defined]


def test_window_that_becomes_constant_reports_zero_variance() -> None:
    w = Rolling(Var(ddof=1), 3)
    for x in [5.0, 7.3, 1e3, 5.0, 5.0, 5.0]:
        w.update(x)
    assert w.get() == 0.0


def test_rate_and_count() -> None:
    flags = [True, False, True, True, False, False, True]
    r, c = Rolling(Rate(), 4), Rolling(Count(), 4)
    for i, f in enumerate(flags):
        r.update(f)
        c.update(f)
        tail = flags[max(0, i - 3) : i + 1]
        assert r.get() == sum(tail) / len(tail)
        assert c.get() == len(tail)
    assert Rate().get() is None and Rate().reason == "no samples"


def test_empty_and_errors() -> None:
    m = Mean()
    assert m.get() is None and m.reason == "no samples"
    assert json_result(m) == {"value": None, "reason": "no samples"}
    with pytest.raises(InputError):
        m.update(math.nan)
    with pytest.raises(UsageError):
        m.revert(1.0)
    with pytest.raises(UsageError):
        Var(ddof=-1)
    with pytest.raises(UsageError):
        Mean().merge(Var())  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        Var(ddof=0).merge(Var(ddof=1))
    with pytest.raises(UsageError):
        Rolling(Mean(), 0)


def test_time_window_expires_by_stream_time() -> None:
    w = TimeRolling(Mean(), period=2.0)
    ts = [0.0, 0.5, 1.0, 1.9, 2.0, 3.5, 3.6]
    xs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    for i, (t, x) in enumerate(zip(ts, xs, strict=True)):
        w.update(x, t=t)
        inside = [v for tv, v in zip(ts[: i + 1], xs[: i + 1], strict=True) if tv > t - 2.0]
        assert w.get() == pytest.approx(np.mean(inside), rel=1e-12)
        assert w.n == len(inside)
    held = w.n
    assert w.expire(10.0) == held
    assert w.n == 0
    assert w.get() is None and w.t_first is None
    with pytest.raises(InputError):
        w.update(1.0, t=5.0)


def test_pickle_and_clone_are_independent() -> None:
    v = Var()
    for x in (1.0, 2.0, 4.0):
        v.update(x)
    c = v.clone()
    c.update(100.0)
    p = pickle.loads(pickle.dumps(v))
    assert v.get() == pytest.approx(np.var([1, 2, 4], ddof=1))
    assert p.get() == v.get()
    assert c.get() == pytest.approx(np.var([1, 2, 4, 100], ddof=1))


@settings(max_examples=60, deadline=None)
@given(st.lists(floats, min_size=1, max_size=30), floats)
def test_update_then_revert_is_identity(prefix: list[float], x: float) -> None:
    v = Var(ddof=0)
    for p in prefix:
        v.update(p)
    before = (v.n, v.mean, v.get())
    v.update(x)
    v.revert(x)
    scale = max(abs(p) for p in [*prefix, x])
    assert v.n == before[0]
    assert v.mean == pytest.approx(before[1], rel=1e-9, abs=1e-12 * scale)
    assert v.get() == pytest.approx(before[2], rel=1e-6, abs=1e-9 * scale**2)


@settings(max_examples=60, deadline=None)
@given(st.lists(floats, min_size=2, max_size=40), st.integers(min_value=0, max_value=40))
def test_merge_of_two_halves_equals_whole(data: list[float], cut: int) -> None:
    cut = min(cut, len(data))
    a, b = Var(ddof=1), Var(ddof=1)
    for x in data[:cut]:
        a.update(x)
    for x in data[cut:]:
        b.update(x)
    a.merge(b)
    scale = max(abs(x) for x in data)
    assert a.n == len(data)
    assert a.get() == pytest.approx(np.var(data, ddof=1), rel=1e-9, abs=1e-12 * scale**2)


@settings(max_examples=40, deadline=None)
@given(st.lists(floats, min_size=1, max_size=60), st.integers(min_value=1, max_value=10))
def test_window_of_n_equals_batch_on_last_n(data: list[float], size: int) -> None:
    w = Rolling(Var(ddof=0), size)
    for x in data:
        w.update(x)
    tail = np.array(data[-size:])
    scale = float(np.abs(data).max())
    assert w.get() == pytest.approx(tail.var(), rel=1e-6, abs=1e-9 * scale**2)


def test_json_safe_never_emits_nan() -> None:
    assert json_safe(float("nan")) == {"value": None, "reason": "undefined"}
    assert json_safe(2.5, "ignored") == {"value": 2.5, "reason": None}
    out = json_safe(np.array([1.0, np.nan, np.inf]), [None, "constant series", None])
    assert out == {"value": [1.0, None, None], "reason": [None, "constant series", "undefined"]}


def test_window_refuses_merge_and_revert() -> None:
    w = Rolling(Mean(), 3)
    with pytest.raises(AttributeError):
        w.merge(Mean())
    with pytest.raises(AttributeError):
        w.revert(1.0)
