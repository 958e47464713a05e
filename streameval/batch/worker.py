"""What a worker does with one pair: the ordinary replay, plus its mergeable statistics.

The same function runs in a local worker process and in a Ray task. It writes nothing to the batch directory:
the report, the records and the statistics come back to the driver, which alone writes ``DIR`` (so a Ray
cluster needs no shared filesystem for outputs, and a killed worker cannot leave half a pair behind).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streameval.config import RunConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairTask:
    """One pair to evaluate: its id and the complete, validated run settings (``RunConfig`` fields)."""

    pair_id: str
    method: str
    config: dict[str, Any]
    models_digest: str | None = None  # the driver's model zoo; a worker with other models refuses the pair


@dataclass
class PairOutcome:
    pair_id: str
    status: str  # "complete", "failed" or "interrupted"
    error: str | None = None
    report: dict[str, Any] | None = None
    records: bytes = b""
    state: bytes = b""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    host: str = field(default_factory=socket.gethostname)


def models_digest(config: dict[str, Any]) -> str | None:
    """A digest of the model files (their sha256 sums in the zoo's manifest) this config would load; None when
    there is no manifest (the run itself then reports the missing models)."""
    from streameval.models import zoo
    from streameval.models.manifest import read_manifest

    configured = config.get("options", {}).get("models", {}).get("dir")
    models = read_manifest(zoo.resolve_models_dir(configured))
    if not models:
        return None
    sums = sorted(
        (name, file, str(meta.get("sha256")))
        for name, entry in models.items()
        for file, meta in dict(entry.get("files", {})).items()
    )
    return hashlib.sha256(json.dumps(sums).encode()).hexdigest()


def run_pair(task: PairTask) -> PairOutcome:
    """Replay one pair exactly as ``streameval replay`` would; never raises for a failing pair."""
    from streameval.batch.state import extract, to_bytes
    from streameval.evaluation import evaluate
    from streameval.metrics.base import Metric

    started, cpu_started = time.monotonic(), time.process_time()
    outcome = PairOutcome(task.pair_id, "failed")
    try:
        if task.models_digest is not None:
            mine = models_digest(task.config)
            # No zoo at all: the replay itself says which model is missing, if the run needs one.
            if mine is not None and mine != task.models_digest:
                raise RuntimeError(
                    f"the model zoo on {socket.gethostname()} differs from the driver's (digest {mine} != "
                    f"{task.models_digest}): run `streameval models build` there or share the driver's models "
                    "directory (docs/scaling.md)"
                )
        with tempfile.TemporaryDirectory(prefix="streameval-batch-") as tmp:
            config = RunConfig(**task.config)
            config.log = str(Path(tmp) / "records.jsonl")
            config.report = str(Path(tmp) / "report.json")
            captured: dict[str, Any] = {}

            def keep(metrics: list[Metric]) -> None:
                captured.update(extract(metrics))

            report = asyncio.run(evaluate(config, on_metrics=keep))
            outcome.report = report
            outcome.records = Path(config.log).read_bytes()
            outcome.state = to_bytes(captured)
            outcome.status = "complete" if report.get("status") == "complete" else str(report.get("status"))
            if outcome.status != "complete":
                outcome.error = report.get("error") or f"replay ended with status {report.get('status')!r}"
    except (Exception, KeyboardInterrupt) as exc:  # one bad pair must not take the worker (or the batch) down
        outcome.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        outcome.error = f"{type(exc).__name__}: {exc}"
        log.debug("pair %s failed", task.pair_id, exc_info=True)
    outcome.wall_s = time.monotonic() - started
    outcome.cpu_s = time.process_time() - cpu_started
    outcome.host = f"{socket.gethostname()}:{os.getpid()}"
    return outcome
