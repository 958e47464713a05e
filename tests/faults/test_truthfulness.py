"""Truthfulness (issue 10, cases 10-13, 15, 16): the exit code, the message and the report say what happened."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from streameval.cli import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main
from tests.faults.helpers import (
    H264,
    child_env,
    frame_region,
    one_line_error,
    records,
    report,
    run_cli,
    streameval_command,
    video,
)
from tests.mqtt_broker import HOST, Mosquitto, free_port, mosquitto_auth  # noqa: F401  (fixture)
from tests.videos import mpegts_bytes, write_video

# -- case 10: a truncated input ---------------------------------------------------------------------------------


def test_case10_truncated_input_report_says_truncated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full = write_video(tmp_path / "fs.mp4", H264, container_options={"movflags": "+faststart"})
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])  # the header still promises 30 frames
    out = tmp_path / "r.json"
    code, _, err = run_cli(
        ["replay", str(full), str(cut), *frame_region(tmp_path), "--no-log", "--report", str(out)], capsys
    )
    assert code == EXIT_INPUT
    assert "truncated" in one_line_error(err)
    data_ = report(out)
    assert data_["status"] == "truncated"
    assert data_["error"].startswith(f"deid {cut} ended early (truncated after ")
    decoded = data_["inputs"]["deid"]["stats"]["frames_decoded"]
    assert 0 < decoded < 30 and data_["pairing"]["paired"] == decoded


# -- case 11: timestamps that go backwards inside a file --------------------------------------------------------------


def test_case11_backwards_timestamps_are_segmented_counted_and_warned(tmp_path: Path) -> None:
    joined = tmp_path / "joined.ts"  # two MPEG-TS segments whose clocks both start at the same time
    joined.write_bytes(mpegts_bytes(25) + mpegts_bytes(25, first=25))
    log, out = tmp_path / "log.jsonl", tmp_path / "r.json"
    proc = subprocess.run(
        streameval_command("replay", str(joined), str(joined), *frame_region(tmp_path), "--window", "1s",
                           "--log", str(log), "--report", str(out)),
        capture_output=True, text=True, timeout=120, env=child_env(),
    )  # fmt: skip
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "timestamps went backwards at frame 25" in proc.stderr
    data = report(out)
    assert data["status"] == "complete"
    for side in ("source", "deid"):
        stats = data["inputs"][side]["stats"]
        assert stats["pts_resets"] == 1 and stats["gaps"] == 1 and stats["frames_decoded"] == 50
    assert any("went backwards 1 time(s)" in w for w in data["warnings"])
    # not folded: 50 frames at 25 fps cover 2 s of stream time, frame by frame, each paired with itself
    assert data["stream"]["last_t"] == pytest.approx(49 / 25)
    assert data["pairing"]["paired"] == 50
    metrics = [r for r in records(log) if r["type"] == "metrics"]
    # two 1 s windows side by side hold every frame once: none was folded onto another in the same window
    assert len(metrics) == 2 and sum(m["health"]["paired"] for m in metrics) == 50


# -- case 12: an interrupt in the first second ---------------------------------------------------------------------


def test_case12_interrupt_at_start_still_writes_a_report(tmp_path: Path) -> None:
    good = video(tmp_path)
    out = tmp_path / "r.json"
    proc = subprocess.Popen(
        streameval_command("-v", "replay", str(good), str(good), "--realtime", "--no-log", "--report", str(out)),
        stderr=subprocess.PIPE, text=True, env=child_env(),
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    while line := proc.stderr.readline():  # the first log line comes right after the signal handlers are set
        seen.append(line)
        if "evaluating" in line:
            break
    proc.send_signal(signal.SIGINT)  # while the face models load: no frame has been read yet
    rest = proc.stderr.read()
    proc.wait(timeout=60)
    err = "".join(seen) + rest
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err
    assert f"streameval: interrupted; report written to {out}" in err
    data = report(out)
    assert data["status"] == "interrupted"
    assert data["pairing"]["paired"] < H264.frames


# -- case 13: zero pairs, a still image ------------------------------------------------------------------------------


def test_case13_zero_pairs_is_warned(tmp_path: Path) -> None:
    good = video(tmp_path)
    out = tmp_path / "r.json"
    proc = subprocess.run(
        streameval_command("replay", str(good), str(good), *frame_region(tmp_path), "--offset=-100s",
                           "--no-log", "--report", str(out)),
        capture_output=True, text=True, timeout=120, env=child_env(),
    )  # fmt: skip
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "WARNING: no frame pairs: nothing was compared" in proc.stderr
    data = report(out)
    assert data["pairing"]["paired"] == 0 and data["pairing"]["unpaired_source"] == H264.frames
    assert data["warnings"] == ["no frame pairs: nothing was compared (check --offset, --tolerance or --pair)"]


def test_case13_still_image_as_video_is_warned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    still = tmp_path / "portrait.png"
    cv2.imwrite(str(still), np.full((120, 160, 3), 100, np.uint8))
    good = video(tmp_path)
    out = tmp_path / "r.json"
    code, _, _ = run_cli(
        ["replay", str(good), str(still), *frame_region(tmp_path), "--no-log", "--report", str(out)], capsys
    )
    assert code == EXIT_OK
    data = report(out)
    assert data["warnings"] == [f"deid {still} is a still image (one frame), not a video"]
    assert data["pairing"]["paired"] == 1


# -- case 15: a second Ctrl-C ends the wait for a broker that is down ------------------------------------------------


def test_case15_second_interrupt_stops_waiting_for_the_broker(tmp_path: Path) -> None:
    good = video(tmp_path)
    out, log = tmp_path / "r.json", tmp_path / "log.jsonl"
    sink = f"mqtt://{HOST}:{free_port()}/t?flush_timeout=120"  # nobody listens: closing would wait 2 minutes
    proc = subprocess.Popen(
        streameval_command("replay", str(good), str(good), *frame_region(tmp_path), "--realtime", "--hop", "0.2s",
                           "--sink", sink, "--log", str(log), "--report", str(out)),
        stderr=subprocess.PIPE, text=True, env=child_env(),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (log.exists() and log.read_text().count("\n") >= 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not out.exists():  # written before the sinks are closed
        time.sleep(0.05)
    assert report(out)["status"] == "interrupted"
    time.sleep(0.5)
    assert proc.poll() is None  # still waiting for the broker
    second = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - second < 5
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "interrupted again: not waiting for the outputs any longer" in err and "Traceback" not in err
    (mqtt,) = [s for s in report(out)["sinks"] if s["type"] == "MqttSink"]  # counts after the sink closed
    assert mqtt["sent"] == 0 and mqtt["abandoned"] == mqtt["accepted"] > 0


# -- case 16: give-up time, MQTT authentication, a directory as reference image, --report -, rate = inf ------------


def test_case16_give_up_after_ends_on_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"tcp://{HOST}:{free_port()}"  # connection refused at once, on every attempt
    out = tmp_path / "r.json"
    started = time.monotonic()
    code = main(
        ["-q", "run", url, url, *frame_region(tmp_path), "--give-up-after", "5s", "--no-log", "--report", str(out)]
    )
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == EXIT_INPUT
    assert "Connection refused" in one_line_error(err)
    assert 4.9 <= elapsed < 6.5  # backoff 0.5, 1, 2, then the last wait is cut to end at 5 s (was 7.5 s)
    data = report(out)
    assert data["status"] == "failed" and data["inputs"]["source"]["stats"]["end_reason"] == "gave_up"


def test_case16_wrong_mqtt_password_is_an_authentication_failure(mosquitto_auth: Mosquitto, tmp_path: Path) -> None:  # noqa: F811
    good = video(tmp_path)
    sink = mosquitto_auth.url("t", userinfo="eval:wrong-password") + "?flush_timeout=0.5"
    proc = subprocess.run(
        streameval_command("replay", str(good), str(good), *frame_region(tmp_path), "--sink", sink, "--no-log",
                           "--report", str(tmp_path / "r.json")),
        capture_output=True, text=True, timeout=120, env=child_env(),
    )  # fmt: skip
    assert proc.returncode == EXIT_OK, proc.stderr
    assert f"MQTT authentication failed at mqtt://eval@{HOST}:{mosquitto_auth.port}/t" in proc.stderr
    assert "cannot reach" not in proc.stderr and "wrong-password" not in proc.stderr


def test_case16_reference_image_that_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = video(tmp_path)
    folder = tmp_path / "faces"
    folder.mkdir()
    cfg = tmp_path / "ref.toml"
    cfg.write_text(f'[identity]\nref_a = "{folder}"\n')
    code, _, err = run_cli(["replay", str(good), str(good), "--metrics", "identity", "--config", str(cfg)], capsys)
    assert code == EXIT_USAGE
    assert f"reference image {folder} is a directory, not an image file" in one_line_error(err)


def test_case16_report_dash_goes_to_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    good = video(tmp_path)
    code, out, _ = run_cli(
        ["replay", str(good), str(good), *frame_region(tmp_path), "--no-log", "--report", "-"], capsys
    )
    assert code == EXIT_OK
    assert not (tmp_path / "-").exists()
    data = json.loads(out)
    assert data["type"] == "report" and data["status"] == "complete" and data["pairing"]["paired"] == 30
    # with the log on stdout as well the two would interleave: refused before the run
    code, out, err = run_cli(["replay", str(good), str(good), "--report", "-"], capsys)
    assert code == EXIT_USAGE and out == ""
    assert "both name standard output" in one_line_error(err)


@pytest.mark.parametrize("rate", ["pixel=inf", "pixel=nan", "pixel=-1"])
def test_case16_rate_must_be_finite(tmp_path: Path, capsys: pytest.CaptureFixture[str], rate: str) -> None:
    good = video(tmp_path)
    code, _, err = run_cli(["replay", str(good), str(good), "--rate", rate], capsys)
    assert code == EXIT_USAGE
    assert "rate.pixel: analyses per second must be positive and finite" in one_line_error(err)


def test_case16_rate_inf_in_a_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "inf.toml"
    cfg.write_text("[rate]\npixel = inf\n")
    good = video(tmp_path)
    code, _, err = run_cli(["replay", str(good), str(good), "--config", str(cfg)], capsys)
    assert code == EXIT_USAGE
    assert "must be positive and finite, got inf" in one_line_error(err)
