"""Secrets (issue 10, cases 6 and 7): a password in a source or sink URL leaves the process nowhere: not on stderr,
not in the log, the report, an MQTT payload or an error message, whether the run succeeds or fails."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from streameval.cli import EXIT_INPUT, EXIT_USAGE
from streameval.errors import ConfigError
from streameval.redact import redact, redact_strings
from streameval.sinks.mqtt_settings import parse_mqtt_url
from tests.faults.helpers import child_env, frame_region, one_line_error, run_cli, streameval_command, video
from tests.mqtt_broker import HOST, Mosquitto, free_port, mosquitto_auth  # noqa: F401  (fixture)

SOURCE_SECRET = "Pl4nted-S0urce-Pw"
BROKER_PASSWORD = "s3cret:/@"  # what tests.mqtt_broker.mosquitto_auth accepts for user 'eval'
BROKER_PASSWORD_URL = "s3cret%3A%2F%40"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:pass@cam/x", "rtsp://admin:***@cam/x"),
        ("mqtt://u:pa/ss@host:1/p", "mqtt://u:***@host:1/p"),
        ("mqtt://u:pa#ss@h", "mqtt://u:***@h"),
        ("mqtt://u:pa?x=ss@h/p", "mqtt://u:***@h/p"),
        ("mqtt://eval:s3cret:/@@127.0.0.1:1/p", "mqtt://eval:***@127.0.0.1:1/p"),
        ("mqtt://user@h/p", "mqtt://user@h/p"),  # a user name alone is kept
        ("https://h/x?token=abc&b=2", "https://h/x?token=***&b=2"),
        ("http://h/x?X-Amz-Signature=abc", "http://h/x?X-Amz-Signature=***"),
        ("mqtts://h/p?key=/tmp/k.pem", "mqtts://h/p?key=/tmp/k.pem"),  # a TLS key file path is not a secret
        ("open 'rtsp://a:b@c/d' failed: 401", "open 'rtsp://a:***@c/d' failed: 401"),
        ("rtsp://cam/stream@main", "rtsp://***@main"),  # ambiguous: the safe side
    ],
)
def test_case06_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact_strings({"a": [text, 1, None]}) == {"a": [expected, 1, None]}


@pytest.mark.parametrize(
    "url",
    [
        "mqtt://eval:hunter/22@127.0.0.1:1883/p",
        "mqtt://eval:hunter#22@127.0.0.1:1883/p",
        "mqtt://eval:hunter?22@127.0.0.1:1883/p",
        "mqtt://eval:hunter22@127.0.0.1:99999/p",
    ],
)
def test_case07_malformed_mqtt_url_error_hides_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_mqtt_url(url)
    message = str(info.value)
    assert "hunter" not in message and "22@" not in message
    assert "eval:***@127.0.0.1" in message


def test_case07_malformed_sink_url_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = video(tmp_path)
    code, out, err = run_cli(
        ["replay", str(good), str(good), "--sink", "mqtt://eval:hun/ter2@127.0.0.1:1/p", "--no-log"], capsys
    )
    assert code == EXIT_USAGE
    line = one_line_error(err)
    assert "percent-encode" in line and "hun" not in line and "ter2" not in line + out


def _files_text(folder: Path) -> str:
    files = [p for p in folder.rglob("*") if p.is_file() and p.stat().st_size < 10**7]
    return "\n".join(p.read_text(errors="replace") for p in files)


def test_case06_replay_of_an_unreachable_source_with_a_password(tmp_path: Path) -> None:
    good = video(tmp_path)
    port = free_port()
    proc = subprocess.run(
        streameval_command(
            "-v", "replay", f"rtsp://admin:{SOURCE_SECRET}@{HOST}:{port}/cam", str(good), "--read-timeout", "2s",
            "--log", str(tmp_path / "log.jsonl"), "--report", str(tmp_path / "r.json"),
        ),
        capture_output=True, text=True, timeout=120, env=child_env(),
    )  # fmt: skip
    assert proc.returncode == EXIT_INPUT, proc.stderr
    assert f"rtsp://admin:***@{HOST}:{port}/cam" in proc.stderr
    assert SOURCE_SECRET not in proc.stderr + proc.stdout + _files_text(tmp_path)


def test_case06_live_run_with_passwords_everywhere(mosquitto_auth: Mosquitto, tmp_path: Path) -> None:  # noqa: F811
    """A failed live run (the source never answers) with a password-protected broker: the report, the log, the
    retained /report topic, every MQTT payload and stderr are searched for both passwords."""
    import aiomqtt

    good = video(tmp_path)
    source = f"rtsp://admin:{SOURCE_SECRET}@{HOST}:{free_port()}/cam"
    sink = mosquitto_auth.url("site", userinfo=f"eval:{BROKER_PASSWORD_URL}")
    payloads: list[tuple[str, bytes]] = []

    async def scenario() -> tuple[int, str, str]:
        async with aiomqtt.Client(HOST, mosquitto_auth.port, username="eval", password=BROKER_PASSWORD) as client:
            await client.subscribe("site/#", qos=1)

            async def collect() -> None:
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    payloads.append((str(message.topic), message.payload))

            collector = asyncio.create_task(collect())
            proc = await asyncio.create_subprocess_exec(
                *streameval_command(
                    "-v", "run", source, str(good), *frame_region(tmp_path), "--give-up-after", "1s",
                    "--sink", sink, "--stream-id", "cam1",
                    "--log", str(tmp_path / "log.jsonl"), "--report", str(tmp_path / "r.json"),
                ),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(),
            )  # fmt: skip
            out, err = await asyncio.wait_for(proc.communicate(), 120)
            for _ in range(200):  # the retained report arrives right before the process ends
                if any(topic.endswith("/report") for topic, _ in payloads):
                    break
                await asyncio.sleep(0.05)
            collector.cancel()
            return proc.returncode or 0, out.decode(), err.decode()

    code, out, err = asyncio.run(scenario())
    assert code == EXIT_INPUT, err
    report: dict[str, Any] = json.loads((tmp_path / "r.json").read_text())
    assert report["status"] == "failed"
    assert report["inputs"]["source"]["spec"] == f"rtsp://admin:***@{HOST}:{source.rsplit(':', 1)[1]}"
    assert "rtsp://admin:***@" in report["error"]
    topics = {topic for topic, _ in payloads}
    assert {"site/cam1/report", "site/cam1/status"} <= topics  # no metrics: the source never sent a frame
    everything = "\n".join([out, err, _files_text(tmp_path)] + [p.decode() for _, p in payloads])
    for secret in (SOURCE_SECRET, BROKER_PASSWORD, BROKER_PASSWORD_URL, "s3cret"):
        assert secret not in everything, secret
