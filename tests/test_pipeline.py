"""Pipeline: backpressure in replay, bounded lag with drop-oldest in live, analyser failures, stop requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from streameval.analysis.base import Observation
from streameval.errors import UsageError
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


class MarkingStage:
    """A stand-in face stage: marks each pair (a fake ``faces`` value) and records what it saw."""

    name = "faces"

    def __init__(self, rate: float | None = None, seconds: float = 0.0) -> None:
        self.rate = rate
        self.seconds = seconds
        self.seen: list[int] = []
        self.closed = False

    def process(self, pair: FramePair) -> tuple[FramePair, Observation]:
        time.sleep(self.seconds)
        self.seen.append(pair.source.index)
        marked = FramePair(pair.source, pair.deid, pair.t, faces=("marked", pair.source.index))  # type: ignore[arg-type]
        return marked, Observation(self.name, pair.t, {"index": pair.source.index})

    def close(self) -> None:
        self.closed = True


class FaceReader(SlowAnalyser):
    needs_faces = True

    def analyse(self, pair: FramePair) -> Observation:
        assert pair.faces == ("marked", pair.source.index), "a face lane got a pair the stage had not marked"
        return super().analyse(pair)


def make_staged(stage: MarkingStage, analysers: list[Any], *, n: int = 50) -> tuple[Pipeline, Sink, Windower]:
    sink = Sink()
    windower = Windower([HealthMetric(1.0)], WindowConfig(window=1.0, hop=0.5))
    pipe = Pipeline(
        source=frames(n, 25.0, paced=False),
        deid=frames(n, 25.0, paced=False),
        pairer=Pairer(PairingConfig(tolerance=0.02)),
        analysers=analysers,
        windower=windower,
        sinks=[sink],
        config=PipelineConfig(queue_size=2),
        face_stage=stage,
    )
    return pipe, sink, windower


def test_face_lanes_only_get_pairs_through_the_stage() -> None:
    stage = MarkingStage(rate=5.0, seconds=0.002)  # every 5th pair at 25 fps
    reader = FaceReader("reader", 0.004)
    direct = SlowAnalyser("direct", 0.0)
    pipe, _, windower = make_staged(stage, [reader, direct])
    result = asyncio.run(pipe.run())
    assert result.status == "complete"
    assert stage.seen == list(range(0, 50, 5)) == reader.seen  # in order, nothing lost between stage and lane
    assert direct.seen == list(range(50))  # lanes that need no faces do not wait for the stage
    assert stage.closed
    health = windower.totals()["health"]
    assert health["analysed"] == {"faces": 10, "reader": 10, "direct": 50}


def test_face_analyser_without_a_stage_is_refused() -> None:
    with pytest.raises(UsageError, match="face stage"):
        make([FaceReader("reader", 0.0)], live=False, policy="block")


def test_live_run_names_the_lane_that_cannot_keep_up(caplog: pytest.LogCaptureFixture) -> None:
    slow = SlowAnalyser("slow", 0.06)  # 25 pairs a second need 1.5 s of work per second
    quick = SlowAnalyser("quick", 0.0)
    pipe, _, _ = make([slow, quick], live=True, policy="drop-oldest", n=125, queue=2)
    with caplog.at_level("WARNING", logger="streameval.pipeline"):
        asyncio.run(pipe.run())
    assert pipe.budget is not None and pipe.budget.limiting.name == "slow"
    assert pipe.budget.lanes[0].load == pytest.approx(1.5, rel=0.3)
    assert any("slow lane limits throughput" in r.getMessage() for r in caplog.records)


class Picky(SlowAnalyser):
    """Wants only the pairs of its second second of stream."""

    def wants(self, t: float) -> bool:
        return 1.0 <= t < 2.0


def test_pairs_an_analyser_does_not_want_are_never_queued() -> None:
    picky = Picky("picky", 0.0)
    pipe, _, windower = make([picky], live=True, policy="drop-oldest", n=75, queue=1)
    asyncio.run(pipe.run())
    assert picky.seen == list(range(25, 50))  # 25 fps: frames 25-49
    health = windower.totals()["health"]
    assert health["analysed"] == {"picky": 25} and health["dropped"] == 0


class NiceProbe(SlowAnalyser):
    """Records the CPU priority (nice value) of the thread its lane runs it in."""

    def __init__(self, name: str, background: bool) -> None:
        super().__init__(name, 0.0)
        self.background = background
        self.nice: set[int] = set()

    def analyse(self, pair: FramePair) -> Observation:
        import os
        import threading

        self.nice.add(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return super().analyse(pair)


def test_background_lane_runs_at_lower_cpu_priority() -> None:
    import os

    from streameval.analysis.reality import RealityAnalyser
    from streameval.pipeline import BACKGROUND_NICE

    assert RealityAnalyser.background is True  # the I3D lane is the one that yields
    base = os.getpriority(os.PRIO_PROCESS, 0)
    front, back = NiceProbe("front", background=False), NiceProbe("back", background=True)
    pipe, _, _ = make([front, back], live=False, policy="block", n=20)
    assert asyncio.run(pipe.run()).status == "complete"
    assert front.nice == {base}
    assert back.nice == {min(19, base + BACKGROUND_NICE)}  # Linux caps nice at 19
    assert back.seen == front.seen == list(range(20))  # priority changes timing, never what is analysed
