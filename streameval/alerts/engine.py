"""The alert state machine, in stream time.

``step`` is a pure transition function (rule, state, time, value) -> (state, event); ``AlertEngine`` only keeps
one state per rule and turns events into ``alert`` records. Time is the metric record's window end, never the
wall clock, so a replay gives the same alerts as the live run and tests need no sleeps.

Semantics (see docs/alerts.md):
- inactive: ``when`` must hold on every record with data for at least ``for`` seconds (first to latest such
  record); a record where it does not hold restarts the count. A clear less than ``cooldown`` seconds ago
  defers the raise (the count keeps running) until the cooldown has passed.
- active: ``clear`` must hold for at least ``clear_for`` seconds; values between the two thresholds keep the
  alert active (hysteresis).
- a missing or None value is "no data", not "OK": the rule keeps its state and its timers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from streameval.alerts.rules import AlertRule
from streameval.errors import StreamevalError
from streameval.sinks.base import MISSING, SCHEMA_VERSION, Record, lookup

logger = logging.getLogger(__name__)

# Window ends are sums of float hops; compare durations with a tolerance so 3 hops of 0.1 s make 0.3 s.
_EPS: Final = 1e-9

EventKind = Literal["raise", "clear"]


@dataclass(frozen=True, slots=True)
class RuleState:
    """Where one rule stands. ``since`` is when the pending condition (raise or clear) started holding."""

    active: bool = False
    since: float | None = None
    raised_at: float | None = None
    cleared_at: float | None = None
    last_time: float | None = None
    last_value: float | None = None


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    time: float
    value: float
    since: float


def step(rule: AlertRule, state: RuleState, time: float, value: float) -> tuple[RuleState, Event | None]:
    """Advance ``rule`` by one observation with data; return the new state and the event it caused, if any."""
    seen = replace(state, last_time=time, last_value=value)
    if not state.active:
        if not rule.when.holds(value):
            return replace(seen, since=None), None
        since = time if state.since is None else state.since
        held_long_enough = time - since >= rule.for_s - _EPS
        cooled_down = state.cleared_at is None or time - state.cleared_at >= rule.cooldown_s - _EPS
        if held_long_enough and cooled_down:
            return replace(seen, active=True, since=None, raised_at=time), Event("raise", time, value, since)
        return replace(seen, since=since), None
    if not rule.clear.holds(value):
        return replace(seen, since=None), None
    since = time if state.since is None else state.since
    if time - since >= rule.clear_for_s - _EPS:
        raised_at = state.raised_at if state.raised_at is not None else since
        return replace(seen, active=False, since=None, cleared_at=time), Event("clear", time, value, raised_at)
    return replace(seen, since=since), None


def record_time(record: Mapping[str, Any]) -> float | None:
    """A metric record's stream time: its window end in seconds."""
    window = record.get("window")
    end = window.get("end") if isinstance(window, Mapping) else None
    if isinstance(end, int | float) and not isinstance(end, bool) and math.isfinite(end):
        return float(end)
    return None


class AlertEngine:
    """Evaluates rules over metric records; returns ``alert`` records for raise and clear events."""

    def __init__(self, rules: Sequence[AlertRule]) -> None:
        names = [rule.name for rule in rules]
        if len(set(names)) != len(names):
            raise StreamevalError(f"alert rule names must be unique, got {names!r}")
        self._rules = tuple(rules)
        self._states = {rule.name: RuleState() for rule in self._rules}
        self._warned: set[tuple[str, str]] = set()
        self._stream_id: Any = None
        self._last_seq: Any = None
        self._closed = False

    @property
    def rules(self) -> tuple[AlertRule, ...]:
        return self._rules

    def state(self, name: str) -> RuleState:
        return self._states[name]

    def evaluate(self, record: Record) -> list[dict[str, Any]]:
        """Feed one record; non-``metrics`` records are ignored. Returns the alert records it caused."""
        if self._closed:
            raise StreamevalError("AlertEngine.evaluate() after close()")
        if record.get("type") != "metrics":
            return []
        time = record_time(record)
        if time is None:
            self._warn_once("*", "time", "metric record without a numeric window.end; alerts skip it")
            return []
        self._stream_id = record.get("stream_id", self._stream_id)
        self._last_seq = record.get("seq")
        alerts: list[dict[str, Any]] = []
        for rule in self._rules:
            state = self._states[rule.name]
            if state.last_time is not None and time < state.last_time:
                self._warn_once(rule.name, "order", f"stream time went back from {state.last_time} to {time}")
                continue
            value = self._value(rule, record)
            if value is None:
                continue  # no data: keep state and timers
            new_state, event = step(rule, state, time, value)
            self._states[rule.name] = new_state
            if event is not None:
                alerts.append(self._alert(rule, event, record))
        return alerts

    def active(self) -> list[dict[str, Any]]:
        """The rules currently raised: name, severity, field, since (stream time) and the last value seen."""
        return [
            {
                "rule": rule.name,
                "severity": rule.severity,
                "field": rule.path,
                "since": state.raised_at,
                "value": state.last_value,
                "time": state.last_time,
            }
            for rule in self._rules
            if (state := self._states[rule.name]).active
        ]

    def close(self) -> list[dict[str, Any]]:
        """End of stream: one ``alert`` record with event ``active_at_end`` per rule still raised."""
        self._closed = True
        records = []
        for rule in self._rules:
            state = self._states[rule.name]
            if state.active and state.last_time is not None and state.raised_at is not None:
                records.append(
                    self._base(rule, "active_at_end", state.last_time, state.last_value)
                    | {"since": state.raised_at, "duration_s": state.last_time - state.raised_at}
                )
        return records

    def _value(self, rule: AlertRule, record: Record) -> float | None:
        value = lookup(record, rule.path)
        if value is MISSING:
            self._warn_once(rule.name, "missing", f"field {rule.path!r} is not in the metric records")
            return None
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._warn_once(rule.name, "type", f"field {rule.path!r} is {type(value).__name__}, not a number")
            return None
        if not math.isfinite(value):
            return None
        return float(value)

    def _base(self, rule: AlertRule, event: str, time: float, value: float | None) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "type": "alert",
            "stream_id": self._stream_id,
            "seq": self._last_seq,
            "event": event,
            "rule": rule.name,
            "severity": rule.severity,
            "field": rule.path,
            "value": value,
            "time": time,
            "description": rule.description,
        }

    def _alert(self, rule: AlertRule, event: Event, record: Record) -> dict[str, Any]:
        condition = rule.when if event.kind == "raise" else rule.clear
        return self._base(rule, event.kind, event.time, event.value) | {
            "condition": str(condition),
            "since": event.since,
            "duration_s": event.time - event.since,
            "window": dict(record["window"]),
        }

    def _warn_once(self, rule: str, what: str, message: str) -> None:
        if (rule, what) not in self._warned:
            self._warned.add((rule, what))
            logger.warning("alert rule %s: %s", rule, message)
