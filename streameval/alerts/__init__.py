"""Windowed threshold alerts over metric records (hysteresis, minimum duration, cooldown)."""

from __future__ import annotations

from streameval.alerts.engine import AlertEngine, RuleState, step
from streameval.alerts.rules import AlertRule, Condition, parse_condition, parse_duration, parse_rule, parse_rules

__all__ = [
    "AlertEngine",
    "AlertRule",
    "Condition",
    "RuleState",
    "parse_condition",
    "parse_duration",
    "parse_rule",
    "parse_rules",
    "step",
]
