"""Histogram against numpy.histogram, and its update/revert/merge algebra."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streameval.errors import UsageError
from streameval.stats.histogram import Histogram, quantile_bound, uniform_edges


def test_counts_match_numpy_with_values_outside_and_on_edges() -> None:
    rng = np.random.default_rng(3)
    edges = uniform_edges(0.0, 2.0, 40)
    values = np.concatenate([rng.normal(0.7, 0.3, 500), [-0.1, 0.0, 0.05, 1.95, 2.0, 3.5]])
    h = Histogram(edges)
    for v in values:
        h.update(float(v))
    got = h.get()
    inside = values[(values >= 0.0) & (values < 2.0)]
    want, _ = np.histogram(inside, bins=np.array(edges))
    assert list(got.counts) == want.tolist()
    assert got.under == int((values < 0).sum()) and got.over == int((values >= 2.0).sum())
    assert got.n == len(values)
    assert got.edges[1] == 0.05 and len(got.edges) == 41
    # a value on an inner edge goes to the bin that starts there (numpy's half-open bins)
    one = Histogram(edges)
    one.update(0.05)
    assert one.get().counts[1] == 1


def test_revert_and_merge() -> None:
    edges = uniform_edges(0.0, 1.0, 4)
    a, b, both = Histogram(edges), Histogram(edges), Histogram(edges)
    for v in (0.1, 0.3, 0.3, 1.5):
        a.update(v)
        both.update(v)
    for v in (0.9, -2.0):
        b.update(v)
        both.update(v)
    a.merge(b)
    assert a.get() == both.get()
    a.revert(0.3)
    a.revert(-2.0)
    assert a.get().counts == (1, 1, 0, 1) and a.get().under == 0 and a.get().over == 1
    with pytest.raises(UsageError, match="never added"):
        a.revert(0.6)
    assert a.get().counts == (1, 1, 0, 1)  # a failed revert changes nothing
    with pytest.raises(UsageError):
        a.merge(Histogram(uniform_edges(0.0, 1.0, 5)))
    with pytest.raises(UsageError):
        a.update(float("nan"))
    with pytest.raises(UsageError):
        Histogram([0.0, 0.0])


@given(
    st.lists(st.floats(-1.0, 12.0, allow_nan=False), min_size=1, max_size=300),
    st.sampled_from([0.5, 0.9, 0.99, 1.0]),
)
def test_quantile_bound_is_the_bin_edge_above_numpys_order_statistic(values: list[float], q: float) -> None:
    edges = uniform_edges(0.0, 10.0, 1000)
    h = Histogram(edges)
    for x in values:
        h.update(x)
    # numpy's "inverted_cdf" quantile is the ceil(q n)-th smallest value, the order statistic the bound covers
    exact = float(np.quantile(np.asarray(values), q, method="inverted_cdf"))
    bound = quantile_bound(h.get(), q)
    assert bound is not None
    if exact < 0.0:
        assert bound == 0.0
    elif exact >= 10.0:
        assert bound == math.inf
    else:
        assert exact < bound <= exact + 0.01 + 1e-9  # within one 10 ms bin, never below


def test_quantile_bound_by_hand() -> None:
    h = Histogram([0.0, 1.0, 2.0, 3.0])
    assert quantile_bound(h.get(), 0.99) is None
    for x in (0.5, 1.5, 1.6, 2.5):
        h.update(x)
    assert quantile_bound(h.get(), 0.25) == 1.0  # 1st of 4 values: 0.5 in [0, 1)
    assert quantile_bound(h.get(), 0.5) == 2.0  # 2nd: 1.5
    assert quantile_bound(h.get(), 0.99) == 3.0  # 4th: 2.5
    with pytest.raises(UsageError):
        quantile_bound(h.get(), 0.0)
