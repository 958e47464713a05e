"""Live operation against real network streams produced locally (MPEG-TS over loopback TCP).

Covers the live acceptance of the foundation and the live hardening: ``streameval run`` end to end, a slow
analyser with ``drop-oldest`` (bounded lag, counted drops), a source that drops and comes back, a de-identified
stream lagging seconds behind, and one stream stalling while the other goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from streameval import evaluation
from streameval.analysis.base import Observation
from streameval.config import load_config
from streameval.frames import FramePair
from streameval.metrics.base import Metric
from tests.sources.fakes import _send_paced
from tests.videos import mpegts_bytes

FPS = 25


class StreamServer:
    """Serves MPEG-TS over TCP: connection k gets ``payloads[k] = (delay_s, frames, first_index)``, paced in real
    time after ``delay_s``, then EOF. After the last payload the port refuses connections."""

    def __init__(self, payloads: Sequence[tuple[float, int, int]]) -> None:
        self.payloads = [(delay, mpegts_bytes(n, fps=FPS, first=first), n / FPS) for delay, n, first in payloads]
        self.stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"tcp://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            for delay, data, seconds in self.payloads:
                while not self.stop.is_set():
                    try:
                        conn, _ = self._listener.accept()
                        break
                    except TimeoutError:
                        continue
                else:
                    return
                with conn, contextlib.suppress(OSError):
                    if self.stop.wait(delay):
                        return
                    _send_paced(conn.sendall, data, seconds, self.stop, chunk=4096)
        finally:
            self._listener.close()

    def __enter__(self) -> StreamServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(5.0)


def run_live(source: str, deid: str, tmp_path: Path, *, stop_after: float | None, **settings: Any) -> dict[str, Any]:
    """evaluate() in live mode; stop (as SIGINT would) after ``stop_after`` seconds; returns the report."""
    config = load_config(
        None,
        {"source": source, "deid": deid, "live": True, "log": str(tmp_path / "log.jsonl"),
         "report": str(tmp_path / "report.json"), "read_timeout": 2.0, **settings},
    )  # fmt: skip

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()
        if stop_after is not None:
            asyncio.get_running_loop().call_later(stop_after, stop.set)
        return await evaluation.evaluate(config, stop=stop)

    return asyncio.run(asyncio.wait_for(main(), 60))


def records(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]


def test_streameval_run_on_live_tcp_streams(tmp_path: Path) -> None:
    with StreamServer([(0.0, 100, 0)]) as src, StreamServer([(0.0, 100, 0)]) as deid:
        proc = subprocess.run(
            [sys.executable, "-m", "streameval.cli", "-q", "run", src.url, deid.url, "--no-reconnect",
             "--window", "1s", "--hop", "1s", "--log", str(tmp_path / "log.jsonl"),
             "--report", str(tmp_path / "report.json")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "complete" and report["config"]["policy"] == "drop-oldest"
    assert report["inputs"]["source"]["live"] and report["inputs"]["source"]["stats"]["end_reason"] == "eof"
    # 100 frames each; the decoder syncs on the first keyframe (GOP 5), so up to 4 leading frames may go, and a
    # loaded machine may drop a few more (live sources drop rather than lag, and count it).
    assert report["pairing"]["paired"] >= 80, report["pairing"]
    health = report["totals"]["health"]
    # Stated bound: the pixel analyser keeps up with 25 fps, so a pair is analysed within 0.5 s of its arrival.
    assert health["lag_max_s"] < 0.5
    metrics = [r for r in records(tmp_path) if r["type"] == "metrics"]
    assert len(metrics) >= 3 and all(r["health"]["lag_max_s"] < 0.5 for r in metrics if r["health"]["paired"])


class SlowFamily:
    """A deliberately slow analyser (0.1 s per pair, i.e. 10 pairs/s against a 25 fps stream)."""

    class Analyser:
        name = "slow"
        rate = None

        def analyse(self, pair: FramePair) -> Observation:
            time.sleep(0.1)
            return Observation("slow", pair.t, {})

        def close(self) -> list[Observation]:
            return []

    @classmethod
    def factory(cls, config: Any) -> tuple[list[Any], list[Metric]]:
        return [cls.Analyser()], []


@pytest.fixture
def slow_family(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(evaluation.FAMILIES, "slow", SlowFamily.factory)
    yield


def test_slow_analyser_with_drop_oldest_keeps_lag_bounded(tmp_path: Path, slow_family: None) -> None:
    with StreamServer([(0.0, 100, 0)]) as src, StreamServer([(0.0, 100, 0)]) as deid:
        report = run_live(src.url, deid.url, tmp_path, stop_after=None, metrics=["slow"], reconnect=False,
                          queue_size=2, window=1.0, hop=1.0)  # fmt: skip
    health = report["totals"]["health"]
    paired = report["pairing"]["paired"]
    assert paired >= 80
    assert health["analysed"]["slow"] + health["dropped"] == paired  # every pair analysed or counted as dropped
    assert health["dropped"] >= paired // 2  # it can do 10 of 25 pairs per second
    # Stated bound: (queue 2 + 1 in flight) x 0.1 s + one frame interval, plus 0.25 s of scheduling slack.
    assert health["lag_max_s"] < 3 * 0.1 + 1 / FPS + 0.25


def test_source_drops_and_comes_back(tmp_path: Path) -> None:
    # The original stream breaks after 2 s and comes back 1.5 s later; the de-identified one runs throughout.
    with StreamServer([(0.0, 50, 0), (1.5, 50, 100)]) as src, StreamServer([(0.0, 200, 0)]) as deid:
        # stop well after the comeback: on a loaded machine the reconnect and the records after it come late
        report = run_live(src.url, deid.url, tmp_path, stop_after=10.5, window=1.0, hop=0.5)
    stats = report["inputs"]["source"]["stats"]
    assert report["status"] == "interrupted"
    assert stats["reconnects"] >= 1 and stats["gaps"] >= 1 and stats["gap_seconds"] > 1.0
    pairing = report["pairing"]
    assert pairing["paired"] >= 75  # before and after the outage (less keyframe sync and counted live drops)
    assert pairing["unpaired_deid"] >= 25  # the de-identified frames shown while the original was away
    metrics = [r for r in records(tmp_path) if r["type"] == "metrics"]
    outage = [r for r in metrics if r["health"]["unpaired_deid"] > 0]
    after = [r for r in metrics if r["window"]["start"] > outage[-1]["window"]["end"] and r["health"]["paired"]]
    assert outage and after  # health showed the outage, and pairing resumed after it
    assert metrics[-1]["health"]["source_stream"]["reconnects"] >= 1


def test_deid_stream_lagging_seconds_behind(tmp_path: Path) -> None:
    # The de-identifier delivers the same stream 2 s late: frames pair up, and the lag is reported.
    with StreamServer([(0.0, 100, 0)]) as src, StreamServer([(2.0, 100, 0)]) as deid:
        report = run_live(src.url, deid.url, tmp_path, stop_after=None, reconnect=False, max_pending=128)
    assert report["pairing"]["paired"] >= 80, report["pairing"]
    assert report["pairing"]["forced_unpaired"] == 0, report["pairing"]
    health = report["totals"]["health"]
    assert 1.5 < health["lag_s"] < 3.0, health  # source frames wait ~2 s for their partner


def test_one_stream_stalls_the_other_goes_on(tmp_path: Path) -> None:
    # The de-identified stream goes silent after 1.6 s (no EOF); the original keeps running for 5 s.
    with StreamServer([(0.0, 125, 0)]) as src, StreamServer([(0.0, 40, 0), (60.0, 1, 0)]) as deid:
        report = run_live(src.url, deid.url, tmp_path, stop_after=6.0, window=1.0, hop=0.5, max_pending=25)
    pairing = report["pairing"]
    assert pairing["paired"] >= 20  # of 40 sent before the stall (keyframe sync and live drops under load)
    assert pairing["unpaired_source"] >= 50 and pairing["forced_unpaired"] >= 50  # released, not held forever
    metrics = [r for r in records(tmp_path) if r["type"] == "metrics"]
    late = [r for r in metrics if r["window"]["end"] > 3.0]
    assert late, "records kept coming while one stream was stalled"
    assert all(r["health"]["paired"] == 0 and r["health"]["unpaired_source"] > 0 for r in late[1:])


def test_give_up_after_ends_a_run_whose_stream_never_comes(tmp_path: Path) -> None:
    with StreamServer([(0.0, 250, 0)]) as src:
        dead = socket.create_server(("127.0.0.1", 0))
        port = dead.getsockname()[1]
        dead.close()  # nothing listens there: every connection attempt is refused
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "streameval.cli", "-q", "run", src.url, f"tcp://127.0.0.1:{port}",
             "--give-up-after", "2s", "--read-timeout", "1s", "--log", str(tmp_path / "log.jsonl"),
             "--report", str(tmp_path / "report.json")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert proc.returncode == 3, proc.stderr  # an input error: the de-identified stream never came
    assert "127.0.0.1" in proc.stderr and "Traceback" not in proc.stderr
    assert elapsed < 15  # gave up after ~2 s of retries instead of waiting for the 10 s stream
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "failed" and report["inputs"]["deid"]["stats"]["reconnects"] >= 1
