"""A pair's mergeable whole-stream statistics, kept next to its report as ``state.npz``.

The report holds finished values (a Pearson correlation, a Fréchet distance), which cannot be pooled over
videos. This file keeps what they were computed from, so the batch can pool exactly over all frames or clips:

* ``deid.<series>.{n,mean,m2}``: moments of each identity distance series (primary recogniser), and
  ``deid.{leak,swap}.{n,k}``: verified-as-A / verified-as-B counts;
* ``expression.{deid,source}.<field>``: the 17-AU paired moments (:class:`~streameval.stats.moments.PairState`)
  of the de-identified stream against the source and of the source against itself (the paper's source row);
* ``reality.<feature>.<side>.{n,mean,scatter_triu}``: count, mean and the upper triangle of the scatter matrix
  Σ(x-μ)(x-μ)ᵀ of the I3D clip features (``pool`` 1024-d, ``logits`` 400-d). Its size is fixed by the feature
  dimension (about 10 MB a pair as float64), not by the video's length.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streameval.metrics.base import Metric
from streameval.metrics.deid import DISTANCES, DeidMetric
from streameval.metrics.expression import ExpressionMetric
from streameval.metrics.reality import FEATURES, RealityMetric
from streameval.stats import GaussianStats
from streameval.stats.moments import MomentState, PairState, moments_merge

Vec = NDArray[np.float64]
Arrays = dict[str, NDArray[Any]]
SIDES = ("source", "deid")
PAIR_FIELDS = tuple(f.name for f in fields(PairState))


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations of a scalar series (Chan et al. merge)."""

    n: int
    mean: float
    m2: float

    def merge(self, other: Moments) -> Moments:
        # the statistics' own Chan merge; the rounding bound ``acc`` is not stored per pair, so it stays 0 here
        merged = moments_merge(
            MomentState(self.n, self.mean, self.m2, 0.0), MomentState(other.n, other.mean, other.m2, 0.0)
        )
        return Moments(merged.n, float(merged.mean), float(merged.m2))

    @property
    def mean_or_none(self) -> float | None:
        return self.mean if self.n else None

    @property
    def std(self) -> float | None:
        """Population std (ddof 0), as the paper's ``A_std``."""
        return float(np.sqrt(max(self.m2, 0.0) / self.n)) if self.n else None


@dataclass(frozen=True)
class Gaussian:
    """Count, mean and scatter matrix of feature vectors; merging is exact (Chan et al. in d dimensions)."""

    n: int
    mean: Vec
    scatter: Vec

    def merge(self, other: Gaussian) -> Gaussian:
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        scatter = self.scatter + other.scatter + np.outer(delta, delta) * (self.n * other.n / n)
        return Gaussian(n, self.mean + delta * (other.n / n), scatter)

    def cov(self) -> Vec | None:
        return None if self.n < 2 else self.scatter / (self.n - 1)

    @staticmethod
    def from_stats(stats: GaussianStats) -> Gaussian:
        mean, cov = stats.mean, stats.cov()
        dim = stats.dim
        return Gaussian(
            stats.n,
            np.zeros(dim) if mean is None else mean,
            np.zeros((dim, dim)) if cov is None else cov * (stats.n - 1),
        )


def extract(metrics: list[Metric]) -> Arrays:
    """The mergeable statistics of a finished run's metric families (those that ran)."""
    out: Arrays = {}
    for metric in metrics:
        if isinstance(metric, DeidMetric):
            per = metric.per[metric.primary]
            for name in DISTANCES:
                stat: Any = per.dist[name].total
                var = stat.get()
                out[f"deid.{name}.n"] = np.asarray(stat.n)
                out[f"deid.{name}.mean"] = np.asarray(stat.mean if stat.mean is not None else 0.0)
                out[f"deid.{name}.m2"] = np.asarray(0.0 if var is None else var * stat.n)
            for name, rate in (("leak", per.leak.total), ("swap", per.swap.total)):
                share = rate.get()
                out[f"deid.{name}.n"] = np.asarray(rate.n)
                # Rate keeps k/n; n < 2**52 makes the round trip to the integer exact.
                out[f"deid.{name}.k"] = np.asarray(0 if share is None else round(share * rate.n))
            out["deid.threshold"] = np.asarray(per.info.threshold)
        elif isinstance(metric, ExpressionMetric):
            for side, stat in (("deid", metric.moments.total), ("source", metric.self_moments)):
                state = stat.state
                for name in PAIR_FIELDS:
                    out[f"expression.{side}.{name}"] = np.asarray(getattr(state, name))
        elif isinstance(metric, RealityMetric):
            for feature in FEATURES:
                for side, stats in zip(SIDES, metric.total[feature], strict=True):
                    g = Gaussian.from_stats(stats)
                    prefix = f"reality.{feature}.{side}"
                    out[f"{prefix}.n"], out[f"{prefix}.mean"] = np.asarray(g.n), g.mean
                    # The scatter matrix is exactly symmetric: its upper triangle halves the file, losslessly.
                    out[f"{prefix}.scatter_triu"] = g.scatter[np.triu_indices(g.scatter.shape[0])]
    return out


def _symmetric(triu: NDArray[Any]) -> Vec:
    """The d×d symmetric matrix whose upper triangle (row-major, as np.triu_indices) is ``triu``."""
    d = math.isqrt(8 * triu.size + 1) // 2  # triu.size = d(d+1)/2
    out = np.zeros((d, d))
    out[np.triu_indices(d)] = triu
    lower = np.tril_indices(d, -1)
    out[lower] = out.T[lower]
    return out


def to_bytes(arrays: Arrays) -> bytes:
    buffer = io.BytesIO()
    save: Any = np.savez  # (its stub types **kwds as the allow_pickle flag)
    save(buffer, **arrays)  # uncompressed: float64 scatter matrices barely compress
    return buffer.getvalue()


def from_bytes(data: bytes) -> Arrays:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@dataclass
class PairStats:
    """One pair's statistics, typed; a family that did not run is None."""

    distances: dict[str, Moments] | None
    rates: dict[str, tuple[int, int]] | None  # name -> (k, n)
    expression: dict[str, PairState[Vec]] | None  # side -> paired moments
    reality: dict[str, dict[str, Gaussian]] | None  # feature -> side -> statistics

    @staticmethod
    def parse(arrays: Arrays) -> PairStats:
        distances = rates = expression = reality = None
        if "deid.leak.n" in arrays:
            distances = {
                name: Moments(
                    int(arrays[f"deid.{name}.n"]), float(arrays[f"deid.{name}.mean"]), float(arrays[f"deid.{name}.m2"])
                )
                for name in DISTANCES
            }
            rates = {name: (int(arrays[f"deid.{name}.k"]), int(arrays[f"deid.{name}.n"])) for name in ("leak", "swap")}
        if "expression.deid.n" in arrays:
            expression = {}
            for side in ("deid", "source"):
                values: dict[str, Any] = {f: arrays[f"expression.{side}.{f}"] for f in PAIR_FIELDS}
                values["n"] = int(values["n"])
                expression[side] = PairState(**values)
        if "reality.pool.source.n" in arrays:
            reality = {
                feature: {
                    side: Gaussian(
                        int(arrays[f"reality.{feature}.{side}.n"]),
                        arrays[f"reality.{feature}.{side}.mean"],
                        _symmetric(arrays[f"reality.{feature}.{side}.scatter_triu"]),
                    )
                    for side in SIDES
                }
                for feature in FEATURES
            }
        return PairStats(distances, rates, expression, reality)
