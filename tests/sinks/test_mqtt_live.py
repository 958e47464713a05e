"""MqttSink against a real mosquitto on loopback: delivery, retained status, Last Will, broker restart."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from streameval.alerts import AlertEngine, parse_rules
from streameval.sinks.base import Sink
from streameval.sinks.mqtt import MqttSink, parse_mqtt_url
from tests import mqtt_broker
from tests.mqtt_broker import HOST, Mosquitto, Pki, Subscriber, eventually, free_port

# The broker fixtures live in tests/mqtt_broker.py; re-exported here so pytest finds them.
mosquitto = mqtt_broker.mosquitto
mosquitto_auth = mqtt_broker.mosquitto_auth
mosquitto_tls = mqtt_broker.mosquitto_tls

REPO = Path(__file__).resolve().parents[2]


def run(coro: Coroutine[Any, Any, None], timeout: float = 60.0) -> None:
    """Every live test is bounded in time."""
    asyncio.run(asyncio.wait_for(coro, timeout))


def metrics(seq: int, leak: float | None = 0.0) -> dict[str, Any]:
    return {
        "schema": 1,
        "type": "metrics",
        "stream_id": "cam1",
        "seq": seq,
        "window": {"start": float(seq), "end": float(seq + 1)},
        "deid": {"leak_rate": leak},
        "health": {"lag_s": 0.1, "dropped": 0},
    }


def fast(url: str, **overrides: Any) -> Any:
    """Settings with short backoff so reconnection tests stay quick."""
    return replace(parse_mqtt_url(url), backoff_initial_s=0.05, backoff_max_s=0.2, **overrides)


def test_records_and_alerts_reach_a_subscriber(mosquitto: Mosquitto) -> None:
    leaks = [0.0, 0.1, 0.2, 0.01, 0.0]  # raises above 0.05 at seq 1, clears below 0.02 at seq 3
    engine = AlertEngine(
        parse_rules([{"name": "leak", "when": "deid.leak_rate > 0.05", "clear": "deid.leak_rate < 0.02"}])
    )
    report = {"type": "report", "stream_id": "cam1", "paper": {"FID": 12.5, "A_mean": [0.7, 0.1]}}

    async def scenario() -> None:
        async with Subscriber(mosquitto, "test/#") as sub:
            sink = MqttSink(parse_mqtt_url(mosquitto.url("test?qos=1")), stream_id="cam1", buffer_size=16)
            assert isinstance(sink, Sink)
            sent: list[dict[str, Any]] = []
            async with sink:
                for seq, leak in enumerate(leaks):
                    record = metrics(seq, leak)
                    await sink.publish(record)
                    for alert in engine.evaluate(record):
                        await sink.publish(alert)
                        sent.append(alert)
                await sink.publish(report)
                await eventually(lambda: sink.stats.sent == len(leaks) + len(sent) + 1, what="all acknowledged")
                got = await sub.wait_for("/metrics", len(leaks))
                assert got == [metrics(seq, leak) for seq, leak in enumerate(leaks)]
                alerts = await sub.wait_for("/alerts", 2)
                assert [(a["event"], a["seq"], a["value"]) for a in alerts] == [("raise", 1, 0.1), ("clear", 3, 0.01)]
                assert alerts == [{"schema": 1, **a} for a in sent]
                assert (await sub.wait_for("/report", 1)) == [{"schema": 1, **report}]
                online = sub.on("/status")
                assert [(s["state"], s["stream_id"], s["schema"]) for s in online] == [("online", "cam1", 1)]
            # A clean exit replaces the retained status with 'offline' (reason closed), not the Last Will.
            (offline,) = (await sub.wait_for("/status", 2))[1:]
            assert (offline["state"], offline["reason"], offline["mqtt"]["sent"]) == ("offline", "closed", 8)
            assert {topic for topic, _, _ in sub.messages} == {
                "test/cam1/metrics",
                "test/cam1/alerts",
                "test/cam1/report",
                "test/cam1/status",
            }
            stats = sink.stats
            assert (stats.accepted, stats.sent, stats.dropped, stats.abandoned, stats.connects) == (8, 8, 0, 0, 1)
            assert set(sub.qos) == {1}
        # A late subscriber gets the retained status and report only.
        async with Subscriber(mosquitto, "test/#") as late:
            await late.wait_for("/report", 1)
            status = await late.wait_for("/status", 1)
            assert status[0]["state"] == "offline"
            await asyncio.sleep(0.2)
            assert all(retained for _, _, retained in late.messages)
            assert late.on("/metrics") == [] and late.on("/alerts") == []

    run(scenario())


def test_qos_zero_is_honoured(mosquitto: Mosquitto) -> None:
    async def scenario() -> None:
        async with Subscriber(mosquitto, "test/#") as sub:
            async with MqttSink(parse_mqtt_url(mosquitto.url("test?qos=0")), stream_id="cam1") as sink:
                for seq in range(3):
                    await sink.publish(metrics(seq))
                assert [m["seq"] for m in await sub.wait_for("/metrics", 3)] == [0, 1, 2]
            await sub.wait_for("/status", 2)  # online, then offline at exit
            assert set(sub.qos) == {0}

    run(scenario())


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from streameval.sinks.mqtt import MqttSink, parse_mqtt_url

    async def main():
        async with MqttSink(parse_mqtt_url(sys.argv[1]), stream_id="child") as sink:
            await sink.publish({"type": "metrics", "stream_id": "child", "seq": 0, "window": {"start": 0, "end": 1}})
            while sink.stats.sent < 1:
                await asyncio.sleep(0.01)
            print("ready", flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def test_last_will_announces_a_killed_evaluator(mosquitto: Mosquitto) -> None:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mosquitto.url("test?keepalive=5")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )

    async def scenario() -> None:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 30)
        assert line.strip() == b"ready", child.stderr.read() if child.stderr else b""
        async with Subscriber(mosquitto, "test/child/status") as sub:
            (online,) = await sub.wait_for("/status", 1)
            assert online["state"] == "online" and sub.messages[0][2]  # retained
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
            offline = (await sub.wait_for("/status", 2))[1]
            assert offline == {"schema": 1, "type": "status", "stream_id": "child", "state": "offline",
                               "reason": "connection lost"}  # fmt: skip
        async with Subscriber(mosquitto, "test/child/status") as late:
            assert (await late.wait_for("/status", 1))[0]["state"] == "offline"

    try:
        run(scenario())
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


def test_broker_restart_resumes_and_counts_drops_exactly(mosquitto: Mosquitto) -> None:
    """Buffer of 4; 10 records published while the broker is down: the 6 oldest are dropped, the last 4 arrive."""

    async def scenario() -> None:
        # A persistent subscriber session: the broker keeps (and persists) what arrives while it is away.
        persistent = {"identifier": "watcher", "clean": False}
        async with Subscriber(mosquitto, "test/cam1/metrics", **persistent) as before:  # type: ignore[arg-type]
            async with MqttSink(fast(mosquitto.url()), stream_id="cam1", buffer_size=4) as sink:
                for seq in range(5):  # one at a time: publish() does not yield, 5 at once would overflow
                    await sink.publish(metrics(seq))
                    target = seq + 1
                    await eventually(lambda: sink.stats.sent == target, what=f"record {seq} acknowledged")  # noqa: B023
                await before.wait_for("/metrics", 5)
                await before.sync()

                mosquitto.stop()
                await eventually(lambda: not sink.stats.connected, what="sink to notice the broker is gone")
                for seq in range(5, 15):
                    await sink.publish(metrics(seq))  # returns at once, never raises
                stats = sink.stats
                assert (stats.accepted, stats.sent, stats.dropped, stats.buffered) == (15, 5, 6, 4)

                mosquitto.start()
                await eventually(lambda: sink.stats.sent == 9, what="buffer flushed after restart")
                async with Subscriber(mosquitto, "test/cam1/metrics", **persistent) as after:  # type: ignore[arg-type]
                    resumed = await after.wait_for("/metrics", 4)
                    async with Subscriber(mosquitto, "test/cam1/status") as status_sub:
                        (status,) = await status_sub.wait_for("/status", 1)
                stats = sink.stats
            assert [m["seq"] for m in before.on("/metrics")] == [0, 1, 2, 3, 4]
            assert [m["seq"] for m in resumed] == [11, 12, 13, 14]
            # The status published on reconnection reports the drops.
            assert (status["state"], status["mqtt"]["dropped"], status["mqtt"]["connects"]) == ("online", 6, 2)
            assert (stats.sent, stats.dropped, stats.abandoned, stats.buffered, stats.connects) == (9, 6, 0, 0, 2)

    run(scenario())


def test_unreachable_at_start_warns_retries_then_delivers(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        # Register a persistent subscription, then take the broker down before the sink starts.
        async with Subscriber(mosquitto, "test/cam1/metrics", identifier="w", clean=False):
            pass
        mosquitto.stop()
        with caplog.at_level(logging.WARNING, logger="streameval.sinks.mqtt"):
            async with MqttSink(fast(mosquitto.url()), stream_id="cam1", buffer_size=8) as sink:
                for seq in range(3):
                    await sink.publish(metrics(seq))
                await eventually(lambda: sink.stats.failures >= 3, what="repeated connection attempts")
                assert sink.stats.sent == 0 and not sink.stats.connected
                assert "cannot reach mqtt://127.0.0.1" in caplog.text
                assert caplog.text.count("cannot reach") == 1  # warned once, retries are quiet
                mosquitto.start()
                await eventually(lambda: sink.stats.sent == 3, what="buffered records delivered")
                async with Subscriber(mosquitto, "test/cam1/metrics", identifier="w", clean=False) as sub:
                    assert [m["seq"] for m in await sub.wait_for("/metrics", 3)] == [0, 1, 2]

    run(scenario())


def test_closing_with_no_broker_is_bounded_and_counts_abandoned() -> None:
    settings = replace(fast(f"mqtt://{HOST}:{free_port()}/test"), flush_timeout_s=0.3)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with MqttSink(settings, stream_id="cam1", buffer_size=2) as sink:
            for seq in range(5):
                await sink.publish(metrics(seq))
            started = loop.time()
        assert loop.time() - started < 5.0  # flush_timeout 0.3 s plus a connect attempt, not the backoff cap
        stats = sink.stats
        assert (stats.accepted, stats.sent, stats.dropped, stats.abandoned, stats.buffered) == (5, 0, 3, 2, 0)

    run(scenario(), timeout=20)


def test_username_and_password(mosquitto_auth: Mosquitto) -> None:
    good = mosquitto_auth.url(userinfo="eval:s3cret%3A%2F%40")  # percent-encoded ':/@'
    bad = mosquitto_auth.url(userinfo="eval:wrong")

    async def scenario() -> None:
        async with MqttSink(fast(good), stream_id="cam1") as sink:
            await sink.publish(metrics(0))
            await eventually(lambda: sink.stats.sent == 1, what="authenticated delivery")
        async with MqttSink(fast(bad, flush_timeout_s=0.2), stream_id="cam1") as refused:
            await refused.publish(metrics(0))
            await eventually(lambda: refused.stats.failures >= 2, what="refused connection attempts")
        assert refused.stats.sent == 0 and refused.stats.abandoned == 1
        assert refused.stats.last_error is not None and "authori" in refused.stats.last_error.lower()

    run(scenario())


def test_tls_with_client_certificate(mosquitto_tls: tuple[Mosquitto, Pki]) -> None:
    broker, pki = mosquitto_tls
    base = f"mqtts://{HOST}:{broker.port}/test?ca={pki.ca}"
    trusted = ssl.create_default_context(cafile=str(pki.ca))
    trusted.load_cert_chain(str(pki.client_cert), str(pki.client_key))

    async def scenario() -> None:
        async with Subscriber(broker, "test/#", tls_context=trusted) as sub:
            async with MqttSink(fast(f"{base}&cert={pki.client_cert}&key={pki.client_key}"), stream_id="cam1") as sink:
                await sink.publish(metrics(0))
                assert [m["seq"] for m in await sub.wait_for("/metrics", 1)] == [0]
            # Without a client certificate the broker refuses the handshake: retried, never sent, never raised.
            # (TLS 1.3 reports the missing certificate after the handshake; the client notices at its timeout.)
            refused = fast(base, flush_timeout_s=0.3, timeout_s=0.5)
            async with MqttSink(refused, stream_id="cam2") as anonymous:
                await anonymous.publish(metrics(0))
                await eventually(lambda: anonymous.stats.failures >= 2, what="refused TLS handshakes")
            assert (anonymous.stats.connects, anonymous.stats.sent, anonymous.stats.abandoned) == (0, 0, 1)
            assert sub.on("cam2/metrics") == []

    run(scenario())
