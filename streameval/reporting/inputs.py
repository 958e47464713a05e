"""Reading what a run left behind (its report and, optionally, its JSON Lines log) for the HTML report.

Both are checked before anything is drawn: a file from another program is refused with one line saying what
was expected; a log whose last line was cut (a run killed mid-write, a copy in progress) or that has a few
broken lines is read up to what can be parsed, and the page says how many lines were skipped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streameval.errors import InputError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RunRecords:
    """A run's report and the records of its log (empty without a log)."""

    report: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    skipped_lines: int = 0  # log lines that were not JSON objects
    log_path: Path | None = None


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"{what} {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{what} {path} is a directory, not a file") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not UTF-8 text (not a streameval {what}?)") from exc
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


REPORT_TYPES = ("report", "batch_summary")  # a run's --report, and a batch's summary.json


def load_report(path: Path) -> dict[str, Any]:
    """The JSON at ``path``; InputError unless it is a streameval run report (``type: report``) or a batch
    summary (``type: batch_summary``)."""
    text = _read_text(path, "report")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"report {path} is not JSON ({exc.msg} at line {exc.lineno}): not a streameval report"
        ) from exc
    if not isinstance(data, dict) or data.get("type") not in REPORT_TYPES or "schema" not in data:
        raise InputError(
            f'{path} is not a streameval report (expected a JSON object with "type": "report" and a "schema", '
            "as written by `streameval replay/run --report`, or a batch's summary.json)"
        )
    return data


def load_log(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Metrics and alert records of a JSON Lines log, and how many lines could not be read."""
    metrics: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    skipped = 0
    lines = _read_text(path, "log").splitlines()
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            skipped += 1
            continue
        if not isinstance(record, dict):
            skipped += 1
            continue
        if record.get("type") == "metrics":
            metrics.append(record)
        elif record.get("type") == "alert":
            alerts.append(record)
    if lines and not metrics and not alerts and skipped == len([x for x in lines if x.strip()]):
        raise InputError(f"log {path} has no JSON records: not a streameval JSON Lines log")
    if skipped:
        log.warning("%s: skipped %d line(s) that are not JSON records (a cut last line?)", path, skipped)
    return metrics, alerts, skipped


def with_log(report: dict[str, Any], log_path: Path | None) -> RunRecords:
    """A run's report with the records of its JSON Lines log (none when ``log_path`` is None)."""
    if log_path is None:
        return RunRecords(report)
    metrics, alerts, skipped = load_log(log_path)
    return RunRecords(report, metrics, alerts, skipped, log_path)
