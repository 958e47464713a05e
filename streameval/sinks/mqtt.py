"""Publish records to an MQTT broker (aiomqtt), surviving a broker that is down or restarting.

Topics: ``<prefix>/<stream_id>/metrics``, ``/alerts``, ``/status`` (retained, with an ``offline`` Last Will) and
``/report`` (retained). ``publish`` only encodes the record and appends it to a bounded buffer; a named background
task owns the connection, sends the buffer in order, reconnects with exponential backoff and, on overflow, drops
the oldest records and counts them. A record leaves the buffer only once the broker has acknowledged it (QoS 1/2),
so every record is either delivered or counted (``stats.dropped`` on overflow, ``stats.abandoned`` at close).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import ssl
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import ModuleType, TracebackType
from typing import Any, Final, Self

from streameval.errors import ConfigError, MissingExtraError, SinkError
from streameval.sinks.base import SCHEMA_VERSION, Record
from streameval.sinks.mqtt_buffer import DropOldestBuffer, Outgoing
from streameval.sinks.mqtt_settings import MqttSettings, parse_mqtt_url, settings_from_config, validate_topic_part

__all__ = ["MqttSettings", "MqttSink", "MqttStats", "parse_mqtt_url", "settings_from_config"]

logger = logging.getLogger(__name__)


class _DemoteToDebug(logging.Filter):
    """paho logs every failed socket read as ERROR; during an outage that repeats on each retry. The sink logs
    the outage once at WARNING itself, so paho's messages are demoted to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logger.isEnabledFor(logging.DEBUG)


_client_logger = logger.getChild("paho")
_client_logger.addFilter(_DemoteToDebug())

# record type -> topic suffix
TOPICS: Final[dict[str, str]] = {"metrics": "metrics", "alert": "alerts", "status": "status", "report": "report"}
_RETAINED: Final = frozenset({"status", "report"})
MAX_TOPIC_BYTES: Final = 65_535  # a topic is a UTF-8 string with a 16-bit length (MQTT 3.1.1, 1.5.3)
# CONNACK return codes of a refused login: 4 bad user name or password, 5 not authorised (MQTT 3.1.1, 3.2.2.3)
_AUTH_CODES: Final = frozenset({4, 5, 134, 135})


@dataclass(frozen=True, slots=True)
class MqttStats:
    """Counters since the sink was opened. accepted = sent + dropped + abandoned + buffered (+1 in flight)."""

    connected: bool
    accepted: int
    sent: int
    dropped: int
    buffered: int
    abandoned: int
    connects: int
    failures: int
    last_error: str | None


def _import_aiomqtt() -> ModuleType:
    try:
        import aiomqtt
    except ImportError as exc:
        raise MissingExtraError("mqtt", "aiomqtt", "Publishing to MQTT") from exc
    return aiomqtt


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays (or anything with ``item``/``tolist``) as plain Python values."""
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            return convert()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode(record: Mapping[str, Any]) -> bytes:
    """Compact JSON with the schema version; NaN/inf are refused (undefined values must be None)."""
    body = {"schema": SCHEMA_VERSION, **record}
    try:
        return json.dumps(body, allow_nan=False, separators=(",", ":"), default=_jsonable).encode()
    except (TypeError, ValueError) as exc:
        raise SinkError(f"record of type {record.get('type')!r} cannot be sent as JSON: {exc}") from exc


def _is_auth_failure(exc: BaseException) -> bool:
    """True when the broker refused the login (not when it could not be reached)."""
    rc = getattr(exc, "rc", None)
    code = getattr(rc, "value", rc)
    return isinstance(code, int) and code in _AUTH_CODES


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    """The TLS context for ``mqtts``; file problems surface here, at start-up, as ConfigError."""
    if not settings.tls:
        return None
    try:
        context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
        if settings.cert_file is not None:
            context.load_cert_chain(str(settings.cert_file), str(settings.key_file) if settings.key_file else None)
    except (OSError, ssl.SSLError) as exc:
        files = f"ca_file={settings.ca_file}, cert_file={settings.cert_file}, key_file={settings.key_file}"
        raise ConfigError(f"mqtt TLS ({files}): {exc}") from exc
    if settings.tls_insecure:
        context.check_hostname = False  # still verifies the chain; only the host name is not checked
    return context


class MqttSink:
    """``async with MqttSink(settings, stream_id="cam1") as sink: await sink.publish(record)``."""

    def __init__(self, settings: MqttSettings, *, stream_id: str, buffer_size: int = 1000) -> None:
        if len(stream_id.encode("utf-8")) > MAX_TOPIC_BYTES:
            raise ConfigError(f"stream_id: {len(stream_id.encode('utf-8'))} bytes, too long for an MQTT topic")
        validate_topic_part("stream_id", stream_id)
        if "/" in stream_id:
            raise ConfigError(f"stream_id = {stream_id!r}: must be a single topic level (no '/')")
        self.settings = settings
        self.stream_id = stream_id
        longest = max((self.topic(kind) for kind in TOPICS), key=lambda t: len(t.encode("utf-8")))
        if len(longest.encode("utf-8")) > MAX_TOPIC_BYTES:
            # paho would refuse it on every (re)connect; say so once, at the start
            raise ConfigError(
                f"mqtt topic {longest[:60]!r}... is {len(longest.encode('utf-8'))} bytes; MQTT allows "
                f"{MAX_TOPIC_BYTES} (shorten the prefix or --stream-id)"
            )
        self._buffer = DropOldestBuffer(buffer_size)
        self._tls = tls_context(settings)
        self._client_id = settings.client_id or f"streameval-{stream_id}-{secrets.token_hex(4)}"
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._closing = False
        self._deadline = float("inf")
        self._inflight: Outgoing | None = None
        self._connected = False
        self._accepted = self._sent = self._abandoned = self._connects = self._failures = 0
        self._dropped_seen = 0  # dropped count already known to the log
        self._dropped_at_connect = 0
        self._last_error: str | None = None

    def topic(self, record_type: str) -> str:
        """The topic of a record type (``metrics``, ``alert``, ``status``, ``report``)."""
        return f"{self.settings.prefix}/{self.stream_id}/{TOPICS[record_type]}"

    @property
    def stats(self) -> MqttStats:
        return MqttStats(
            connected=self._connected,
            accepted=self._accepted,
            sent=self._sent,
            dropped=self._buffer.dropped,
            buffered=len(self._buffer) + (self._inflight is not None),
            abandoned=self._abandoned,
            connects=self._connects,
            failures=self._failures,
            last_error=self._last_error,
        )

    async def __aenter__(self) -> Self:
        if self._task is not None:
            raise SinkError("MqttSink is not reentrant and cannot be reopened")
        aiomqtt = _import_aiomqtt()
        self._task = asyncio.create_task(self._run(aiomqtt), name=f"streameval-mqtt-publisher[{self.stream_id}]")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task = self._task
        if task is None:
            return
        loop = asyncio.get_running_loop()
        self._closing = True
        self._deadline = loop.time() + self.settings.flush_timeout_s
        self._wakeup.set()
        # The task stops by itself at the deadline; the margin covers one publish and the disconnect.
        grace = self.settings.flush_timeout_s + 2 * self.settings.timeout_s + 1.0
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=grace)
        except TimeoutError:
            logger.warning("MQTT publisher did not stop within %.1f s; cancelling it", grace)
        except asyncio.CancelledError:
            if not task.cancelled():  # we are cancelled ourselves; abandon() cancels only the publisher
                raise
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._abandoned += len(self._buffer) + (self._inflight is not None)
        while self._buffer:
            self._buffer.pop()
        self._inflight = None
        if self._abandoned:
            logger.warning("MQTT: %d records could not be sent before closing", self._abandoned)

    def abandon(self) -> None:
        """Stop waiting for the broker now (a second interrupt): what is still buffered is counted as abandoned."""
        if self._task is None or self._task.done():
            return
        self._closing = True
        self._deadline = 0.0
        self._task.cancel()

    async def publish(self, record: Record) -> None:
        """Queue a record; returns at once and never raises for broker trouble (see ``stats``)."""
        if self._task is None or self._closing:
            raise SinkError("MqttSink.publish() called outside its 'async with' block")
        kind = record.get("type")
        if kind not in TOPICS:
            raise SinkError(f"record type {kind!r}: expected one of {', '.join(TOPICS)}")
        if kind == "status":
            record = {"state": "online", **record, "mqtt": self._counters()}
        self._buffer.put(Outgoing(self.topic(kind), encode(record), kind in _RETAINED))
        self._accepted += 1
        if self._buffer.dropped > self._dropped_seen:
            if self._dropped_seen == self._dropped_at_connect:  # first drop since the last (re)connect
                logger.warning(
                    "MQTT buffer full (%d records): dropping the oldest (%d dropped so far)",
                    self._buffer.capacity,
                    self._buffer.dropped,
                )
            self._dropped_seen = self._buffer.dropped
        self._wakeup.set()

    # -- background publisher -------------------------------------------------------------------------------------

    def _counters(self) -> dict[str, Any]:
        stats = asdict(self.stats)
        del stats["last_error"]
        return stats

    def _status(self, state: str, reason: str | None = None) -> bytes:
        body: dict[str, Any] = {"type": "status", "stream_id": self.stream_id, "state": state, "time": time.time()}
        if reason is not None:
            body["reason"] = reason
        body["mqtt"] = self._counters()
        return encode(body)

    def _make_client(self, aiomqtt: ModuleType) -> Any:
        s = self.settings
        will_body = {"type": "status", "stream_id": self.stream_id, "state": "offline", "reason": "connection lost"}
        return aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            identifier=self._client_id,
            will=aiomqtt.Will(self.topic("status"), encode(will_body), qos=s.qos, retain=True),
            keepalive=s.keepalive,
            timeout=s.timeout_s,
            tls_context=self._tls,
            logger=_client_logger,
        )

    async def _run(self, aiomqtt: ModuleType) -> None:
        loop = asyncio.get_running_loop()
        delay = self.settings.backoff_initial_s
        # Closing while disconnected: keep trying until the flush deadline, but only if there is something to flush.
        while not (self._closing and (not self._buffer or loop.time() >= self._deadline)):
            try:
                async with self._make_client(aiomqtt) as client:
                    self._connected = True
                    self._connects += 1
                    self._dropped_at_connect = self._dropped_seen = self._buffer.dropped
                    delay = self.settings.backoff_initial_s
                    logger.info(
                        "MQTT connected to %s (%d buffered, %d dropped so far)",
                        self.settings.describe(),
                        len(self._buffer),
                        self._buffer.dropped,
                    )
                    await self._session(aiomqtt, client)
                    return
            except Exception as exc:  # the broker must never take the evaluator down: log and retry
                if not isinstance(exc, aiomqtt.MqttError | OSError):
                    logger.error("MQTT publisher: unexpected %s; retrying", type(exc).__name__, exc_info=exc)
                self._on_failure(exc)
            finally:
                self._connected = False
            pause = min(delay, max(0.0, self._deadline - loop.time()))
            await self._sleep_or_close(pause)
            delay = min(delay * 2, self.settings.backoff_max_s)

    def _on_failure(self, exc: Exception) -> None:
        was_connected = self._connected
        first = self._failures == 0 or was_connected
        self._failures += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        if _is_auth_failure(exc) and first:
            logger.warning(
                "MQTT authentication failed at %s (%s): check the user name and password; buffering up to %d "
                "records and retrying with backoff up to %g s",
                self.settings.describe(),
                self._last_error,
                self._buffer.capacity,
                self.settings.backoff_max_s,
            )
        elif first:
            what = "lost connection to" if was_connected else "cannot reach"
            logger.warning(
                "MQTT %s %s (%s); buffering up to %d records and retrying with backoff up to %g s",
                what,
                self.settings.describe(),
                self._last_error,
                self._buffer.capacity,
                self.settings.backoff_max_s,
            )
        else:
            logger.debug("MQTT reconnect to %s failed: %s", self.settings.describe(), self._last_error)

    async def _sleep_or_close(self, seconds: float) -> None:
        """Back off, but wake up when the sink is closing so shutdown does not wait out a long backoff."""
        if self._closing:
            await asyncio.sleep(seconds)
            return
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing_signal(), timeout=seconds)

    async def _closing_signal(self) -> None:
        while not self._closing:
            await self._wakeup.wait()
            self._wakeup.clear()

    async def _session(self, aiomqtt: ModuleType, client: Any) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        watcher = asyncio.create_task(self._watch(client), name=f"streameval-mqtt-watch[{self.stream_id}]")
        try:
            online = client.publish(self.topic("status"), self._status("online"), qos=s.qos, retain=True)
            await self._race(asyncio.ensure_future(online), watcher, aiomqtt)
            while True:
                if self._closing and (not self._buffer or loop.time() >= self._deadline):
                    offline = client.publish(
                        self.topic("status"), self._status("offline", "closed"), qos=s.qos, retain=True
                    )
                    await self._race(asyncio.ensure_future(offline), watcher, aiomqtt)
                    return
                if not self._buffer:
                    self._wakeup.clear()
                    await self._race(asyncio.ensure_future(self._wakeup.wait()), watcher, aiomqtt)
                    continue
                item = self._inflight = self._buffer.pop()
                try:
                    send = client.publish(item.topic, item.payload, qos=s.qos, retain=item.retain)
                    await self._race(asyncio.ensure_future(send), watcher, aiomqtt)
                except BaseException:
                    self._buffer.put_back(item)  # not acknowledged: send it again after reconnecting
                    raise
                finally:
                    self._inflight = None
                self._sent += 1
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await watcher

    @staticmethod
    async def _watch(client: Any) -> None:
        """Returns (by raising MqttError) when the connection drops; we subscribe to nothing."""
        async for _ in client.messages:
            pass

    @staticmethod
    async def _race(work: asyncio.Future[Any], watcher: asyncio.Task[None], aiomqtt: ModuleType) -> None:
        """Await ``work`` unless the connection drops first, so no call waits out its timeout on a dead socket."""
        try:
            done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            work.cancel()
            raise
        if work in done:
            work.result()
            return
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await work
        watcher.result()  # raises the disconnection error
        raise aiomqtt.MqttError("Disconnected")
