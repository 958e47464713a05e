"""The batch driver: plan the pairs, skip finished ones, run the rest on an engine, store and aggregate.

Layout of ``DIR``::

    pairs/<id>/report.json     the pair's replay report (as ``streameval replay --report``)
    pairs/<id>/records.jsonl   its JSON Lines records
    pairs/<id>/state.npz       its mergeable statistics (streameval.batch.state)
    pairs/<id>/pair.json       written last: status, attempts, error, settings fingerprint
    summary.json, table.csv, pairs.csv   the aggregate (rewritten at the end of every run, also on interrupt)

A pair counts as done when its ``pair.json`` says ``complete`` for the same settings fingerprint and its report
and statistics read back; every other pair (new, failed, interrupted, settings changed) runs again.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from streameval import __version__
from streameval.batch.aggregate import FinishedPair, aggregate, table_csv
from streameval.batch.manifest import PairSpec, RowError, load_manifest
from streameval.batch.state import PairStats, from_bytes
from streameval.batch.worker import PairOutcome, PairTask, models_digest
from streameval.config import RunConfig, apply_settings, load_config
from streameval.errors import ConfigError, SinkError, StreamevalError
from streameval.sinks.jsonl import write_json_atomic

log = logging.getLogger(__name__)
progress_log = logging.getLogger("streameval.batch.progress")

# Settings that name outputs or the stream, not the measurement: they do not invalidate a finished pair.
_NOT_FINGERPRINTED = ("log", "report", "stream_id", "sink", "metrics_port")


class Engine(Protocol):
    name: str
    workers: int

    def __enter__(self) -> Self: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    @property
    def in_flight(self) -> int: ...
    def submit(self, task: PairTask) -> None: ...
    def wait(self, timeout: float) -> list[tuple[PairTask, PairOutcome]]: ...
    def cancel(self) -> None: ...


@dataclass
class BatchSettings:
    out: Path
    config: str | None = None  # TOML file shared by every pair
    overrides: dict[str, Any] = field(default_factory=dict)  # command-line flags, as TOML keys
    workers: int | None = None  # None: the CPU count (local) or the cluster's CPUs (Ray)
    engine: str = "local"
    ray_address: str | None = None
    retries: int = 1  # extra attempts of a failing pair within one run
    check_models: bool = True  # refuse workers whose model zoo differs from the driver's


@dataclass
class BatchResult:
    summary: dict[str, Any]
    interrupted: bool

    @property
    def all_complete(self) -> bool:
        counts = self.summary["counts"]
        return bool(counts["complete"] == counts["rows"])


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise SinkError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _merge_settings(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``; TOML tables (dicts) merge key by key, so a row can set one [reality] key."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def pair_config(pair: PairSpec, settings: BatchSettings) -> dict[str, Any]:
    """The pair's complete run settings: the config file, then the flags, then the row (ConfigError if bad)."""
    apply_settings(RunConfig(), copy.deepcopy(pair.options), "options")  # a row's own mistakes named as such
    row: dict[str, Any] = {"source": pair.source, "deid": pair.deid, "stream_id": pair.id}
    refs = {k: v for k, v in (("ref_a", pair.ref_a), ("ref_b", pair.ref_b)) if v}
    if refs:
        row["identity"] = refs
    overrides = _merge_settings(_merge_settings(settings.overrides, pair.options), row)
    overrides["live"] = False
    config = load_config(settings.config, overrides)
    if config.sink or config.metrics_port:
        # every pair would publish under its own stream id, or bind the same port: not a batch's outputs
        raise ConfigError("sink / metrics_port: a batch writes its records into DIR; live outputs are not supported")
    return dataclasses.asdict(config)


def fingerprint(config: dict[str, Any]) -> str:
    kept = {k: v for k, v in config.items() if k not in _NOT_FINGERPRINTED}
    text = json.dumps({"version": __version__, "config": kept}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Store:
    """The batch directory."""

    def __init__(self, out: Path) -> None:
        self.out = out
        try:
            (out / "pairs").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"{out}: cannot create the batch directory: {exc.strerror or exc}") from exc

    def pair_dir(self, pair_id: str) -> Path:
        return self.out / "pairs" / pair_id

    def status(self, pair_id: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.pair_dir(pair_id) / "pair.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def finished(self, pair: PairSpec, fp: str) -> FinishedPair | None:
        """The stored result when it is complete, for these settings, and reads back; else None."""
        status = self.status(pair.id)
        if not status or status.get("status") != "complete" or status.get("fingerprint") != fp:
            return None
        d = self.pair_dir(pair.id)
        try:
            report = json.loads((d / "report.json").read_text(encoding="utf-8"))
            stats = PairStats.parse(from_bytes((d / "state.npz").read_bytes()))
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: stored result unreadable (%s), running it again", pair.id, exc)
            return None
        if not isinstance(report, dict) or report.get("status") != "complete":
            return None
        return FinishedPair(pair.id, pair.method, report, stats)

    def commit(self, pair: PairSpec, fp: str, outcome: PairOutcome, attempts: int) -> FinishedPair | None:
        """Store a pair's outcome; ``pair.json`` goes last, so a crash in between leaves the pair not done."""
        d = self.pair_dir(pair.id)
        d.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {
            "id": pair.id,
            "method": pair.method,
            "source": pair.source,
            "deid": pair.deid,
            "row": pair.row,
            "status": outcome.status,
            "error": outcome.error,
            "attempts": attempts,
            "fingerprint": fp,
            "wall_s": outcome.wall_s,
            "cpu_s": outcome.cpu_s,
            "host": outcome.host,
            "finished_at": time.time(),
        }
        finished = None
        if outcome.status == "complete" and outcome.report is not None:
            report = dict(outcome.report)
            report["report_path"] = str(d / "report.json")
            try:  # e.g. a worker on another streameval version: that pair fails, not the batch
                stats = PairStats.parse(from_bytes(outcome.state))
            except (KeyError, ValueError, OSError) as exc:
                meta["status"], meta["error"] = "failed", f"unreadable statistics from the worker: {exc!r}"
            else:
                write_json_atomic(d / "report.json", report)
                _write_bytes_atomic(d / "records.jsonl", outcome.records)
                _write_bytes_atomic(d / "state.npz", outcome.state)
                finished = FinishedPair(pair.id, pair.method, report, stats)
        write_json_atomic(d / "pair.json", meta)
        return finished


def _eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def make_engine(settings: BatchSettings) -> Engine:
    if settings.engine == "local":
        from streameval.batch.engine_local import LocalEngine

        return LocalEngine(settings.workers or os.cpu_count() or 1)
    if settings.engine == "ray":
        from streameval.batch.engine_ray import RayEngine

        return RayEngine(settings.workers, settings.ray_address)
    raise ConfigError(f"engine: {settings.engine!r}; choose local or ray")


def run_batch(
    manifest_path: Path | str,
    settings: BatchSettings,
    *,
    stop: threading.Event | None = None,
    engine_factory: Callable[[BatchSettings], Engine] = make_engine,
) -> BatchResult:
    """Run every pair of the manifest that is not done yet, then aggregate; ``stop`` interrupts (the finished
    pairs stay stored and the summary is still written)."""
    stop = stop or threading.Event()
    manifest = load_manifest(manifest_path)
    store = Store(Path(settings.out))
    errors: list[RowError] = list(manifest.errors)
    pairs: list[tuple[PairSpec, dict[str, Any], str]] = []
    for pair in manifest.pairs:
        try:
            config = pair_config(pair, settings)
        except StreamevalError as exc:
            errors.append(RowError(pair.row, str(exc), pair.id, pair.method))
            continue
        pairs.append((pair, config, fingerprint(config)))
    for err in errors:
        log.error("manifest line %d: %s", err.row, err.message)

    finished: dict[str, FinishedPair] = {}
    todo: list[tuple[PairSpec, dict[str, Any], str]] = []
    for pair, config, fp in pairs:
        done = store.finished(pair, fp)
        if done is not None:
            finished[pair.id] = done
        else:
            todo.append((pair, config, fp))
    skipped = len(finished)
    progress_log.info(
        "%d pairs: %d already complete, %d to run, %d bad rows", len(pairs), skipped, len(todo), len(errors)
    )

    failed: dict[str, str] = {}
    attempts: dict[str, int] = {}
    replays = 0
    interrupted = False
    started = time.monotonic()
    if todo and not stop.is_set():
        digest = models_digest(todo[0][1]) if settings.check_models else None
        by_id = {pair.id: (pair, config, fp) for pair, config, fp in todo}
        queue = [PairTask(pair.id, pair.method, config, digest) for pair, config, _ in todo]
        queue.reverse()  # pop() from the end keeps manifest order
        with engine_factory(settings) as engine:
            while (queue or engine.in_flight) and not stop.is_set():
                while queue and engine.in_flight < engine.workers:
                    task = queue.pop()
                    attempts[task.pair_id] = attempts.get(task.pair_id, 0) + 1
                    replays += 1
                    engine.submit(task)
                for task, outcome in engine.wait(timeout=0.5):
                    pair, _, fp = by_id[task.pair_id]
                    n = attempts[task.pair_id]
                    if outcome.status != "complete" and not stop.is_set() and n <= settings.retries:
                        log.warning("%s: attempt %d failed (%s); retrying", pair.id, n, outcome.error)
                        queue.append(task)
                        continue
                    if outcome.status == "interrupted" and stop.is_set():
                        continue  # not a result: left to the next run
                    result = store.commit(pair, fp, outcome, n)
                    if result is not None:
                        finished[pair.id] = result
                        failed.pop(pair.id, None)
                    else:
                        error = (store.status(pair.id) or {}).get("error") or outcome.error or outcome.status
                        failed[pair.id] = error
                        log.error("%s: failed after %d attempt(s): %s", pair.id, n, error)
                    ran = len(finished) - skipped + len(failed)
                    left = len(todo) - ran
                    elapsed = time.monotonic() - started
                    progress_log.info(
                        "[%d/%d] %s %s in %.1f s (%s); %d left, ETA %s",
                        len(finished) + len(failed),
                        len(pairs),
                        pair.id,
                        outcome.status,
                        outcome.wall_s,
                        outcome.host,
                        left,
                        _eta(elapsed / ran * left) if ran else "?",
                    )
            if stop.is_set():
                interrupted = True
                running = engine.in_flight
                progress_log.warning("interrupted: stopping %d running pair(s); finished pairs are kept", running)
                engine.cancel()
    elif stop.is_set():
        interrupted = True

    summary = _summary(manifest_path, settings, pairs, errors, finished, failed, store, replays, skipped, interrupted)
    summary["run"]["wall_s"] = time.monotonic() - started
    write_outputs(store, summary)
    return BatchResult(summary, interrupted)


def _summary(
    manifest_path: Path | str,
    settings: BatchSettings,
    pairs: list[tuple[PairSpec, dict[str, Any], str]],
    errors: list[RowError],
    finished: dict[str, FinishedPair],
    failed: dict[str, str],
    store: Store,
    replays: int,
    skipped: int,
    interrupted: bool,
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for pair, _, _ in pairs:
        stored = store.status(pair.id) or {}
        if pair.id in finished:
            status, error = "complete", None
        elif pair.id in failed:
            status, error = "failed", failed[pair.id]
        else:
            status, error = "not run", None
        rows.append(
            {
                "id": pair.id,
                "method": pair.method,
                "row": pair.row,
                "status": status,
                "attempts": stored.get("attempts"),
                "error": error,
                "wall_s": stored.get("wall_s"),
                "cpu_s": stored.get("cpu_s"),
                "source": pair.source,
                "deid": pair.deid,
            }
        )
    for err in errors:
        rows.append({"id": err.id, "method": err.method, "row": err.row, "status": "invalid", "error": err.message})
    rows.sort(key=lambda r: r["row"])
    ordered = [finished[pair.id] for pair, _, _ in pairs if pair.id in finished]
    return {
        "schema": 1,
        "type": "batch_summary",
        "streameval_version": __version__,
        "manifest": str(Path(manifest_path).resolve()),
        "engine": settings.engine,
        "status": "interrupted" if interrupted else ("complete" if len(finished) == len(rows) else "incomplete"),
        "counts": {
            "rows": len(rows),
            "complete": len(finished),
            "failed": len(failed),
            "invalid": len(errors),
            "not_run": len(pairs) - len(finished) - len(failed),
        },
        "run": {"replays": replays, "skipped": skipped, "interrupted": interrupted},
        "pairs": rows,
        "methods": aggregate(ordered),
    }


PAIR_COLUMNS = ["row", "id", "method", "status", "attempts", "error", "wall_s", "cpu_s", "source", "deid"]


def write_outputs(store: Store, summary: dict[str, Any]) -> None:
    write_json_atomic(store.out / "summary.json", summary)
    _write_bytes_atomic(store.out / "table.csv", table_csv(summary["methods"]).encode())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=PAIR_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in summary["pairs"]:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in PAIR_COLUMNS})
    _write_bytes_atomic(store.out / "pairs.csv", buffer.getvalue().encode())
