"""Pipeline: backpressure in replay, bounded lag with drop-oldest in live, analyser failures, stop requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from streameval.analysis.base import Observation
from streameval.frames import Frame, FramePair
from streameval.metrics.health import HealthMetric
from streameval.pairing import Pairer, PairingConfig
from streameval.pipeline import Pipeline, PipelineConfig
from streameval.windows import WindowConfig, Windower


async def frames(n: int, fps: float, *, paced: bool) -> AsyncIterator[Frame]:
    start = time.monotonic()
    for i in range(n):
        if paced:  # a live source: frame i exists only at start + i / fps
            await asyncio.sleep(max(0.0, start + i / fps - time.monotonic()))
        yield Frame(np.full((4, 4, 3), i % 256, np.uint8), i / fps, i, time.monotonic())


class SlowAnalyser:
    def __init__(self, name: str, seconds: float, rate: float | None = None) -> None:
        self.name = name
        self.seconds = seconds
        self.rate = rate
        self.seen: list[int] = []

    def analyse(self, pair: FramePair) -> Observation:
        time.sleep(self.seconds)
        self.seen.append(pair.source.index)
        return Observation(self.name, pair.t, {"index": pair.source.index})

    def close(self) -> list[Observation]:
        return []


class Sink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def __aenter__(self) -> Sink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def publish(self, record: dict[str, Any]) -> None:
        self.records.append(record)


def make(analysers: list[Any], *, live: bool, policy: str, n: int = 50, fps: float = 25.0, queue: int = 2):
    sink = Sink()
    windower = Windower([HealthMetric(1.0)], WindowConfig(window=1.0, hop=0.5))
    pipe = Pipeline(
        source=frames(n, fps, paced=live),
        deid=frames(n, fps, paced=live),
        pairer=Pairer(PairingConfig(tolerance=0.5 / fps)),
        analysers=analysers,
        windower=windower,
        sinks=[sink],
        config=PipelineConfig(live=live, policy=policy, queue_size=queue),  # type: ignore[arg-type]
    )
    return pipe, sink, windower


def test_replay_block_drops_nothing_and_keeps_order() -> None:
    slow = SlowAnalyser("slow", 0.005)
    pipe, sink, windower = make([slow], live=False, policy="block")
    result = asyncio.run(pipe.run())
    assert result.status == "complete"
    assert slow.seen == list(range(50))
    health = windower.totals()["health"]
    assert health["paired"] == 50 and health["dropped"] == 0 and health["analysed"] == {"slow": 50}
    ends = [r["window"]["end"] for r in sink.records]
    assert ends == sorted(ends) and sink.records[-1]["window"]["final"]


def test_sampling_rate_per_analyser() -> None:
    every, five = SlowAnalyser("every", 0.0), SlowAnalyser("five", 0.0, rate=5.0)
    pipe, _, _ = make([every, five], live=False, policy="block", n=100)
    asyncio.run(pipe.run())
    assert len(every.seen) == 100
    assert five.seen == list(range(0, 100, 5))  # 25 fps sampled 5 times per second


def test_live_drop_oldest_bounds_lag_and_counts_drops() -> None:
    # 25 fps for 2 s into an analyser that manages 10 per second: it must fall behind without lagging.
    slow = SlowAnalyser("slow", 0.1)
    pipe, sink, windower = make([slow], live=True, policy="drop-oldest", queue=2)
    asyncio.run(pipe.run())
    health = windower.totals()["health"]
    assert health["paired"] == 50
    assert health["analysed"]["slow"] + health["dropped"] == 50  # every pair analysed or counted as dropped
    assert health["dropped"] >= 15
    # Lag bound: at most (queue + 1 in flight) analyses of 0.1 s plus one frame interval, with 0.15 s slack.
    assert health["lag_max_s"] < (2 + 1) * 0.1 + 0.04 + 0.15
    assert any(r["health"]["dropped"] > 0 for r in sink.records)


def test_live_block_lag_grows_without_drops() -> None:
    slow = SlowAnalyser("slow", 0.06)
    pipe, _, windower = make([slow], live=True, policy="block", n=40)
    asyncio.run(pipe.run())
    health = windower.totals()["health"]
    assert health["dropped"] == 0 and health["analysed"]["slow"] == 40
    assert health["lag_max_s"] > 0.5  # 40 frames at 25 fps need 2.4 s of analysis: lag builds up


def test_analyser_failure_surfaces_and_still_publishes() -> None:
    class Boom(SlowAnalyser):
        def analyse(self, pair: FramePair) -> Observation:
            if pair.source.index == 30:
                raise RuntimeError("model crashed")
            return super().analyse(pair)

    pipe, sink, windower = make([Boom("boom", 0.0)], live=False, policy="block")
    with pytest.raises(RuntimeError, match="model crashed"):
        asyncio.run(pipe.run())
    assert sink.records and sink.records[-1]["window"]["final"]
    assert windower.totals()["health"]["analysed"]["boom"] == 30


def test_stop_request_publishes_what_was_measured() -> None:
    slow = SlowAnalyser("slow", 0.0)
    pipe, sink, windower = make([slow], live=True, policy="drop-oldest", n=100)

    async def main() -> Any:
        task = asyncio.create_task(pipe.run())
        await asyncio.sleep(0.5)
        pipe.request_stop()
        return await task

    result = asyncio.run(main())
    assert result.status == "interrupted"
    paired = windower.totals()["health"]["paired"]
    assert 5 < paired < 100
    assert sink.records[-1]["window"]["final"]
