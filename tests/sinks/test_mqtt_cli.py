"""End to end: `streameval replay --sink mqtt://...` with alert rules, against a real mosquitto broker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from tests.mqtt_broker import Mosquitto, Subscriber, mosquitto  # noqa: F401  (fixture)
from tests.videos import CASES, write_video


def test_replay_publishes_records_alerts_and_report(mosquitto: Mosquitto, tmp_path: Path) -> None:  # noqa: F811
    write_video(tmp_path / "v.mp4", CASES[0])  # 30 frames at 25 fps: records at 0.4, 0.8, 1.16 (final)
    config = tmp_path / "run.toml"
    config.write_text(
        f'source = "v.mp4"\ndeid = "v.mp4"\nwindow = "0.4s"\nhop = "0.4s"\nstream_id = "cam7"\n'
        f'sink = ["{mosquitto.url("site")}"]\nlog = "log.jsonl"\nreport = "report.json"\n'
        # SSIM of a video with itself is 1: the rule raises on the first record and stays raised.
        '[[alerts]]\nname = "too-similar"\nwhen = "pixel.ssim_mean > 0.99"\nclear = "pixel.ssim_mean < 0.9"\n'
        '[pixel]\nregion = "frame"\n'  # the generated video has no face
    )

    async def scenario() -> Subscriber:
        async with Subscriber(mosquitto, "site/#") as sub:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "streameval.cli", "-q", "replay", "--config", str(config),
                stderr=subprocess.PIPE,
            )  # fmt: skip
            _, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            await sub.wait_for("/report", 1)
            await sub.wait_for("/status", 2)  # online, then offline (closed)
            return sub

    sub = asyncio.run(scenario())
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    # The broker received exactly what the log received, record for record.
    assert sub.on("/metrics") == [r for r in log if r["type"] == "metrics"]
    assert sub.on("/alerts") == [r for r in log if r["type"] == "alert"]
    assert [a["event"] for a in sub.on("/alerts")] == ["raise", "active_at_end"]
    assert [r["window"]["end"] for r in sub.on("/metrics")][:2] == [0.4, 0.8]
    (report,) = sub.on("/report")
    assert report == log[-1] and report["status"] == "complete"
    assert [a["event"] for a in report["alerts"]["events"]] == ["raise"]
    assert report["alerts"]["active_at_end"][0]["rule"] == "too-similar"
    mqtt_stats = next(s for s in report["sinks"] if s["type"] == "MqttSink")
    assert mqtt_stats["dropped"] == 0 and mqtt_stats["accepted"] >= len(log) - 1
    assert [s["state"] for s in sub.on("/status")] == ["online", "offline"]
