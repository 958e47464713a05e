"""Streaming statistics: O(1) update/revert/merge statistics, rolling windows, Gaussian feature statistics
and a singular-safe Fréchet distance. See docs/stats.md."""

from __future__ import annotations

from streameval.stats.base import Statistic
from streameval.stats.bivariate import CCC, RMSE, PearsonCorr
from streameval.stats.frechet import (
    FrechetResult,
    frechet_distance,
    frechet_distance_from_features,
    frechet_result,
    frechet_result_from_features,
    frechet_result_from_stats,
)
from streameval.stats.gaussian import GaussianStats
from streameval.stats.results import json_float, json_result, json_safe
from streameval.stats.rolling import Rolling, TimeRolling, Windowed
from streameval.stats.rolling_frechet import RollingFrechet
from streameval.stats.univariate import Count, Mean, Rate, Std, Var
from streameval.stats.vector import (
    PairedMoments,
    PairedSummary,
    VecCCC,
    VecMean,
    VecPearson,
    VecResult,
    VecRMSE,
    VecVar,
)

__all__ = [
    "CCC",
    "RMSE",
    "Count",
    "FrechetResult",
    "GaussianStats",
    "Mean",
    "PairedMoments",
    "PairedSummary",
    "PearsonCorr",
    "Rate",
    "Rolling",
    "RollingFrechet",
    "Statistic",
    "Std",
    "TimeRolling",
    "Var",
    "VecCCC",
    "VecMean",
    "VecPearson",
    "VecRMSE",
    "VecResult",
    "VecVar",
    "Windowed",
    "frechet_distance",
    "frechet_distance_from_features",
    "frechet_result",
    "frechet_result_from_features",
    "frechet_result_from_stats",
    "json_float",
    "json_result",
    "json_safe",
]
