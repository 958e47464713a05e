"""Photo-reality: Fréchet distance between the I3D clip features of the source and the de-identified stream.

``fid`` uses the 1024-d ``pool`` feature (the paper's choice), ``fvd_logits`` the 400-d logits (FVD's). The
window value comes from a :class:`~streameval.stats.RollingFrechet` over the clips that ended in the window and
is flagged ``*_low_n`` when a side has no more clips than feature dimensions (always the case for windows of
seconds: compare such values only with each other). The whole-stream value is computed from two
:class:`~streameval.stats.GaussianStats` (memory O(d²), independent of the stream length).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streameval.analysis.base import Observation
from streameval.errors import InputError
from streameval.metrics.base import Metric, Values, with_reasons
from streameval.stats import FrechetResult, GaussianStats, RollingFrechet, frechet_result_from_stats

FEATURES = {"pool": ("fid", 1024), "logits": ("fvd_logits", 400)}


def _render(
    key: str, result: FrechetResult | None, reason: str | None, n: tuple[int, int], out: Values, reasons: dict[str, str]
) -> None:
    out[key] = None if result is None else result.value
    out[f"{key}_low_n"] = None if result is None else result.low_n
    out[f"{key}_clips_source"], out[f"{key}_clips_deid"] = n
    if result is None:
        reasons[key] = reason or "undefined"


class RealityMetric(Metric):
    family = "reality"
    consumes = frozenset({"reality"})

    def __init__(self, window: float) -> None:
        self.window = {f: RollingFrechet(dim, period=window) for f, (_, dim) in FEATURES.items()}
        self.total = {f: (GaussianStats(dim), GaussianStats(dim)) for f, (_, dim) in FEATURES.items()}
        self.clips = 0
        # whole-stream results by feature, with the clip count they were computed at: the report asks for the
        # same d x d Fréchet distance more than once (totals, paper block), each a few hundred ms at d = 1024
        self._total_cache: dict[str, tuple[int, tuple[FrechetResult | None, str | None]]] = {}

    def update(self, obs: Observation) -> None:
        if "source_pool" not in obs.values:
            for rolling in self.window.values():
                rolling.expire(obs.t)
            return
        self.clips += 1
        for feature in FEATURES:
            src = np.asarray(obs.values[f"source_{feature}"], np.float64)
            deid = np.asarray(obs.values[f"deid_{feature}"], np.float64)
            self.window[feature].update(x=src, y=deid, t=obs.t)
            g_src, g_deid = self.total[feature]
            g_src.update(src[None])
            g_deid.update(deid[None])

    def expire(self, now: float) -> None:
        for rolling in self.window.values():
            rolling.expire(now)

    def window_values(self) -> Values:
        out: Values = {}
        reasons: dict[str, str] = {}
        for feature, (key, _) in FEATURES.items():
            rolling = self.window[feature]
            _render(key, rolling.result(), rolling.reason, (rolling.n_x, rolling.n_y), out, reasons)
        return with_reasons(out, reasons)

    def total_result(self, feature: str, *, reference: bool = False) -> tuple[FrechetResult | None, str | None]:
        """Whole-stream Fréchet distance (``reference``: the source against itself, the paper's source row)."""
        g_src, g_deid = self.total[feature]
        if reference:  # a distribution against itself: 0 by definition wherever it is defined
            if g_src.n < 2:
                return None, f"the Fréchet distance needs at least 2 samples per side, got {g_src.n}"
            n, dim = g_src.n, g_src.dim
            return FrechetResult(0.0, n <= dim, False, 0.0, dim, n, n, "covariance"), None
        cached = self._total_cache.get(feature)
        if cached is not None and cached[0] == self.clips:
            return cached[1]
        try:
            result: tuple[FrechetResult | None, str | None] = (frechet_result_from_stats(g_src, g_deid), None)
        except InputError as exc:
            result = None, str(exc)
        self._total_cache[feature] = (self.clips, result)
        return result

    def total_values(self) -> Values:
        out: Values = {"clips": self.clips}
        reasons: dict[str, str] = {}
        for feature, (key, _) in FEATURES.items():
            g_src, g_deid = self.total[feature]
            result, reason = self.total_result(feature)
            _render(key, result, reason, (g_src.n, g_deid.n), out, reasons)
        return with_reasons(out, reasons)

    def paper(self) -> dict[str, dict[str, Any]]:
        blocks: dict[str, dict[str, Any]] = {}
        for side in ("source", "deid"):
            result, _ = self.total_result("pool", reference=side == "source")
            blocks[side] = {"FID": None if result is None else result.value}
        return blocks
