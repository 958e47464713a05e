"""Expression preservation: per-AU agreement (Pearson, RMSE, Lin's CCC) of the two streams' AU series.

Only pairs where both frames have a face enter the statistics. Flat keys per AU (``AU12_pcc``, ``AU12_rmse``,
``AU12_ccc``) and their means over the AUs where they are defined (``pcc_mean``, ``rmse_mean``, ``ccc_mean``);
an undefined value (too few pairs, a constant series) is None with its reason under ``null_reasons``. Totals
name the ``au_source`` ('mesh', 'openface' or 'pyfaceau'); with OpenFace or pyfaceau, ``openface_unmatched``
counts the analysed frames per stream that had no CSV row (they are also among ``pairs_without_face``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from streameval.analysis.au import AU_NAMES
from streameval.analysis.base import Observation
from streameval.metrics.base import Metric, Values, with_reasons
from streameval.stats import PairedMoments, PairedSummary, Windowed

AU_KEYS = tuple(name.removesuffix("_r") for name in AU_NAMES)  # "AU01" ... "AU45", as in the paper


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def render_summary(summary: PairedSummary, out: Values, reasons: dict[str, str]) -> None:
    """Per-AU and mean PCC / RMSE / CCC into ``out``."""
    out["n"] = summary.n
    for stat, result in (("pcc", summary.pearson), ("rmse", summary.rmse), ("ccc", summary.ccc)):
        defined = []
        for key, value, reason in zip(AU_KEYS, result.values, result.reasons, strict=True):
            out[f"{key}_{stat}"] = _num(value)
            if out[f"{key}_{stat}"] is None:
                reasons[f"{key}_{stat}"] = reason or "undefined"
            else:
                defined.append(float(value))
        out[f"{stat}_mean"] = float(np.mean(defined)) if defined else None
        out[f"{stat}_aus"] = len(defined)
        if not defined:
            reasons[f"{stat}_mean"] = "no AU defined" if summary.n else "no pairs with a face on both streams"


class ExpressionMetric(Metric):
    family = "expression"
    consumes = frozenset({"expression"})

    def __init__(self, window: float, *, au_source: str = "mesh") -> None:
        self.moments: Windowed[PairedSummary] = Windowed(PairedMoments(len(AU_KEYS)), period=window)
        self.self_moments = PairedMoments(len(AU_KEYS))  # source vs itself: the paper's reference row
        self.skipped = {"source": 0, "deid": 0}  # analysed pairs without a face on that side
        self.au_source = au_source
        # OpenFace only: frames the CSV has no row for (also in `skipped`); many mean a CSV of another video
        self.unmatched = {"source": 0, "deid": 0}

    def update(self, obs: Observation) -> None:
        src, deid = obs.values["source_aus"], obs.values["deid_aus"]
        for side in self.unmatched:
            self.unmatched[side] += obs.values.get(f"{side}_au_row") == "unmatched"
        if src is not None:
            self.self_moments.update(src, src)
        else:
            self.skipped["source"] += 1
        if deid is None:
            self.skipped["deid"] += 1
        if src is not None and deid is not None:
            self.moments.update(np.asarray(src, np.float64), np.asarray(deid, np.float64), t=obs.t)
        else:
            self.moments.expire(obs.t)

    def expire(self, now: float) -> None:
        self.moments.expire(now)

    def window_values(self) -> Values:
        out: Values = {}
        reasons: dict[str, str] = {}
        render_summary(self.moments.window.get(), out, reasons)
        return with_reasons(out, reasons)

    def total_values(self) -> Values:
        out: Values = {}
        reasons: dict[str, str] = {}
        render_summary(self.moments.total.get(), out, reasons)
        out["pairs_without_face"] = dict(self.skipped)
        out["au_source"] = self.au_source
        if self.au_source in ("openface", "pyfaceau"):  # pyfaceau's rows are OpenFace-style rows too
            out["openface_unmatched"] = dict(self.unmatched)
        return with_reasons(out, reasons)

    def paper(self) -> dict[str, dict[str, Any]]:
        """Per AU ``[PCC, RMSE]`` of each stream against the source (the source row compares it with itself)."""
        blocks: dict[str, dict[str, Any]] = {}
        for side, summary in (("source", self.self_moments.get()), ("deid", self.moments.total.get())):
            blocks[side] = {
                key: [_num(p), _num(r)]
                for key, p, r in zip(AU_KEYS, summary.pearson.values, summary.rmse.values, strict=True)
            }
        return blocks
