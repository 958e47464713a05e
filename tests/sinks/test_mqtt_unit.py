"""MQTT settings, URL parsing, the drop-oldest buffer and record encoding (no broker needed)."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streameval.errors import ConfigError, MissingExtraError, SinkError, UsageError
from streameval.sinks.mqtt import MqttSink, encode, parse_mqtt_url, settings_from_config
from streameval.sinks.mqtt_buffer import DropOldestBuffer, Outgoing
from streameval.sinks.mqtt_settings import MqttSettings


def test_parse_full_url() -> None:
    s = parse_mqtt_url("mqtt://alice:p%40ss%3Aword@broker.local:1884/site/cam-room?qos=2&client_id=ev1&keepalive=10")
    assert (s.host, s.port, s.prefix) == ("broker.local", 1884, "site/cam-room")
    assert (s.username, s.password) == ("alice", "p@ss:word")
    assert (s.qos, s.client_id, s.keepalive, s.tls) == (2, "ev1", 10, False)
    assert "p@ss" not in repr(s) and "p@ss" not in s.describe()
    assert s.describe() == "mqtt://alice@broker.local:1884/site/cam-room"


def test_parse_defaults_and_mqtts() -> None:
    s = parse_mqtt_url("mqtt://localhost")
    assert (s.port, s.prefix, s.qos, s.tls, s.username) == (1883, "streameval", 1, False, None)
    t = parse_mqtt_url("mqtts://h/p?ca=/etc/ca.pem&cert=c.pem&key=k.pem&insecure=true&timeout=2.5&flush_timeout=1")
    assert (t.port, t.tls, t.ca_file) == (8883, True, Path("/etc/ca.pem"))
    assert (t.cert_file, t.key_file) == (Path("c.pem"), Path("k.pem"))
    assert (t.tls_insecure, t.timeout_s, t.flush_timeout_s) == (True, 2.5, 1.0)
    assert parse_mqtt_url("mqtt://[::1]:1999/x").host == "::1"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://h/p", "scheme"),
        ("mqtt:///p", "no host"),
        ("mqtt://h:99999/p", "Port out of range"),
        ("mqtt://h/p?qos=3", "qos = 3"),
        ("mqtt://h/p?qos=one", "qos = 'one'"),
        ("mqtt://h/p?colour=red", "colour = 'red'"),
        ("mqtt://h/a/+/b", "prefix = 'a/+/b'"),
        ("mqtt://h/a//b", "prefix = 'a//b'"),
        ("mqtt://h/p?ca=/x.pem", "need TLS"),
        ("mqtts://h/p?cert=c.pem", "give both"),
        ("mqtt://h/p?insecure=maybe", "insecure = 'maybe'"),
        ("mqtt://u:hunter2@h/p?timeout=0", "timeout_s = 0.0"),
    ],
)
def test_parse_rejects(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_mqtt_url(url)
    assert fragment in str(info.value)
    assert "hunter2" not in str(info.value)


def test_settings_from_config_table() -> None:
    s = settings_from_config({"url": "mqtts://h/p", "qos": 0, "ca_file": "/ca.pem", "backoff_max": 5})
    assert (s.qos, s.ca_file, s.backoff_max_s, s.tls) == (0, Path("/ca.pem"), 5, True)
    with pytest.raises(ConfigError, match=r"\[mqtt\]: unknown key 'qso'; did you mean 'qos'\?"):
        settings_from_config({"url": "mqtt://h", "qso": 1})
    with pytest.raises(ConfigError, match="'url'"):
        settings_from_config({"qos": 1})
    with pytest.raises(ConfigError, match="backoff_max_s"):
        settings_from_config({"url": "mqtt://h", "backoff_initial": 10, "backoff_max": 1})


def test_mqtt_durations_follow_the_config_convention() -> None:
    """[mqtt] and URL durations take units like every other duration (they took bare seconds only)."""
    s = settings_from_config({"url": "mqtt://h/p?timeout=1500ms", "flush_timeout": "2s", "keepalive": "1m"})
    assert (s.timeout_s, s.flush_timeout_s, s.keepalive) == (1.5, 2.0, 60)
    assert settings_from_config({"url": "mqtt://h", "backoff_initial": "250ms"}).backoff_initial_s == 0.25
    assert parse_mqtt_url("mqtt://h/p?backoff_max=1m&keepalive=10").backoff_max_s == 60.0
    with pytest.raises(ConfigError, match=r"\[mqtt\] timeout: must be a positive duration, got '-2s'"):
        settings_from_config({"url": "mqtt://h", "timeout": "-2s"})
    with pytest.raises(ConfigError, match=r"\[mqtt\] keepalive: must be whole seconds"):
        settings_from_config({"url": "mqtt://h", "keepalive": "1500ms"})
    # the old unit-suffixed names point to the new ones
    with pytest.raises(ConfigError, match="did you mean 'flush_timeout'"):
        settings_from_config({"url": "mqtt://h", "flush_timeout_s": 2})


def test_buffer_matches_a_reference_model() -> None:
    rng = random.Random(7)
    buffer = DropOldestBuffer(5)
    model: list[int] = []  # reference: a plain list, keep the newest 5
    dropped = 0
    for n in range(500):
        action = rng.random()
        if action < 0.6:
            buffer.put(Outgoing("t", str(n).encode(), False))
            model.append(n)
        elif action < 0.85 and model:
            assert buffer.pop().payload == str(model.pop(0)).encode()
        elif model:  # take one and put it back, as a failed send does
            item = buffer.pop()
            buffer.put_back(item)
        if len(model) > 5:
            dropped += len(model) - 5
            model = model[-5:]
        assert [int(i.payload) for i in list(buffer._items)] == model
        assert buffer.dropped == dropped
    with pytest.raises(UsageError, match="buffer_size = 0"):
        DropOldestBuffer(0)


def test_put_back_into_a_full_buffer_drops_the_returned_item() -> None:
    buffer = DropOldestBuffer(2)
    first = Outgoing("t", b"0", False)
    buffer.put(first)
    taken = buffer.pop()  # in flight
    buffer.put(Outgoing("t", b"1", False))
    buffer.put(Outgoing("t", b"2", False))
    buffer.put_back(taken)  # the oldest record is the one that failed: it is the one dropped
    assert [i.payload for i in buffer._items] == [b"1", b"2"] and buffer.dropped == 1


def test_encode_adds_schema_and_writes_nan_as_null() -> None:
    record = {"type": "metrics", "deid": {"leak_rate": np.float64(0.25), "n": np.int64(3)}, "v": np.arange(2)}
    expected = {"schema": 1, "type": "metrics", "deid": {"leak_rate": 0.25, "n": 3}, "v": [0, 1]}
    assert json.loads(encode(record)) == expected
    # one stray NaN used to abort an MQTT run (exit 5) while the JSON Lines log wrote null: now null everywhere
    assert json.loads(encode({"type": "metrics", "x": float("nan")}))["x"] is None
    with pytest.raises(SinkError, match="metrics"):
        encode({"type": "metrics", "x": object()})


def test_sink_validation_and_misuse() -> None:
    settings = MqttSettings(host="127.0.0.1", port=1)
    with pytest.raises(ConfigError, match="stream_id = 'a/b'"):
        MqttSink(settings, stream_id="a/b")
    with pytest.raises(ConfigError, match="stream_id = 'a#'"):
        MqttSink(settings, stream_id="a#")
    with pytest.raises(UsageError, match="buffer_size = -1"):
        MqttSink(settings, stream_id="cam", buffer_size=-1)
    with pytest.raises(ConfigError, match="ca_file"):
        MqttSink(parse_mqtt_url("mqtts://h/p?ca=/nonexistent/ca.pem"), stream_id="cam")
    sink = MqttSink(settings, stream_id="cam")
    assert sink.topic("alert") == "streameval/cam/alerts" and sink.topic("report") == "streameval/cam/report"

    async def misuse() -> None:
        with pytest.raises(SinkError, match="outside"):
            await sink.publish({"type": "metrics"})
        async with MqttSink(settings, stream_id="cam") as opened:
            with pytest.raises(SinkError, match="'frame'"):
                await opened.publish({"type": "frame"})
            record: dict[str, Any] = {"type": "metrics", "x": object()}  # inf would be null, like in the log
            with pytest.raises(SinkError):
                await opened.publish(record)
            assert opened.stats.accepted == 0

    asyncio.run(asyncio.wait_for(misuse(), 30))


def test_missing_aiomqtt_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiomqtt", None)  # makes `import aiomqtt` raise ImportError

    async def enter() -> None:
        async with MqttSink(MqttSettings(host="127.0.0.1"), stream_id="cam"):
            pass

    with pytest.raises(MissingExtraError, match=r"streameval\[mqtt\]"):
        asyncio.run(enter())
