"""PSNR and SSIM of the de-identified frames against the source frames (face region or whole frame)."""

from __future__ import annotations

from streameval.analysis.base import Observation
from streameval.analysis.pixel import Region
from streameval.metrics.base import Metric, Values, rate_series, render_scalar, scalar_series, with_reasons

NO_SOURCE_FACE = "no source face"


class PixelMetric(Metric):
    family = "pixel"
    consumes = frozenset({"pixel"})

    def __init__(self, window: float, region: Region = "face") -> None:
        self.region = region
        self.psnr = scalar_series(window)
        self.ssim = scalar_series(window)
        self.no_face = rate_series(window)  # share of analysed pairs whose source frame had no face
        self.identical = 0  # pairs with infinite PSNR, left out of the PSNR statistics

    def update(self, obs: Observation) -> None:
        no_face = bool(obs.values.get("no_face", False))
        if self.region == "face":
            self.no_face.update(no_face, t=obs.t)
        if no_face:
            return
        psnr = obs.values.get("psnr")
        if psnr is None:
            self.identical += 1
        else:
            self.psnr.update(float(psnr), t=obs.t)
        self.ssim.update(float(obs.values["ssim"]), t=obs.t)

    def expire(self, now: float) -> None:
        self.psnr.expire(now)
        self.ssim.expire(now)
        self.no_face.expire(now)

    def _values(self, psnr: object, ssim: object, no_face: object) -> Values:
        out: Values = {"region": self.region}
        reasons: dict[str, str] = {}
        render_scalar(psnr, "psnr", out, reasons)
        render_scalar(ssim, "ssim", out, reasons)
        if out["psnr_mean"] is None and out["ssim_n"]:
            reasons["psnr_mean"] = reasons["psnr_std"] = "identical frames (infinite PSNR)"
        if self.region == "face":
            faceless = int(getattr(no_face, "hits", 0))
            out["no_face_pairs"] = faceless
            if faceless and not out["ssim_n"]:
                for key in ("psnr_mean", "psnr_std", "ssim_mean", "ssim_std"):
                    reasons[key] = NO_SOURCE_FACE
        return with_reasons(out, reasons)

    def window_values(self) -> Values:
        return self._values(self.psnr.window, self.ssim.window, self.no_face.window)

    def total_values(self) -> Values:
        out = self._values(self.psnr.total, self.ssim.total, self.no_face.total)
        out["psnr_identical_pairs"] = self.identical
        return out
