"""Metric families and the small windowed-value helpers they are built from.

A metric family consumes observations of some analysers, keeps a rolling window (in stream time) and a
cumulative (whole-stream) copy of its statistics, and renders both as flat JSON-ready mappings. Flat keys make
alert rules simple (``pixel.psnr_mean``); undefined values are ``None`` and their reason is listed under
``null_reasons``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from streameval.analysis.base import Observation
from streameval.stats import Rate, Var, Windowed

Values = dict[str, Any]


def scalar_series(period: float) -> Windowed[float | None]:
    """Mean and population std of one scalar series, over the window and over the whole stream."""
    return Windowed(Var(ddof=0), period=period)


def rate_series(period: float) -> Windowed[float | None]:
    """Share of true observations, over the window and over the whole stream."""
    return Windowed(Rate(), period=period)


def render_scalar(stat: Any, prefix: str, out: Values, reasons: dict[str, str]) -> None:
    """``<prefix>_mean``, ``<prefix>_std`` (population) and ``<prefix>_n`` of a ``Var(ddof=0)``."""
    mean = stat.mean
    var = stat.get()
    out[f"{prefix}_mean"] = mean
    out[f"{prefix}_std"] = None if var is None else var**0.5
    out[f"{prefix}_n"] = stat.n
    if mean is None:
        reasons[f"{prefix}_mean"] = reasons[f"{prefix}_std"] = "no observations"


def render_rate(stat: Any, key: str, out: Values, reasons: dict[str, str]) -> None:
    """``<key>`` (a share in [0, 1]) and ``<key>_n`` of a ``Rate``."""
    out[key] = stat.get()
    out[f"{key}_n"] = stat.n
    if out[key] is None:
        reasons[key] = "no observations"


class Metric(ABC):
    """A metric family: one top-level key of a record."""

    #: the record key, e.g. "pixel", "deid"
    family: str
    #: names of the analysers whose observations this family consumes
    consumes: frozenset[str]

    @abstractmethod
    def update(self, obs: Observation) -> None: ...

    @abstractmethod
    def expire(self, now: float) -> None:
        """Drop window observations at or before ``now - window``."""

    @abstractmethod
    def window_values(self) -> Values: ...

    @abstractmethod
    def total_values(self) -> Values: ...


def with_reasons(values: Values, reasons: dict[str, str]) -> Values:
    if reasons:
        values["null_reasons"] = dict(sorted(reasons.items()))
    return values


def update_all(metrics: Iterable[Metric], obs: Observation) -> None:
    for metric in metrics:
        if obs.analyser in metric.consumes:
            metric.update(obs)
