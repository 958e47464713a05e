"""Ray engine: each pair is a Ray task running the same worker function as the local pool.

Connects to ``address`` (``ray start --head`` on a cluster, or ``auto``); without one, an already initialised
Ray (e.g. ``ray.init(num_cpus=2)`` in a test) is used, else a local instance is started. The driver keeps at
most ``workers`` pairs in flight (default: the cluster's CPUs / ``cpus_per_pair``), so results stream back and
an interrupt loses little. Model files are not shipped: each node loads its own verified zoo (docs/scaling.md).
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Self

from streameval.batch.worker import PairOutcome, PairTask, run_pair
from streameval.errors import MissingExtraError

log = logging.getLogger(__name__)


class RayEngine:
    name = "ray"

    def __init__(self, workers: int | None, address: str | None = None, *, cpus_per_pair: float = 1.0) -> None:
        self.address = address
        self.cpus_per_pair = cpus_per_pair
        self.workers = workers or 0
        self._ray: Any = None  # the ray module, imported on entry (an optional dependency)
        self._remote: Any = None
        self._started = False
        self._refs: dict[Any, PairTask] = {}

    def __enter__(self) -> Self:
        try:
            import ray
        except ImportError as exc:
            raise MissingExtraError("ray", "ray", "the Ray engine (--engine ray)") from exc
        ray_api: Any = ray  # Ray's own functions are untyped
        self._ray = ray_api
        if not ray_api.is_initialized():
            ray_api.init(address=self.address, log_to_driver=False)
            self._started = True
        if not self.workers:
            cpus = float(ray_api.cluster_resources().get("CPU", 1.0))
            self.workers = max(1, int(cpus // self.cpus_per_pair))
        # Retries are the driver's (the same bounded policy for both engines), not Ray's.
        self._remote = ray_api.remote(num_cpus=self.cpus_per_pair, max_retries=0)(run_pair)
        log.info("Ray: %s, %d pairs in flight", ray_api.cluster_resources(), self.workers)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.cancel()
        if self._started and self._ray is not None:
            self._ray.shutdown()
            self._started = False

    @property
    def in_flight(self) -> int:
        return len(self._refs)

    def submit(self, task: PairTask) -> None:
        self._refs[self._remote.remote(task)] = task

    def wait(self, timeout: float) -> list[tuple[PairTask, PairOutcome]]:
        if not self._refs:
            return []
        ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if ready:  # collect everything else that is already done too
            ready, _ = self._ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        out: list[tuple[PairTask, PairOutcome]] = []
        for ref in ready:
            task = self._refs.pop(ref)
            try:
                out.append((task, self._ray.get(ref)))
            except Exception as exc:  # the worker died, or the task could not run on its node
                out.append((task, PairOutcome(task.pair_id, "failed", f"Ray task failed: {type(exc).__name__}: {exc}")))
        return out

    def cancel(self) -> None:
        for ref in self._refs:
            try:
                self._ray.cancel(ref, force=True)
            except Exception as exc:  # already finished, or the cluster is gone: nothing left to stop
                log.debug("cancel %s: %s", ref, exc)
        self._refs.clear()
