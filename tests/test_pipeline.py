"""Pipeline: backpressure in replay, bounded lag with drop-oldest in live, analyser failures, stop requests."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from streameval.analysis.base import Deferred, Observation
from streameval.errors import UsageError
from streameval.frames import Frame, FramePair
from streameval.metrics.base import Metric
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


class ClipAnalyser(SlowAnalyser):
    """Collects every pair (cheap) and defers a slow job every ``clip`` pairs, as the reality lane does with I3D.
    Records the CPU priority (nice value) of the threads its cropping and its jobs run in."""

    def __init__(self, name: str, *, clip: int, job_s: float, fail_at: int | None = None) -> None:
        super().__init__(name, 0.0)
        self.clip, self.job_s, self.fail_at = clip, job_s, fail_at
        self.lane_nice: set[int] = set()
        self.job_nice: set[int] = set()
        self.jobs_run: list[float] = []

    @staticmethod
    def _nice() -> int:
        import os
        import threading

        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def analyse(self, pair: FramePair) -> Deferred | None:  # type: ignore[override]
        self.lane_nice.add(self._nice())
        self.seen.append(pair.source.index)
        if (pair.source.index + 1) % self.clip:
            return None
        t, index = pair.t, pair.source.index

        def job() -> Observation:
            self.job_nice.add(self._nice())
            time.sleep(self.job_s)
            if index == self.fail_at:
                raise RuntimeError("I3D crashed")
            self.jobs_run.append(t)
            return Observation(self.name, t, {"index": index})

        return Deferred(t, job)


class SeenAt(Metric):
    """Which clip observations each record's window had applied (their stream times)."""

    family = "clips"
    consumes = frozenset({"clips"})

    def __init__(self) -> None:
        self.times: list[float] = []

    def update(self, obs: Observation) -> None:
        self.times.append(obs.t)

    def expire(self, now: float) -> None:
        pass

    def window_values(self) -> dict[str, Any]:
        return {"times": list(self.times)}

    def total_values(self) -> dict[str, Any]:
        return self.window_values()


def make_clips(analyser: ClipAnalyser, *, live: bool, policy: str, n: int) -> tuple[Pipeline, Sink, Windower]:
    sink = Sink()
    windower = Windower([HealthMetric(1.0), SeenAt()], WindowConfig(window=1.0, hop=0.2))
    pipe = Pipeline(
        source=frames(n, 25.0, paced=live),
        deid=frames(n, 25.0, paced=live),
        pairer=Pairer(PairingConfig(tolerance=0.02)),
        analysers=[analyser],
        windower=windower,
        sinks=[sink],
        config=PipelineConfig(live=live, policy=policy, queue_size=2),  # type: ignore[arg-type]
    )
    return pipe, sink, windower


def test_replay_runs_every_deferred_job_in_a_background_thread_and_windows_wait_for_it() -> None:
    clips = ClipAnalyser("clips", clip=10, job_s=0.15)
    pipe, sink, windower = make_clips(clips, live=False, policy="block", n=50)
    assert asyncio.run(pipe.run()).status == "complete"
    assert clips.seen == list(range(50))
    due = [i / 25.0 for i in range(9, 50, 10)]
    assert clips.jobs_run == due  # every clip, in order: a replay never skips one
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert clips.lane_nice == clips.job_nice == {base}  # a replay drops nothing: no reason to yield the CPU
    # each clip is in the first record whose window ends at or after it: the watermark waited for the job
    for t in due:
        first = next(r for r in sink.records if r["window"]["end"] >= t)
        assert t in first["clips"]["times"]
        assert all(t not in r["clips"]["times"] for r in sink.records if r["window"]["end"] < t)
    health = windower.totals()["health"]
    assert health["background"]["clips"]["done"] == 5 and health["background"]["clips"]["skipped"] == 0
    assert health["background"]["clips"]["busy_ms"] == pytest.approx(150, abs=60)
    assert health["dropped"] == 0 and windower.late == 0


def test_live_skips_a_job_due_while_the_last_still_runs_and_keeps_every_pair() -> None:
    from streameval.pipeline import BACKGROUND_NICE

    # 25 fps, a job every 5 pairs (0.2 s) that takes 0.5 s: about every second job must be skipped
    clips = ClipAnalyser("clips", clip=5, job_s=0.5)
    pipe, sink, windower = make_clips(clips, live=True, policy="drop-oldest", n=75)
    assert asyncio.run(pipe.run()).status == "complete"
    assert clips.seen == list(range(75))  # the cropping lane kept up: no pair dropped
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert clips.lane_nice == {base}  # cropping keeps its priority
    assert clips.job_nice == {min(19, base + BACKGROUND_NICE)}  # the deferred work yields (Linux caps nice at 19)
    health = windower.totals()["health"]
    background = health["background"]["clips"]
    assert background["done"] == len(clips.jobs_run) >= 3
    assert background["skipped"] >= 5
    assert background["done"] + background["skipped"] == 15
    assert background["latency_max_s"] >= 0.5
    assert health["dropped"] == 0 and health["lag_max_s"] < 0.2  # pairs do not wait for the jobs
    assert windower.late == 0  # finished jobs count in the first open window, not as late observations
    applied = sink.records[-1]["clips"]["times"]  # every finished job, at its time or later (when it finished)
    assert len(applied) == len(clips.jobs_run) and all(a >= t for a, t in zip(applied, clips.jobs_run, strict=True))


def test_a_failing_deferred_job_fails_the_run() -> None:
    clips = ClipAnalyser("clips", clip=10, job_s=0.0, fail_at=29)
    pipe, sink, _ = make_clips(clips, live=False, policy="block", n=50)
    with pytest.raises(RuntimeError, match="I3D crashed"):
        asyncio.run(pipe.run())
    assert sink.records and sink.records[-1]["window"]["final"]


def test_a_failing_deferred_job_fails_a_live_run_too() -> None:
    clips = ClipAnalyser("clips", clip=5, job_s=0.0, fail_at=4)  # the first job fails; later ones must not hide it
    pipe, sink, _ = make_clips(clips, live=True, policy="drop-oldest", n=40)
    with pytest.raises(RuntimeError, match="I3D crashed"):
        asyncio.run(pipe.run())
    assert sink.records and sink.records[-1]["window"]["final"]


def test_a_job_in_flight_at_a_stop_request_still_delivers() -> None:
    clips = ClipAnalyser("clips", clip=10, job_s=1.0)
    pipe, sink, windower = make_clips(clips, live=True, policy="drop-oldest", n=200)

    async def main() -> Any:
        task = asyncio.create_task(pipe.run())
        await asyncio.sleep(0.6)  # the first job (due at 0.36 s) is running
        pipe.request_stop()
        return await task

    assert asyncio.run(main()).status == "interrupted"
    assert clips.jobs_run == [9 / 25.0]
    assert windower.totals()["health"]["background"]["clips"]["done"] == 1
    assert len(sink.records[-1]["clips"]["times"]) == 1  # applied (live: at the first window open when it ended)
