"""PSNR and SSIM of the de-identified frames against the source frames."""

from __future__ import annotations

from streameval.analysis.base import Observation
from streameval.metrics.base import Metric, Values, render_scalar, scalar_series, with_reasons


class PixelMetric(Metric):
    family = "pixel"
    consumes = frozenset({"pixel"})

    def __init__(self, window: float) -> None:
        self.psnr = scalar_series(window)
        self.ssim = scalar_series(window)
        self.identical = 0  # pairs with infinite PSNR, left out of the PSNR statistics

    def update(self, obs: Observation) -> None:
        psnr = obs.values.get("psnr")
        if psnr is None:
            self.identical += 1
        else:
            self.psnr.update(float(psnr), t=obs.t)
        self.ssim.update(float(obs.values["ssim"]), t=obs.t)

    def expire(self, now: float) -> None:
        self.psnr.expire(now)
        self.ssim.expire(now)

    def _values(self, psnr: object, ssim: object) -> Values:
        out: Values = {}
        reasons: dict[str, str] = {}
        render_scalar(psnr, "psnr", out, reasons)
        render_scalar(ssim, "ssim", out, reasons)
        if out["psnr_mean"] is None and out["ssim_n"]:
            reasons["psnr_mean"] = reasons["psnr_std"] = "identical frames (infinite PSNR)"
        return with_reasons(out, reasons)

    def window_values(self) -> Values:
        return self._values(self.psnr.window, self.ssim.window)

    def total_values(self) -> Values:
        out = self._values(self.psnr.total, self.ssim.total)
        out["psnr_identical_pairs"] = self.identical
        return out
