"""tools/bench_realtime.py without running anything: arguments and what it reads out of reports and records."""

from __future__ import annotations

import argparse
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tools.bench_realtime import (
    Child,
    Clip,
    evaluation_args,
    lag_stats,
    lanes,
    markdown,
    parse_args,
    parse_size,
    percentile,
    startup,
    steady_rate,
    summarize,
)


def _report() -> dict[str, Any]:
    return {
        "status": "complete",
        "pairing": {"paired": 300, "unpaired_source": 1, "unpaired_deid": 0},
        "inputs": {"source": {"stats": {"frames_dropped": 2}}, "deid": {"stats": {"frames_dropped": 0}}},
        "totals": {
            "health": {
                "dropped": 3,
                "analysed": {"faces": 297, "reality": 300},
                "dropped_by_analyser": {"faces": 3, "reality": 0},
                "busy_ms": {"faces": 40.0, "reality": 20.0},
            }
        },
    }


def test_parse_size() -> None:
    assert parse_size("1280x720") == (1280, 720)
    for bad in ("1280", "x720", "1281x720", "8x8", "1280*720"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(bad)


def test_parse_args_defaults_and_options() -> None:
    args = parse_args([])
    assert args.sizes == ["176x144", "1280x720"] and args.seconds == 30.0 and args.device == "cpu"
    assert args.families == "identity,expression,reality,pixel" and args.extra == [] and args.concurrent == 0
    args = parse_args(["--sizes", "640x360", "--seconds", "12", "--extra-args", "--rate identity=2 --window 5s",
                       "--device", "cuda", "--concurrent", "3", "--no-live", "--families", "pixel"])  # fmt: skip
    assert args.sizes == ["640x360"] and args.seconds == 12.0 and args.device == "cuda" and args.no_live
    assert args.extra == ["--rate", "identity=2", "--window", "5s"] and args.concurrent == 3
    with pytest.raises(SystemExit):
        parse_args(["--seconds", "0"])


def test_evaluation_args_use_defaults_but_the_outputs() -> None:
    pair = (Clip(Path("o.mp4"), 10, Fraction(25)), Clip(Path("d.mp4"), 10, Fraction(25)))
    argv = evaluation_args("replay", pair, "pixel", Path("w"), ["--realtime"])
    assert argv == ["replay", "o.mp4", "d.mp4", "--metrics", "pixel", "--log", str(Path("w/records.jsonl")),
                    "--report", str(Path("w/report.json")), "--realtime"]  # fmt: skip


def test_lanes_load_and_drop_share() -> None:
    out = lanes(_report(), video_s=10.0)
    assert out["faces"] == {
        "analysed": 297,
        "dropped": 3,
        "dropped_share": 0.01,
        "busy_ms": 40.0,
        "load": pytest.approx(40.0 * 297 / 1000 / 10.0),
    }
    assert out["reality"]["dropped_share"] == 0.0


def test_progress_rates() -> None:
    progress = [(5.0, 1.0), (6.0, 2.0), (9.0, 5.0)]  # 4 stream s in 4 wall s after a 4 s start
    assert steady_rate(progress) == pytest.approx(1.0)
    assert startup(progress) == pytest.approx(4.0)
    assert steady_rate(progress[:1]) is None and startup([]) is None


def test_percentile_and_lag_stats() -> None:
    assert percentile([], 99) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    records = [
        {"type": "metrics", "health": {"lag_s": 0.2, "lag_max_s": 0.5}},
        {"type": "metrics", "health": {"lag_s": 0.4, "lag_max_s": 1.5}},
        {"type": "metrics", "health": {"lag_s": None, "lag_max_s": None}},
        {"type": "alert"},
        {"type": "report", "health": {"lag_max_s": 99.0}},
    ]
    assert lag_stats(records) == {
        "records": 3,
        "lag_p99_s": 1.5,
        "lag_p99_measured": False,
        "lag_max_s": 1.5,
        "lag_mean_s": pytest.approx(0.3),
        "background": {},
    }
    # the report's whole-run quantile, when it has one, is the measured p99
    jobs = {"reality": {"done": 3, "skipped": 2, "busy_ms": 2000.0, "latency_max_s": 2.5}}
    report = {"totals": {"health": {"lag_p99_s": 0.31, "lag_max_s": 1.6, "background": jobs}}}
    stats = lag_stats(records, report)
    assert stats["lag_p99_s"] == 0.31 and stats["lag_p99_measured"] and stats["lag_max_s"] == 1.6
    assert stats["background"] == jobs


def test_summarize_and_markdown() -> None:
    child = Child(code=0, wall_s=20.0, cpu_s=30.0, peak_rss_mib=500.0, progress=[(5.0, 1.0), (9.0, 5.0)])
    row = summarize(child, _report(), video_s=10.0)
    assert row["rtf"] == 0.5 and row["cpu_per_video_s"] == 3.0 and row["steady_rtf"] == 1.0
    assert row["ceiling_rtf"] == pytest.approx(10.0 * (os.cpu_count() or 1) / 30.0)
    assert row["startup_s"] == 4.0 and row["first_record_s"] == 5.0
    assert row["pairs"] == 300 and row["unpaired"] == 1 and row["dropped"] == 3
    assert row["dropped_share_worst"] == 0.01 and row["source_frames_dropped"] == 2
    jobs = {"reality": {"done": 3, "skipped": 2, "busy_ms": 2000.0, "latency_max_s": 2.5}}
    report = {"totals": {"health": {"lag_p99_s": 0.31, "lag_max_s": 0.4, "background": jobs}}}
    live = {**row, **lag_stats([{"type": "metrics", "health": {"lag_s": 0.2, "lag_max_s": 0.4}}], report)}
    text = markdown(
        parse_args(["--no-write"]),
        "python tools/bench_realtime.py",
        0.5,
        {"replay": {"1280x720": row}, "live": live, "live_size": "1280x720", "concurrent": [row, row]},
    )
    assert "| 1280x720 | 10.0 | 300 | 3 | 20.0 | 0.50x | 1.0x | **no** |" in text
    assert "| 1280x720 | faces | 297 | 40 | 1.19 |" in text
    assert "lag p99" in text and "1.0 %" in text and "0 of 2 at real time" in text
    assert "| 0.31 | 0.40 |" in text and "reality: 3 done, 2 skipped, latency max 2.5 s" in text


def test_child_runs_the_checkout_named_by_code_not_the_working_directory(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tools.bench_realtime import CHILD, ROOT, child_env

    fake = tmp_path / "streameval"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "cli.py").write_text("def main():\n    print('fake checkout')\n    return 0\n")
    # started from the repository root, whose own streameval would win if the working directory came first
    env = child_env(tmp_path)
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "fake checkout"
