"""GaussianStats against np.mean/np.cov: batches, revert, merge across different shifts, large offsets."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from streameval.errors import InputError, UsageError
from streameval.stats import GaussianStats


def _a(v: np.ndarray | None) -> np.ndarray:
    assert v is not None
    return v


def test_batches_match_numpy_after_every_update_and_revert() -> None:
    rng = np.random.default_rng(10)
    d = 24
    batches = [rng.normal(2.0, 1.5, size=(int(m), d)) for m in rng.integers(1, 6, size=12)]
    g = GaussianStats(d)
    held: list[np.ndarray] = []
    for i, b in enumerate(batches):
        g.update(b)
        held.append(b)
        if i >= 4:  # a window of 4 batches
            g.revert(held.pop(0))
        data = np.concatenate(held)
        assert g.n == len(data)
        np.testing.assert_allclose(_a(g.mean), data.mean(axis=0), rtol=1e-12, atol=1e-13)
        if len(data) >= 2:
            np.testing.assert_allclose(_a(g.cov()), np.cov(data, rowvar=False), rtol=1e-10, atol=1e-12)


def test_large_common_offset_keeps_covariance_accuracy() -> None:
    # Features with offset 1e4 and unit spread: raw Σxxᵀ would cancel ~8 digits; shifted sums do not.
    rng = np.random.default_rng(11)
    d = 16
    x = 1e4 + rng.normal(size=(2000, d))
    g = GaussianStats(d)
    for chunk in np.array_split(x[:1000], 7):
        g.update(chunk)
    g.update(x[1000:])
    g.revert(x[:500])
    np.testing.assert_allclose(_a(g.cov()), np.cov(x[500:], rowvar=False), rtol=1e-9, atol=1e-11)


def test_merge_with_different_shifts_equals_whole() -> None:
    rng = np.random.default_rng(12)
    d = 10
    a_data = rng.normal(-3.0, 1.0, size=(30, d))
    b_data = rng.normal(5.0, 2.0, size=(45, d))
    a, b = GaussianStats(d), GaussianStats(d)
    a.update(a_data)
    b.update(b_data)
    a.merge(b)
    whole = np.concatenate([a_data, b_data])
    assert a.n == 75
    np.testing.assert_allclose(_a(a.mean), whole.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(_a(a.cov()), np.cov(whole, rowvar=False), rtol=1e-10, atol=1e-12)
    empty = GaussianStats(d)
    empty.merge(a)
    np.testing.assert_allclose(_a(empty.cov()), _a(a.cov()), rtol=1e-14)
    assert pickle.loads(pickle.dumps(a)).n == 75


def test_undefined_and_errors() -> None:
    g = GaussianStats(4)
    assert g.mean is None and g.cov() is None and g.get() is None and g.reason == "fewer than 2 samples"
    g.update(np.ones(4))
    assert g.cov() is None
    with pytest.raises(UsageError):
        g.update(np.ones((2, 5)))
    with pytest.raises(InputError):
        g.update(np.array([1.0, np.inf, 0.0, 0.0]))
    with pytest.raises(UsageError):
        g.revert(np.ones((3, 4)))
    with pytest.raises(UsageError):
        g.merge(GaussianStats(5))
