"""Orchestration: sources → pairing → analysis lanes → windows → sinks, on one asyncio event loop.

* Replay (``live=False``): frames are pulled from the two sources in stream-time order, so pairing needs no
  buffer beyond one frame of look-ahead and a slow analyser slows the whole run down (policy ``block``): nothing
  is dropped and the result does not depend on the machine's speed.
* Live (``live=True``): each source is read by its own task, so a stalled stream never holds the other one up,
  and each analysis lane drops its oldest queued pair when it falls behind (policy ``drop-oldest``), keeping
  the lag bounded; every drop is counted in ``health``.

Each analyser runs in its own single-thread executor: model calls never block the event loop, and one analyser's
calls happen in stream order so it may keep state (clips). Slow batched work an analyser defers (I3D on a clip,
:class:`~streameval.analysis.base.Deferred`) runs in a second thread of its lane, one job at a time; in a live run
that thread has a lower CPU priority, so the per-pair lanes keep their frames when cores are short (a replay
drops nothing, so there it keeps its priority and does not lose the CPU to other processes). With policy
``block`` the next job waits for the previous one and the watermark waits for the job, so its observation lands
in the window of its clip; with ``drop-oldest`` a job due while the previous one still runs is skipped, and a
job's observation counts in the first window still open when it finishes (the lane keeps cropping the next clip
meanwhile: a slow I3D costs whole clips, never the frames of the clip being collected).

With face families on, a *face stage* (:class:`~streameval.faces.stage.FaceStage`) runs in a lane of its own
ahead of the analysers that declare ``needs_faces``: they only receive pairs that went through it, with
``pair.faces`` set. Analysers that need no faces are fed straight from pairing, in parallel with the stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from streameval.analysis.base import Analyser, Deferred, Observation
from streameval.budget import Assessment, LaneCost, assess
from streameval.config import RunConfig
from streameval.errors import UsageError
from streameval.frames import Frame, FramePair
from streameval.metrics.health import ANALYSIS, PAIRING
from streameval.pairing import Pairer, Side, Unpaired
from streameval.sinks.base import Record, Sink
from streameval.windows import Windower

log = logging.getLogger(__name__)

Policy = Literal["block", "drop-oldest"]


class PairStage(Protocol):
    """A step every face analyser depends on (the face stage): annotates the pair and observes it."""

    name: str
    rate: float | None

    def process(self, pair: FramePair) -> tuple[FramePair, Observation]: ...

    def close(self) -> None: ...


def needs_faces(analyser: Analyser) -> bool:
    return bool(getattr(analyser, "needs_faces", False))


BACKGROUND_NICE = 10  # added to a background thread's nice value (Linux: per thread)


def _lower_priority() -> None:
    """Executor initializer of a lane's background thread: lower this thread's CPU priority (Linux schedules
    threads separately, so only the deferred work is affected). Where that is not possible it stays as it is, with
    a debug line: the results never depend on it, only which work falls behind first when cores are short."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE)
    except (AttributeError, OSError) as exc:  # not Linux, or a sandbox that forbids it
        log.debug("background lane keeps its priority: %s", exc)


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    live: bool = False
    policy: Policy = "block"
    queue_size: int = RunConfig.queue_size  # pairs waiting per analysis lane

    def __post_init__(self) -> None:
        if self.policy not in ("block", "drop-oldest"):
            raise UsageError(f"policy must be 'block' or 'drop-oldest', got {self.policy!r}")
        if self.queue_size < 1:
            raise UsageError(f"queue size must be >= 1, got {self.queue_size!r}")


@dataclass(slots=True)
class _Lane:
    name: str
    rate: float | None
    queue: asyncio.Queue[FramePair]
    executor: ThreadPoolExecutor
    analyser: Analyser | None = None  # exactly one of analyser and stage
    stage: PairStage | None = None
    pending: deque[float] = field(default_factory=deque)  # stream times queued or in flight, in order
    in_flight: bool = False
    next_due: float = -math.inf
    task: asyncio.Task[None] | None = None
    offered: int = 0  # pairs handed to the lane (analysed or dropped)
    calls: int = 0
    busy_s: float = 0.0  # time in calls after the first (which pays for model warm-up)
    cpu_s: float = 0.0  # CPU time of those calls, in every thread they used
    background: ThreadPoolExecutor | None = None  # deferred work, made on first use
    job: asyncio.Task[None] | None = None  # the deferred job in flight (one at a time)
    held: deque[float] = field(default_factory=deque)  # stream times of deferred jobs the watermark waits for
    jobs: int = 0
    jobs_offered: int = 0  # jobs run or skipped
    job_busy_s: float = 0.0
    job_cpu_s: float = 0.0

    def step(self, pair: FramePair) -> tuple[FramePair | None, Observation | Deferred | None, float]:
        """Run in the lane's thread: (the annotated pair for the face lanes, or None; the observation; the CPU
        seconds the call took, which unlike its wall time does not depend on what else runs)."""
        started = time.thread_time()
        if self.stage is not None:
            annotated, obs = self.stage.process(pair)
            helper = float(getattr(self.stage, "last_helper_cpu_s", 0.0))  # the stage's second thread
            return annotated, obs, time.thread_time() - started + helper
        assert self.analyser is not None
        observed = self.analyser.analyse(pair)
        return None, observed, time.thread_time() - started


def _lane(name: str, rate: float | None, queue_size: int, **kind: Any) -> _Lane:
    executor = ThreadPoolExecutor(1, thread_name_prefix=f"se-{name}")
    return _Lane(name, rate, asyncio.Queue(queue_size), executor, **kind)


def _run_timed(job: Deferred) -> tuple[Observation | None, float]:
    started = time.thread_time()
    return job.run(), time.thread_time() - started


@dataclass(slots=True)
class RunResult:
    status: Literal["complete", "interrupted", "failed"]
    records: int
    first_t: float | None
    last_t: float | None
    wall_s: float
    error: str | None = None


class Pipeline:
    """Runs one evaluation. Use :meth:`run` once; :meth:`request_stop` ends it early but cleanly."""

    def __init__(
        self,
        *,
        source: AsyncIterator[Frame],
        deid: AsyncIterator[Frame],
        pairer: Pairer,
        analysers: Sequence[Analyser],
        windower: Windower,
        sinks: Iterable[Sink] = (),
        config: PipelineConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        extra_health: Callable[[], dict[str, Any]] | None = None,
        on_record: Callable[[Record], Awaitable[None] | None] | None = None,
        follow_up: Callable[[Record], list[dict[str, Any]]] | None = None,
        face_stage: PairStage | None = None,
    ) -> None:
        self.source = source
        self.deid = deid
        self.pairer = pairer
        self.windower = windower
        self.sinks = list(sinks)
        self.config = config or PipelineConfig()
        self.clock = clock
        self.extra_health = extra_health
        self.on_record = on_record
        self.follow_up = follow_up  # records derived from each metrics record (alerts), published right after it
        names = [a.name for a in analysers] + ([face_stage.name] if face_stage is not None else [])
        if len(set(names)) != len(names):
            raise UsageError(f"analyser names must be unique, got {names}")
        if face_stage is None and any(needs_faces(a) for a in analysers):
            raise UsageError("analysers that need faces need a face stage")
        size = self.config.queue_size
        self._lanes = [_lane(a.name, a.rate, size, analyser=a) for a in analysers]
        self._direct = [lane for lane in self._lanes if lane.analyser is not None and not needs_faces(lane.analyser)]
        self._face_lanes = [lane for lane in self._lanes if lane.analyser is not None and needs_faces(lane.analyser)]
        self._stage = None if face_stage is None else _lane(face_stage.name, face_stage.rate, size, stage=face_stage)
        self._stop = asyncio.Event()
        self._publish_lock = asyncio.Lock()
        self._latest_t = -math.inf
        self._first_t: float | None = None
        self._records = 0
        self.budget: Assessment | None = None  # the lanes' measured load, once known (see _assess_budget)

    @property
    def _all_lanes(self) -> list[_Lane]:
        return self._lanes if self._stage is None else [self._stage, *self._lanes]

    # -- control -----------------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop reading; what was already measured is still windowed and published."""
        self._stop.set()

    # -- frame intake ------------------------------------------------------------------------------------
    async def _replay_frames(self) -> AsyncGenerator[tuple[Side, Frame | None], None]:
        """Both streams merged in stream-time order (one frame of look-ahead per side)."""
        cfg = self.pairer.config

        def key(side: Side, frame: Frame) -> float:
            if cfg.mode == "index":
                return frame.index + (cfg.index_offset if side == "source" else 0)
            return frame.pts - (cfg.offset if side == "deid" else 0.0)

        heads: dict[Side, Frame | None] = {
            "source": await anext(self.source, None),
            "deid": await anext(self.deid, None),
        }
        for side, head in heads.items():
            if head is None:
                yield side, None
        while heads["source"] is not None or heads["deid"] is not None:
            live = [(key(s, f), s) for s, f in heads.items() if f is not None]
            _, side = min(live)
            frame = heads[side]
            yield side, frame
            heads[side] = await anext(self.source if side == "source" else self.deid, None)
            if heads[side] is None:
                yield side, None

    async def _live_frames(self) -> AsyncGenerator[tuple[Side, Frame | None], None]:
        """Both streams read concurrently; frames are handed on in arrival order."""
        merged: asyncio.Queue[tuple[Side, Frame | None]] = asyncio.Queue(64)
        errors: list[Exception] = []

        async def read(side: Side, it: AsyncIterator[Frame]) -> None:
            try:
                async for frame in it:
                    await merged.put((side, frame))
            except Exception as exc:  # handed to the consumer below; the other stream keeps going meanwhile
                errors.append(exc)
            await merged.put((side, None))  # not reached when cancelled: nobody is waiting then

        readers = [
            asyncio.create_task(read("source", self.source), name="se-read-source"),
            asyncio.create_task(read("deid", self.deid), name="se-read-deid"),
        ]
        ended = 0
        try:
            while ended < 2:
                item = await merged.get()
                if item[1] is None:
                    ended += 1
                    if errors:
                        raise errors[0]
                yield item
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    # -- analysis lanes ----------------------------------------------------------------------------------
    def _due(self, lane: _Lane, t: float) -> bool:
        wants = getattr(lane.analyser, "wants", None)
        if wants is not None and not wants(t):  # e.g. the reality lane between two clips
            return False
        rate = lane.rate
        if rate is None:
            return True
        if t + 1e-9 < lane.next_due:
            return False
        period = 1.0 / rate
        # Stay on the sampling grid; after a gap (no pairs for a while) restart the grid at this pair.
        behind = t - lane.next_due >= period
        lane.next_due = t + period if behind else lane.next_due + period
        return True

    async def _dispatch(self, pair: FramePair) -> None:
        """A new pair from pairing: to the lanes that need no faces, and through the face stage to the others."""
        targets = [lane for lane in self._direct if self._due(lane, pair.t)]
        if self._stage is not None and self._due(self._stage, pair.t):
            targets.append(self._stage)
        await self._enqueue(targets, pair)

    async def _enqueue(self, lanes: list[_Lane], pair: FramePair) -> None:
        # Claim a place in every lane's pending list before the first await, so the watermark never passes the
        # pair while it is on its way in.
        for lane in lanes:
            if self.config.policy == "drop-oldest" and lane.queue.full():
                old = lane.queue.get_nowait()
                lane.queue.task_done()
                del lane.pending[1 if lane.in_flight else 0]
                self.windower.add(Observation(ANALYSIS, old.t, {"analyser": lane.name, "dropped": True}))
            lane.pending.append(pair.t)
            lane.offered += 1
        for lane in lanes:
            await self._put(lane, pair)

    async def _put(self, lane: _Lane, pair: FramePair) -> None:
        """Queue a pair, waiting while the lane is full (backpressure) but never on a lane that has died."""
        if not lane.queue.full() or lane.task is None:
            await lane.queue.put(pair)
            return
        put = asyncio.ensure_future(lane.queue.put(pair))
        await asyncio.wait([put, lane.task], return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            self._check_lanes()  # raises the analyser's error
            raise RuntimeError(f"analysis lane {lane.name} stopped")

    async def _work(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pair = await lane.queue.get()
            lane.in_flight = True
            started = self.clock()
            forwarded = False
            try:
                annotated, obs, cpu = await loop.run_in_executor(lane.executor, lane.step, pair)
                done = self.clock()
                lane.calls += 1
                if lane.calls > 1:
                    lane.busy_s += done - started
                    lane.cpu_s += cpu
                if isinstance(obs, Deferred):
                    await self._defer(lane, obs, pair)
                elif obs is not None:
                    self.windower.add(obs)
                self.windower.add(
                    Observation(
                        ANALYSIS,
                        pair.t,
                        {"analyser": lane.name, "busy_s": done - started, "lag_s": done - pair.source.arrival},
                    )
                )
                if annotated is not None:
                    targets = [face_lane for face_lane in self._face_lanes if self._due(face_lane, pair.t)]
                    lane.in_flight = False
                    lane.pending.popleft()
                    forwarded = True
                    # the face lanes hold the pair in their pending lists before this lane lets it go
                    await self._enqueue(targets, annotated)
            finally:
                lane.in_flight = False
                if not forwarded:
                    lane.pending.popleft()
                # the stage's pair counts as finished only once handed on, so draining the stage first and the
                # face lanes next sees every pair
                lane.queue.task_done()
            if self.budget is None:
                self._assess_budget()
            await self._publish_ready()

    async def _defer(self, lane: _Lane, job: Deferred, pair: FramePair) -> None:
        """Start a deferred job in the lane's background thread (see the module docstring for the policies)."""
        lane.jobs_offered += 1
        if lane.job is not None and not lane.job.done():
            if self.config.policy == "drop-oldest":
                skipped = {"analyser": lane.name, "background": True, "skipped": True}
                self.windower.add(Observation(ANALYSIS, max(job.t, self.windower.open_from), skipped))
                return
            await asyncio.wait([lane.job])
        if lane.job is not None and not lane.job.cancelled() and (failure := lane.job.exception()) is not None:
            raise failure  # the previous job failed: fail this lane (and so the run) rather than forget it
        if lane.background is None:
            lane.background = ThreadPoolExecutor(
                1, thread_name_prefix=f"se-{lane.name}-bg", initializer=_lower_priority if self.config.live else None
            )
        hold = self.config.policy == "block"
        if hold:
            lane.held.append(job.t)
        lane.job = asyncio.create_task(
            self._run_job(lane, job, pair.source.arrival, hold), name=f"se-background-{lane.name}"
        )

    async def _run_job(self, lane: _Lane, job: Deferred, arrival: float, hold: bool) -> None:
        assert lane.background is not None
        started = self.clock()
        try:
            obs, cpu = await asyncio.get_running_loop().run_in_executor(lane.background, _run_timed, job)
            done = self.clock()
            lane.jobs += 1
            if lane.jobs > 1:  # the first pays for model warm-up, as a lane's first call
                lane.job_busy_s += done - started
                lane.job_cpu_s += cpu
            t = job.t
            if not hold:  # count it in the first window still open, rather than as a late observation
                t = max(t, self.windower.open_from)
            if obs is not None:
                self.windower.add(dataclasses.replace(obs, t=t))
            values = {"analyser": lane.name, "background": True, "busy_s": done - started, "latency_s": done - arrival}
            self.windower.add(Observation(ANALYSIS, t, values))
        finally:
            if hold:
                lane.held.remove(job.t)
        await self._publish_ready()

    def _assess_budget(self, *, final: bool = False) -> None:
        """Once 3 s of video have been analysed, say whether the lanes keep up and which one limits the run."""
        if self._first_t is None:
            return
        span = self._latest_t - self._first_t
        lanes = self._all_lanes
        if not final and (span < 3.0 or any(lane.calls < 2 for lane in lanes)):
            return
        costs = [
            LaneCost(
                lane.name,
                lane.busy_s / (lane.calls - 1),
                lane.offered / span,
                cpu_per_call=lane.cpu_s / (lane.calls - 1),
            )
            for lane in lanes
            if lane.calls >= 2 and span > 0
        ]
        costs += [
            LaneCost(
                f"{lane.name}_background",
                lane.job_busy_s / (lane.jobs - 1),
                lane.jobs_offered / span,
                cpu_per_call=lane.job_cpu_s / (lane.jobs - 1),
                background=True,
            )
            for lane in lanes
            if lane.jobs >= 2 and span > 0
        ]
        if not costs:
            return
        first = self.budget is None
        self.budget = budget = assess(costs)
        if not first:
            log.info("whole run: %s", budget.describe())
        elif self.config.live:
            self._warn_live(budget)
        else:
            log.info(
                "analysis runs at up to %.2fx real time, limited by the %s lane (%s)",
                budget.speed,
                budget.limiting.name,
                budget.describe(),
            )

    def _warn_live(self, budget: Assessment) -> None:
        """Live: pairs are dropped when the per-pair lanes cannot keep up; background work skips jobs instead."""
        front = assess([lane for lane in budget.lanes if not lane.background], budget.cores)
        if front.lanes and front.speed < 1.0:
            log.warning(
                "analysis cannot keep up with the video at these settings: the %s lane limits throughput (%s); "
                "pairs will be dropped (policy %s). Lower rate.%s or the [reality] clip rate, or use a GPU",
                front.limiting.name,
                budget.describe(),
                self.config.policy,
                front.limiting.name,
            )
        for lane in budget.lanes:
            if lane.background and lane.load > 1.0:
                log.warning(
                    "the %s work takes %.2f s per job in the background and cannot keep up with every one: about "
                    "%.0f %% of its jobs will be skipped (counted in health.background)",
                    lane.name,
                    lane.seconds_per_call,
                    100 * (1 - 1 / lane.load),
                )
        if not (front.lanes and front.speed < 1.0):
            log.info("analysis keeps up with the video (%s)", budget.describe())

    def _watermark(self) -> float:
        mark = min(self._latest_t, self.pairer.watermark())
        for lane in self._all_lanes:
            if lane.pending:
                mark = min(mark, math.nextafter(lane.pending[0], -math.inf))
            if lane.held:
                mark = min(mark, math.nextafter(lane.held[0], -math.inf))
        return mark

    # -- output ------------------------------------------------------------------------------------------
    async def _publish(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            if self.extra_health is not None:
                record.setdefault("health", {}).update(self.extra_health())
            derived = self.follow_up(record) if self.follow_up is not None else []
            for item in (record, *derived):
                for sink in self.sinks:
                    await sink.publish(item)
                if self.on_record is not None:
                    maybe = self.on_record(item)
                    if maybe is not None:
                        await maybe
            self._records += 1

    async def _publish_ready(self) -> None:
        async with self._publish_lock:  # lanes and the intake loop both cut records; keep them in order
            await self._publish(self.windower.advance(self._watermark()))

    def _note_event(self, event: FramePair | Unpaired) -> None:
        kind = "paired" if isinstance(event, FramePair) else f"unpaired_{event.side}"
        self.windower.add(Observation(PAIRING, event.t, {"event": kind}))
        if self._first_t is None:
            self._first_t = event.t
        self._latest_t = max(self._latest_t, event.t)

    # -- run -----------------------------------------------------------------------------------------------
    async def _intake(self, frames: AsyncGenerator[tuple[Side, Frame | None], None]) -> None:
        """Feed frames through pairing into the lanes until both streams end."""
        async for side, frame in frames:
            if frame is None:
                self.pairer.end(side)
            else:
                self.pairer.push(side, frame)
            await self._dispatch_events()
            await self._publish_ready()
            self._check_lanes()
        self.pairer.flush()
        await self._dispatch_events()
        await self._drain()

    async def _dispatch_events(self) -> None:
        for event in self.pairer.events():
            self._note_event(event)
            if isinstance(event, FramePair):
                await self._dispatch(event)

    async def run(self) -> RunResult:
        started = self.clock()
        for lane in self._all_lanes:
            lane.task = asyncio.create_task(self._work(lane), name=f"se-analyse-{lane.name}")
        frames = self._live_frames() if self.config.live else self._replay_frames()
        intake = asyncio.create_task(self._intake(frames), name="se-intake")
        # A stop request must not wait for the next frame: a live stream may deliver none for a long time.
        stopper = asyncio.create_task(self._stop.wait(), name="se-stop-request")
        status: Literal["complete", "interrupted", "failed"] = "complete"
        error: str | None = None
        try:
            await asyncio.wait({intake, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not intake.done():
                status = "interrupted"
                intake.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await intake
            else:
                intake.result()  # a source or analyser error surfaces here
        except asyncio.CancelledError:
            status = "interrupted"
            intake.cancel()
            raise
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            stopper.cancel()
            await frames.aclose()
            await self._shutdown_lanes()
            # the report holds the whole run's costs (the early assessment saw only its first seconds, and
            # bursty lanes such as reality's clips are poorly sampled there)
            self._assess_budget(final=True)
            await self._finish()
            if status != "complete":
                log.warning("run %s; published what was measured", status)
        return RunResult(status, self._records, self._first_t, self._latest_t, self.clock() - started, error)

    def _check_lanes(self) -> None:
        for lane in self._all_lanes:
            for task in (lane.task, lane.job):
                if task is not None and task.done() and not task.cancelled():
                    exc = task.exception()
                    if exc is not None:
                        raise exc

    async def _drain(self) -> None:
        """Wait until every queued analysis has finished (an analyser failure surfaces here): the face stage
        first, since it feeds the face lanes."""
        workers: list[asyncio.Future[Any]] = [lane.task for lane in self._all_lanes if lane.task is not None]
        for group in ([self._stage] if self._stage is not None else [], self._lanes):
            joined: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*(lane.queue.join() for lane in group)))
            try:
                await asyncio.wait([joined, *workers], return_when=asyncio.FIRST_COMPLETED)
            finally:
                joined.cancel()
            self._check_lanes()
        jobs = [lane.job for lane in self._lanes if lane.job is not None]
        if jobs:  # the last clip's features
            await asyncio.wait(jobs)
            self._check_lanes()
        await self._publish_ready()

    async def _shutdown_lanes(self) -> None:
        lanes = self._all_lanes
        for lane in lanes:
            if lane.task is not None:
                lane.task.cancel()
        await asyncio.gather(*(lane.task for lane in lanes if lane.task is not None), return_exceptions=True)
        loop = asyncio.get_running_loop()
        for lane in lanes:
            # Analyser threads cannot be interrupted: let an in-flight call finish, then flush what it holds.
            await loop.run_in_executor(None, lane.executor.shutdown, True)
            if lane.job is not None:  # a deferred job in flight still delivers what it measured
                await asyncio.gather(lane.job, return_exceptions=True)
            if lane.background is not None:
                await loop.run_in_executor(None, lane.background.shutdown, True)
            try:
                if lane.stage is not None:
                    lane.stage.close()
                elif lane.analyser is not None:
                    for obs in lane.analyser.close():
                        self.windower.add(obs)
            except Exception:
                log.exception("%s failed while closing", lane.name)

    async def _finish(self) -> None:
        async with self._publish_lock:
            await self._publish(self.windower.finish())
