"""A real mosquitto broker for tests: its own process, generated config, loopback only, in tmp_path.

Import the fixture into a test module (``from tests.mqtt_broker import mosquitto``). Without the mosquitto binary
the tests are skipped, unless STREAMEVAL_REQUIRE_MOSQUITTO=1 (set it in CI) turns that into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HOST = "127.0.0.1"


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


class Mosquitto:
    """One broker on a fixed loopback port; ``stop``/``start`` again reuse the port and the persistence file."""

    def __init__(
        self,
        binary: str,
        workdir: Path,
        port: int,
        *,
        password_file: Path | None = None,
        listener_options: Sequence[str] = (),
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.password_file = password_file
        self.listener_options = list(listener_options)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "mosquitto.log"

    def url(self, prefix: str = "test", *, userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"mqtt://{at}{HOST}:{self.port}/{prefix}"

    def _config(self) -> Path:
        lines = [
            f"listener {self.port} {HOST}",
            *self.listener_options,
            "persistence true",  # sessions and retained messages survive a restart
            f"persistence_location {self.workdir}/",
            "log_type all",
        ]
        if self.password_file is None:
            lines.append("allow_anonymous true")
        else:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        if os.geteuid() == 0:
            lines.append("user root")  # else mosquitto drops to a user that cannot write in tmp_path
        path = self.workdir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, timeout: float = 10.0) -> None:
        config = self._config()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([self.binary, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}:\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s")
            time.sleep(0.02)

    def stop(self) -> None:
        """Graceful stop (SIGTERM): clients see the connection close, the broker saves its sessions."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


def _broker(
    tmp_path: Path, password_file: Path | None = None, listener_options: Sequence[str] = ()
) -> Iterator[Mosquitto]:
    binary = find_mosquitto()
    if binary is None:
        if os.environ.get("STREAMEVAL_REQUIRE_MOSQUITTO") == "1":
            pytest.fail("mosquitto is required (STREAMEVAL_REQUIRE_MOSQUITTO=1) but not installed")
        pytest.skip("mosquitto not installed (apt-get install mosquitto)")
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    last_error: Exception | None = None
    for _ in range(3):  # another process may grab the free port between probe and bind
        broker = Mosquitto(binary, workdir, free_port(), password_file=password_file, listener_options=listener_options)
        try:
            broker.start()
        except RuntimeError as exc:
            last_error = exc
            continue
        try:
            yield broker
        finally:
            broker.stop()
        return
    raise RuntimeError(f"could not start mosquitto: {last_error}")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running anonymous broker."""
    yield from _broker(tmp_path)


@pytest.fixture
def mosquitto_auth(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running broker that only accepts user ``eval`` with password ``s3cret:/@``."""
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd not installed")
    password_file = tmp_path / "passwords"
    subprocess.run([tool, "-b", "-c", str(password_file), "eval", "s3cret:/@"], check=True, capture_output=True)
    yield from _broker(tmp_path, password_file)


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(directory: Path) -> Pki:
    """A throw-away CA with a server certificate for 127.0.0.1 and a client certificate (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def sh(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=directory)

    sh("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=streameval test CA",
       "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    for name, san in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        (directory / f"{name}.ext").write_text(f"basicConstraints=CA:FALSE\n{san}\n")
        sh("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        sh("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
           "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")  # fmt: skip
    return Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )


@pytest.fixture
def mosquitto_tls(tmp_path: Path) -> Iterator[tuple[Mosquitto, Pki]]:
    """A broker that speaks only TLS and requires a client certificate signed by the test CA."""
    pki = make_pki(tmp_path / "pki")
    options = [
        f"cafile {pki.ca}",
        f"certfile {pki.server_cert}",
        f"keyfile {pki.server_key}",
        "require_certificate true",
    ]
    for broker in _broker(tmp_path, listener_options=options):
        yield broker, pki


# -- async helpers for tests (aiomqtt is the subscriber) -----------------------------------------------------------


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


class Subscriber:
    """Collects (topic, decoded JSON, retain flag) from a broker in a background task."""

    def __init__(
        self,
        broker: Mosquitto,
        topic: str,
        *,
        identifier: str | None = None,
        clean: bool = True,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        import aiomqtt

        self.topic = topic
        self.messages: list[tuple[str, Any, bool]] = []
        self.qos: list[int] = []  # delivery QoS of each message: min(publisher's, subscription's 1)
        self._client = aiomqtt.Client(
            HOST, broker.port, identifier=identifier, clean_session=clean, timeout=5, tls_context=tls_context
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Subscriber:
        await self._client.__aenter__()
        await self._client.subscribe(self.topic, qos=1)
        self._task = asyncio.create_task(self._collect(), name="test-subscriber")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        import aiomqtt

        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(None, None, None)

    async def _collect(self) -> None:
        import aiomqtt

        with contextlib.suppress(aiomqtt.MqttError):  # the broker went away: stop collecting
            async for message in self._client.messages:
                payload = message.payload
                assert isinstance(payload, bytes | bytearray)
                self.messages.append((str(message.topic), json.loads(payload), bool(message.retain)))
                self.qos.append(int(message.qos))

    async def sync(self) -> None:
        """A SUBACK round trip: the broker has now processed our earlier PUBACKs (one TCP stream, in order), so a
        broker stopped after this will not redeliver what we already received."""
        await self._client.subscribe("streameval-test/sync", qos=1)

    def on(self, suffix: str) -> list[Any]:
        """Payloads received on topics ending with ``suffix``."""
        return [payload for topic, payload, _ in self.messages if topic.endswith(suffix)]

    async def wait_for(self, suffix: str, count: int, timeout: float = 10.0) -> list[Any]:
        await eventually(lambda: len(self.on(suffix)) >= count, timeout, f"{count} messages on *{suffix}")
        return self.on(suffix)
