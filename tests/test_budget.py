"""The CPU budget: lane loads, the limiting lane and the speed bound, against a hand computation."""

from __future__ import annotations

import pytest

from streameval.budget import LaneCost, assess


def test_assessment_by_hand() -> None:
    # 30 fps: faces 20 ms on two threads every pair, identity 40 ms 5 times a second, reality 1.2 s every 2 s
    faces = LaneCost("faces", 0.020, 30.0, cpu_per_call=0.040)
    identity = LaneCost("identity", 0.040, 5.0, cpu_per_call=0.040)
    reality = LaneCost("reality", 1.2, 0.5, cpu_per_call=1.2)
    result = assess([faces, identity, reality], cores=2)
    assert [lane.load for lane in result.lanes] == pytest.approx([0.6, 0.2, 0.6])
    assert result.cpu == pytest.approx(1.2 + 0.2 + 0.6)  # the stage's two threads count twice
    # the lanes alone would allow 1 / 0.6 = 1.67x; 2.0 CPU-s per video second on 2 cores allows exactly 1.0x
    assert result.speed == pytest.approx(1.0)
    assert result.limiting.name in {"faces", "reality"}
    block = result.as_dict()
    assert block["lanes"]["identity"] == {
        "ms_per_call": 40.0,
        "cpu_ms_per_call": 40.0,
        "calls_per_video_s": 5.0,
        "load": 0.2,
        "cpu_s_per_video_s": 0.2,
        "background": False,
    }
    assert block["cpu_s_per_video_s"] == pytest.approx(2.0) and block["speed_bound"] == pytest.approx(1.0)


def test_one_lane_over_its_time_limits_the_run() -> None:
    result = assess([LaneCost("slow", 0.1, 25.0, 0.1), LaneCost("quick", 0.001, 25.0, 0.001)], cores=16)
    assert result.limiting.name == "slow" and result.speed == pytest.approx(0.4)
    assert "slow 2.50" in result.describe()
