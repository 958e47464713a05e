"""PSNR and SSIM of the de-identified frames against the source frames."""

from __future__ import annotations

from streameval.analysis.base import Observation
from streameval.metrics.base import Metric, Values, WindowedScalar, with_reasons


class PixelMetric(Metric):
    family = "pixel"
    consumes = frozenset({"pixel"})

    def __init__(self, window: float) -> None:
        self.psnr = WindowedScalar(window)
        self.ssim = WindowedScalar(window)
        self.identical = 0  # pairs with infinite PSNR, left out of the PSNR statistics

    def update(self, obs: Observation) -> None:
        psnr = obs.values.get("psnr")
        if psnr is None:
            self.identical += 1
        else:
            self.psnr.update(float(psnr), obs.t)
        self.ssim.update(float(obs.values["ssim"]), obs.t)

    def expire(self, now: float) -> None:
        self.psnr.expire(now)
        self.ssim.expire(now)

    def window_values(self) -> Values:
        out: Values = {}
        reasons: dict[str, str] = {}
        self.psnr.window_values("psnr", out, reasons)
        self.ssim.window_values("ssim", out, reasons)
        return with_reasons(out, reasons)

    def total_values(self) -> Values:
        out: Values = {}
        reasons: dict[str, str] = {}
        self.psnr.total_values("psnr", out, reasons)
        self.ssim.total_values("ssim", out, reasons)
        out["psnr_identical_pairs"] = self.identical
        if out["psnr_mean"] is None and self.identical:
            reasons["psnr_mean"] = reasons["psnr_std"] = "identical frames (infinite PSNR)"
        return with_reasons(out, reasons)
