"""A controllable clock and loopback network senders for source tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Sequence


class FakeClock:
    """Time moves only when the decoder waits: pacing can be checked exactly, without real sleeps."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.waits: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        with self._lock:
            self.waits.append(seconds)
            self._now += max(seconds, 0.0)
        return stop.is_set()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _send_paced(send: object, data: bytes, seconds: float, stop: threading.Event, chunk: int = 1316) -> None:
    """Call ``send(chunk)`` so that ``data`` goes out evenly over ``seconds`` (the stream's own duration)."""
    assert callable(send)
    start = time.monotonic()
    for offset in range(0, len(data), chunk):
        if stop.is_set():
            return
        due = start + seconds * offset / len(data)
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send(data[offset : offset + chunk])


class UdpSender:
    """Sends MPEG-TS bursts to 127.0.0.1:port from a background thread: ``(bytes, seconds, pause_after)``."""

    def __init__(self, port: int, bursts: Sequence[tuple[bytes, float, float]]) -> None:
        self.port = port
        self.bursts = list(bursts)
        self.stop = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udp-sender", daemon=True)

    def start(self) -> UdpSender:
        self._thread.start()
        return self

    def _run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for data, seconds, pause in self.bursts:
                _send_paced(lambda b: sock.sendto(b, ("127.0.0.1", self.port)), data, seconds, self.stop)
                if self.stop.wait(pause):
                    break
        self.done.set()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(5.0)


class TcpServer:
    """Serves one MPEG-TS payload per accepted connection, paced, then closes that connection (EOF)."""

    def __init__(self, payloads: Sequence[tuple[bytes, float]]) -> None:
        self.payloads = list(payloads)
        self.stop = threading.Event()
        self.served = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._run, name="tcp-server", daemon=True)

    def start(self) -> TcpServer:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self.stop.is_set() and self.served < len(self.payloads):
                try:
                    conn, _ = self._listener.accept()
                except TimeoutError:
                    continue
                data, seconds = self.payloads[self.served]
                with conn, contextlib.suppress(OSError):
                    _send_paced(conn.sendall, data, seconds, self.stop, chunk=4096)
                self.served += 1
        finally:
            self._listener.close()  # from now on connections are refused

    def close(self) -> None:
        self.stop.set()
        self._thread.join(5.0)
