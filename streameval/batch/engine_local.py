"""The default engine: a pool of local worker processes, one pair per process at a time.

Processes are started with ``spawn`` (not ``fork``): the driver may hold threads (logging, the pool's own
manager), and a worker must start as clean as a ``streameval replay`` process. Workers ignore SIGINT: Ctrl-C
reaches the whole process group, and only the driver decides what stops (it then terminates the workers).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import signal
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Self

from streameval.batch.worker import PairOutcome, PairTask, run_pair


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_in_worker(task: PairTask) -> PairOutcome:
    outcome = run_pair(task)
    _ignore_sigint()  # the replay's asyncio loop may have reinstated the default handler
    return outcome


class LocalEngine:
    """``submit`` pairs, ``wait`` for finished ones; at most ``workers`` run at once (the pool's size)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._futures: dict[cf.Future[PairOutcome], PairTask] = {}

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint
        )

    def __enter__(self) -> Self:
        self._pool = self._new_pool()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    @property
    def in_flight(self) -> int:
        return len(self._futures)

    def submit(self, task: PairTask) -> None:
        if self._pool is None:
            self._pool = self._new_pool()
        self._futures[self._pool.submit(_run_in_worker, task)] = task

    def wait(self, timeout: float) -> list[tuple[PairTask, PairOutcome]]:
        """The pairs that finished within ``timeout`` seconds (possibly none)."""
        if not self._futures:
            return []
        done, _ = cf.wait(self._futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out: list[tuple[PairTask, PairOutcome]] = []
        broken = False
        for future in done:
            task = self._futures.pop(future)
            try:
                out.append((task, future.result()))
            except BrokenProcessPool as exc:
                # A worker died (killed, out of memory, a crash in native code): every pair in flight is lost.
                broken = True
                out.append((task, PairOutcome(task.pair_id, "failed", f"worker process died: {exc}")))
            except Exception as exc:  # e.g. the task could not be pickled
                out.append((task, PairOutcome(task.pair_id, "failed", f"{type(exc).__name__}: {exc}")))
        if broken and self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None  # a fresh pool on the next submit
        return out

    def cancel(self) -> None:
        """Stop now: drop queued pairs and terminate the workers (their pairs count as not run)."""
        for future in self._futures:
            future.cancel()
        self._futures.clear()
        if self._pool is not None:
            # No public way to stop a running task of a ProcessPoolExecutor: terminate this process's children.
            for child in multiprocessing.active_children():
                child.terminate()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
