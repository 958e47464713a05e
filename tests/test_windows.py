"""Windower: records cut at hop boundaries with exactly the observations of (end - window, end]."""

from __future__ import annotations

import numpy as np
import pytest

from streameval.analysis.base import Observation
from streameval.errors import UsageError
from streameval.metrics.pixel import PixelMetric
from streameval.windows import WindowConfig, Windower


def obs(t: float, psnr: float | None, ssim: float) -> Observation:
    return Observation("pixel", t, {"psnr": psnr, "ssim": ssim})


def test_records_match_numpy_on_each_window_regardless_of_arrival_order() -> None:
    rng = np.random.default_rng(1)
    t = np.round(np.arange(0, 10, 0.1), 6)
    psnr = rng.normal(30, 3, len(t))
    ssim = rng.uniform(0.5, 1.0, len(t))
    w = Windower([PixelMetric(2.0)], WindowConfig(window=2.0, hop=0.5))
    order = rng.permutation(len(t))  # analysers finish out of order
    records = []
    for i in order:
        w.add(obs(float(t[i]), float(psnr[i]), float(ssim[i])))
    records += w.advance(5.0)
    records += w.finish()
    ends = [r["window"]["end"] for r in records]
    assert ends[:10] == pytest.approx([0.5 * k for k in range(1, 11)])
    for r in records:
        end = r["window"]["end"]
        sel = (t > end - 2.0 + 1e-9) & (t <= end + 1e-9)
        assert r["pixel"]["psnr_n"] == sel.sum()
        assert r["pixel"]["psnr_mean"] == pytest.approx(psnr[sel].mean(), rel=1e-12)
        assert r["pixel"]["psnr_std"] == pytest.approx(psnr[sel].std(), rel=1e-9)  # population std
        assert r["pixel"]["ssim_mean"] == pytest.approx(ssim[sel].mean(), rel=1e-12)
    assert records[-1]["window"]["final"] is True
    assert [r["seq"] for r in records] == list(range(len(records)))
    totals = w.totals()["pixel"]
    assert totals["psnr_mean"] == pytest.approx(psnr.mean(), rel=1e-12)
    assert totals["psnr_n"] == len(t)


def test_watermark_holds_records_back() -> None:
    w = Windower([PixelMetric(1.0)], WindowConfig(window=1.0, hop=1.0))
    w.add(obs(0.0, 20.0, 0.5))
    w.add(obs(0.9, 22.0, 0.5))
    assert w.advance(0.99) == []
    (rec,) = w.advance(1.0)
    assert rec["pixel"]["psnr_n"] == 1  # (0, 1]: the t=0 observation is outside, 0.9 inside
    assert rec["pixel"]["psnr_mean"] == 22.0


def test_identical_frames_give_null_psnr_with_reason() -> None:
    w = Windower([PixelMetric(1.0)], WindowConfig(window=1.0, hop=1.0))
    for k in range(5):
        w.add(obs(0.1 * (k + 1), None, 1.0))
    (rec,) = w.finish()
    assert rec["pixel"]["psnr_mean"] is None
    assert "infinite" in rec["pixel"]["null_reasons"]["psnr_mean"]
    assert w.totals()["pixel"]["psnr_identical_pairs"] == 5


def test_late_observation_is_counted_in_the_next_window() -> None:
    w = Windower([PixelMetric(5.0)], WindowConfig(window=5.0, hop=1.0))
    w.add(obs(0.0, 10.0, 0.1))
    w.add(obs(0.5, 10.0, 0.1))
    w.advance(1.0)
    w.add(obs(0.7, 40.0, 0.1))  # arrives after the (.., 1] record was cut
    (rec,) = w.advance(2.0)
    assert w.late == 1
    assert rec["pixel"]["psnr_n"] == 3 and rec["pixel"]["psnr_mean"] == pytest.approx(20.0)


@pytest.mark.parametrize(("window", "hop"), [(0, 1), (1, 0), (-1, 1), (1, 2), (float("nan"), 1)])
def test_bad_window_config(window: float, hop: float) -> None:
    with pytest.raises(UsageError):
        WindowConfig(window=window, hop=hop)
