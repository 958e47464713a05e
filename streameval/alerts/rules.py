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
RULE_KEYS: Final[frozenset[str]] = frozenset(
    {"name", "when", "clear", "for", "clear_for", "cooldown", "severity", "description"}
)

_PATH = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CONDITION_RE: Final = re.compile(rf"^\s*({_PATH})\s*(>=|<=|>|<)\s*({_NUMBER})\s*$")
_DURATION_RE: Final = re.compile(r"^\s*(\d+\.?\d*|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS: Final[dict[str, float]] = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


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
    """Seconds from a number or a string such as ``"3s"``, ``"500ms"``, ``"2m"``, ``"1h"`` (no unit = seconds)."""
    if isinstance(value, bool):
        raise ConfigError(f"{key} = {value!r}: expected a duration such as '3s', '500ms', '2m' or a number")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)) is not None:
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    else:
        raise ConfigError(f"{key} = {value!r}: expected a duration such as '3s', '500ms', '2m' or a number")
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"{key} = {value!r}: a duration must be finite and >= 0")
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
    """Validate one ``[[alerts]]`` table. ``where`` prefixes error messages (``alerts[2].for = ...``)."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} = {table!r}: expected a table with at least 'name' and 'when'")
    unknown = sorted(set(table) - RULE_KEYS)
    if unknown:
        key = unknown[0]
        raise ConfigError(f"{where}.{key} = {table[key]!r}: unknown key (allowed: {', '.join(sorted(RULE_KEYS))})")
    for required in ("name", "when"):
        if required not in table:
            raise ConfigError(f"{where}: missing required key {required!r}")
    name = table["name"]
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.name = {name!r}: expected a non-empty string")
    when = parse_condition(table["when"], key=f"{where}.when")
    if "clear" in table:
        clear = parse_condition(table["clear"], key=f"{where}.clear")
        _check_hysteresis(when, clear, where)
    else:
        clear = Condition(path=when.path, op=_NEGATION[when.op], threshold=when.threshold)
    severity = table.get("severity", "warning")
    if severity not in SEVERITIES:
        raise ConfigError(f"{where}.severity = {severity!r}: expected one of {', '.join(SEVERITIES)}")
    description = table.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where}.description = {description!r}: expected a string")
    return AlertRule(
        name=name,
        when=when,
        clear=clear,
        for_s=parse_duration(table.get("for", 0), key=f"{where}.for"),
        clear_for_s=parse_duration(table.get("clear_for", 0), key=f"{where}.clear_for"),
        cooldown_s=parse_duration(table.get("cooldown", 0), key=f"{where}.cooldown"),
        severity=severity,
        description=description,
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
