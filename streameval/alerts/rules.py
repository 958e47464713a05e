"""Alert rules: parsing and validation of the ``[[alerts]]`` configuration tables.

A rule watches one numeric field of a metric record, addressed by a dotted path (``deid.leak_rate``). It raises
when ``when`` has held for ``for`` seconds of stream time and clears when ``clear`` holds (for ``clear_for``
seconds). ``clear`` defaults to the negation of ``when``; an explicit ``clear`` on the same field gives
hysteresis. Everything is validated here, eagerly, so a bad rule fails at start-up and not an hour into a stream.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from streameval import schema
from streameval.errors import ConfigError

OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
# The negation of each operator: the default clear condition.
_NEGATION: Final[dict[str, str]] = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}
SEVERITIES: Final[tuple[str, ...]] = ("info", "warning", "error", "critical")

_PATH = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CONDITION_RE: Final = re.compile(rf"^\s*({_PATH})\s*(>=|<=|>|<)\s*({_NUMBER})\s*$")


@dataclass(frozen=True, slots=True)
class Condition:
    """``<path> <op> <threshold>``, e.g. ``deid.leak_rate > 0.05``."""

    path: str
    op: str
    threshold: float

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.threshold)

    @property
    def upward(self) -> bool:
        """True when the condition is met by large values (``>``, ``>=``)."""
        return self.op in (">", ">=")

    def __str__(self) -> str:
        return f"{self.path} {self.op} {self.threshold:g}"


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One validated alert rule; durations are in seconds of stream time."""

    name: str
    when: Condition
    clear: Condition
    for_s: float = 0.0
    clear_for_s: float = 0.0
    cooldown_s: float = 0.0
    severity: str = "warning"
    description: str = ""

    @property
    def path(self) -> str:
        return self.when.path


def parse_condition(text: str, *, key: str = "when") -> Condition:
    """Parse ``<dotted.path> <op> <number>``; raise ConfigError naming ``key`` and the text otherwise."""
    if not isinstance(text, str):
        raise ConfigError(f"{key} = {text!r}: expected a string like 'deid.leak_rate > 0.05'")
    match = _CONDITION_RE.match(text)
    if match is None:
        raise ConfigError(
            f"{key} = {text!r}: expected '<field.path> <op> <number>' with op one of "
            f"{', '.join(OPERATORS)}, e.g. 'deid.leak_rate > 0.05'"
        )
    path, op, number = match.groups()
    threshold = float(number)
    if not math.isfinite(threshold):
        raise ConfigError(f"{key} = {text!r}: the threshold must be a finite number")
    return Condition(path=path, op=op, threshold=threshold)


def parse_duration(value: object, *, key: str = "duration") -> float:
    """Seconds from a number or a string such as ``"3s"``, ``"500ms"``, ``"2m"``, ``"1h"`` (no unit = seconds):
    the one duration convention (:func:`streameval.schema.parse_duration`), never negative here."""
    seconds = schema.parse_duration(value, key)
    if seconds < 0:
        raise ConfigError(f"{key}: must be a duration >= 0, got {value!r}")
    return seconds


def _check_hysteresis(when: Condition, clear: Condition, where: str) -> None:
    """The clear region must lie on the far side of the raise region, or the alert could flap on one value."""
    if clear.path != when.path:
        raise ConfigError(f"{where}.clear = {str(clear)!r}: must test the same field as when ({when.path!r})")
    if clear.upward == when.upward:
        raise ConfigError(
            f"{where}.clear = {str(clear)!r}: must point the other way from when = {str(when)!r} "
            f"(e.g. when '> 0.05', clear '< 0.02')"
        )
    # Overlap check: is there a value that satisfies both conditions?
    low, high = (clear, when) if when.upward else (when, clear)  # low: '<'-type, high: '>'-type
    overlap = high.threshold < low.threshold or (high.threshold == low.threshold and high.op == ">=" and low.op == "<=")
    if overlap:
        raise ConfigError(
            f"{where}.clear = {str(clear)!r} overlaps when = {str(when)!r}: some values would both raise and "
            f"clear the alert"
        )


def parse_rule(table: Mapping[str, Any], *, where: str = "alerts[0]") -> AlertRule:
    """Validate one ``[[alerts]]`` table. ``where`` prefixes error messages (``alerts[2] for: ...``)."""
    from streameval.config import AlertTable  # the keys, types and defaults are declared with the config schema

    rule = schema.check_table(AlertTable, table, where)
    when = parse_condition(rule.when, key=f"{where}.when")
    if rule.clear is not None:
        clear = parse_condition(rule.clear, key=f"{where}.clear")
        _check_hysteresis(when, clear, where)
    else:
        clear = Condition(path=when.path, op=_NEGATION[when.op], threshold=when.threshold)
    return AlertRule(
        name=rule.name,
        when=when,
        clear=clear,
        for_s=rule.for_s,
        clear_for_s=rule.clear_for,
        cooldown_s=rule.cooldown,
        severity=rule.severity,
        description=rule.description,
    )


def parse_rules(tables: Sequence[Mapping[str, Any]]) -> list[AlertRule]:
    """Validate the ``[[alerts]]`` list of a TOML config; rule names must be unique."""
    if isinstance(tables, str | bytes) or not isinstance(tables, Sequence):
        raise ConfigError(f"alerts = {tables!r}: expected a list of tables ([[alerts]] in TOML)")
    rules: list[AlertRule] = []
    seen: set[str] = set()
    for index, table in enumerate(tables):
        rule = parse_rule(table, where=f"alerts[{index}]")
        if rule.name in seen:
            raise ConfigError(f"alerts[{index}].name = {rule.name!r}: duplicate rule name")
        seen.add(rule.name)
        rules.append(rule)
    return rules
