"""Alert rules and engine, driven by record times (no clock, no sleeps); expected events are hand-computed."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from streameval.alerts import AlertEngine, parse_duration, parse_rules
from streameval.errors import ConfigError, StreamevalError


def metric(t: float, value: float | None, *, path: str = "deid.leak_rate", seq: int = 0) -> dict[str, Any]:
    family, key = path.split(".")
    return {
        "schema": 1,
        "type": "metrics",
        "stream_id": "cam1",
        "seq": seq,
        "window": {"start": t - 1.0, "end": t},
        family: {key: value},
    }


def run(rule: dict[str, Any], series: Iterable[tuple[float, float | None]]) -> list[tuple[str, float, float | None]]:
    engine = AlertEngine(parse_rules([rule]))
    events = []
    for seq, (t, v) in enumerate(series):
        for alert in engine.evaluate(metric(t, v, seq=seq)):
            events.append((alert["event"], alert["time"], alert["value"]))
    return events


def timed(values: Sequence[float | None], start: float = 0.0, hop: float = 1.0) -> list[tuple[float, float | None]]:
    return [(start + i * hop, v) for i, v in enumerate(values)]


LEAK = {"name": "leak", "when": "deid.leak_rate > 0.5", "clear": "deid.leak_rate < 0.2"}


def test_hysteresis_band_keeps_state() -> None:
    # t: 0    1    2    3    4    5    6
    values = [0.1, 0.6, 0.4, 0.3, 0.1, 0.3, 0.6]
    # 0.6 raises at 1; 0.4 and 0.3 lie in the band (stay active); 0.1 clears at 4; 0.3 is in the band (stay
    # clear); 0.6 raises again at 6.
    assert run(LEAK, timed(values)) == [("raise", 1.0, 0.6), ("clear", 4.0, 0.1), ("raise", 6.0, 0.6)]


def test_without_clear_the_negation_clears() -> None:
    rule = {"name": "fid", "when": "reality.fid >= 50"}
    series = [(0.0, 49.0), (1.0, 50.0), (2.0, 49.99), (3.0, 50.0)]
    events = [(e, t, v) for e, t, v in run_path(rule, series, "reality.fid")]
    assert events == [("raise", 1.0, 50.0), ("clear", 2.0, 49.99), ("raise", 3.0, 50.0)]


def run_path(
    rule: dict[str, Any], series: Iterable[tuple[float, float | None]], path: str
) -> list[tuple[str, float, Any]]:
    engine = AlertEngine(parse_rules([rule]))
    out = []
    for t, v in series:
        out += [(a["event"], a["time"], a["value"]) for a in engine.evaluate(metric(t, v, path=path))]
    return out


def test_minimum_duration_restarts_on_interruption() -> None:
    rule = {**LEAK, "for": "3s"}
    # t: 0    1    2    3    4    5    6    7
    values = [0.6, 0.6, 0.4, 0.6, 0.6, 0.6, 0.6, 0.6]
    # Pending from 0, interrupted at 2 (0.4 does not satisfy 'when'), pending again from 3, 6 - 3 = 3 s: raise.
    assert run(rule, timed(values)) == [("raise", 6.0, 0.6)]


def test_minimum_duration_with_fractional_hops() -> None:
    # Window ends accumulate 0.1 s hops in floating point (0.1 * 3 != 0.3); 'for 0.3s' must still raise on the
    # 4th consecutive record, not the 5th.
    rule = {**LEAK, "for": "300ms"}
    t, series = 0.0, []
    for _ in range(6):
        series.append((t, 0.9))
        t += 0.1
    events = run(rule, series)
    assert len(events) == 1
    assert events[0][0] == "raise"
    assert events[0][1] == pytest.approx(0.3)


def test_clear_for_needs_sustained_recovery() -> None:
    rule = {**LEAK, "clear_for": "2s"}
    # t: 0    1    2    3    4    5    6
    values = [0.6, 0.1, 0.1, 0.3, 0.1, 0.1, 0.1]
    # raise at 0; clear pending from 1, interrupted at 3 (band value does not satisfy 'clear'), pending from 4,
    # cleared at 6.
    assert run(rule, timed(values)) == [("raise", 0.0, 0.6), ("clear", 6.0, 0.1)]


def test_cooldown_defers_the_next_raise() -> None:
    rule = {**LEAK, "cooldown": "10s"}
    series = [
        (0.0, 0.6),  # raise
        (1.0, 0.1),  # clear; quiet until 11
        (2.0, 0.6),  # would raise, deferred (pending since 2)
        (5.0, 0.7),  # still deferred
        (11.0, 0.8),  # cooldown over, condition held since 2: raise
        (12.0, 0.1),  # clear; quiet until 22
        (13.0, 0.6),  # deferred
        (15.0, 0.3),  # 'when' no longer holds: pending dropped
        (21.0, 0.6),  # deferred (21 - 12 < 10)
        (22.0, 0.6),  # raise
    ]
    assert run(rule, series) == [
        ("raise", 0.0, 0.6),
        ("clear", 1.0, 0.1),
        ("raise", 11.0, 0.8),
        ("clear", 12.0, 0.1),
        ("raise", 22.0, 0.6),
    ]


def test_cooldown_and_minimum_duration_combine() -> None:
    rule = {**LEAK, "for": "2s", "cooldown": "3s"}
    # raise at 2 (held 0..2), clear at 3, cooldown until 6; pending from 4, held 2 s at 6 and cooled: raise at 6.
    values = [0.6, 0.6, 0.6, 0.1, 0.6, 0.6, 0.6]
    assert run(rule, timed(values)) == [("raise", 2.0, 0.6), ("clear", 3.0, 0.1), ("raise", 6.0, 0.6)]


def test_missing_data_keeps_state_and_timers(caplog: pytest.LogCaptureFixture) -> None:
    rule = {**LEAK, "for": "3s"}
    engine = AlertEngine(parse_rules([rule]))
    assert engine.evaluate(metric(0.0, 0.6)) == []
    assert engine.evaluate(metric(1.0, None)) == []  # None: no data
    other = metric(2.0, 0.0, path="expression.pcc_mean")  # field absent: no data (warned once)
    assert engine.evaluate(other) == []
    assert "not in the metric records" in caplog.text
    raised = engine.evaluate(metric(3.0, 0.6))  # held since 0 through the gap: raise
    assert [(a["event"], a["since"], a["duration_s"]) for a in raised] == [("raise", 0.0, 3.0)]
    # While active, no data does not clear.
    assert engine.evaluate(metric(4.0, None)) == []
    assert engine.evaluate(metric(5.0, float("nan"))) == []
    assert [a["rule"] for a in engine.active()] == ["leak"]


def test_noisy_series_does_not_flap() -> None:
    # A signal that is low for 20 s, high for 20 s, low again, with noise that crosses the raise threshold 0.5
    # every other sample in the low phases and dips below it (but not below the clear threshold 0.2) in the high
    # phase. Expected: the last low sample (t=19) is already 0.7, so 'when' holds from 19 and the raise comes at
    # 22 (3 s later), not 23; the clear comes at the first low value of the second low phase (t=40).
    low = [0.0 if i % 2 == 0 else 0.7 for i in range(20)]
    high = [1.0] * 4 + [1.0 if i % 2 == 0 else 0.3 for i in range(16)]
    values = low + high + low
    crossings = sum((a > 0.5) != (b > 0.5) for a, b in itertools.pairwise(values))
    assert crossings > 40  # a single threshold without hysteresis or duration would flap
    rule = {**LEAK, "for": "3s"}
    assert run(rule, timed(values)) == [("raise", 22.0, 1.0), ("clear", 40.0, 0.0)]


def test_downward_rule_and_alert_record_contents() -> None:
    rule = {
        "name": "expr",
        "when": "expression.pcc_mean < 0.5",
        "clear": "expression.pcc_mean >= 0.7",
        "severity": "critical",
        "description": "expression lost",
    }
    engine = AlertEngine(parse_rules([rule]))
    assert engine.evaluate(metric(1.0, 0.6, path="expression.pcc_mean")) == []
    (raised,) = engine.evaluate(metric(2.0, 0.4, path="expression.pcc_mean", seq=7))
    assert raised == {
        "schema": 1,
        "type": "alert",
        "stream_id": "cam1",
        "seq": 7,
        "event": "raise",
        "rule": "expr",
        "severity": "critical",
        "field": "expression.pcc_mean",
        "value": 0.4,
        "time": 2.0,
        "description": "expression lost",
        "condition": "expression.pcc_mean < 0.5",
        "since": 2.0,
        "duration_s": 0.0,
        "window": {"start": 1.0, "end": 2.0},
    }
    assert engine.evaluate(metric(3.0, 0.69, path="expression.pcc_mean")) == []
    assert engine.evaluate({"type": "status", "state": "online"}) == []
    (end,) = engine.close()
    assert (end["event"], end["since"], end["time"], end["value"], end["duration_s"]) == (
        "active_at_end",
        2.0,
        3.0,
        0.69,
        1.0,
    )
    with pytest.raises(StreamevalError):
        engine.evaluate(metric(4.0, 0.1, path="expression.pcc_mean"))


def test_rules_are_independent() -> None:
    rules = parse_rules(
        [
            {"name": "lag", "when": "health.lag_s > 2"},
            {"name": "cov", "when": "coverage.deid < 0.9", "clear": "coverage.deid > 0.95"},
        ]
    )
    engine = AlertEngine(rules)
    rec = {"type": "metrics", "window": {"start": 0, "end": 1}, "health": {"lag_s": 3}, "coverage": {"deid": 0.92}}
    assert [(a["rule"], a["event"]) for a in engine.evaluate(rec)] == [("lag", "raise")]
    rec = {"type": "metrics", "window": {"start": 1, "end": 2}, "health": {"lag_s": 1}, "coverage": {"deid": 0.5}}
    assert [(a["rule"], a["event"]) for a in engine.evaluate(rec)] == [("lag", "clear"), ("cov", "raise")]


def test_time_going_back_is_ignored() -> None:
    engine = AlertEngine(parse_rules([LEAK]))
    assert [a["event"] for a in engine.evaluate(metric(5.0, 0.6))] == ["raise"]
    assert engine.evaluate(metric(4.0, 0.1)) == []  # out of order: ignored
    assert [a["event"] for a in engine.evaluate(metric(6.0, 0.1))] == ["clear"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3s", 3.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0), ("1.5s", 1.5), (" 4 ", 4.0), (7, 7.0), (0.25, 0.25)],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("table", "fragments"),
    [
        ({**LEAK, "fro": "3s"}, ["alerts[0]", "unknown key 'fro'", "did you mean 'for'"]),
        ({"name": "x", "when": "deid.leak_rate >> 0.05"}, ["alerts[0].when", "'deid.leak_rate >> 0.05'"]),
        ({"name": "x", "when": "deid.leak_rate > high"}, ["alerts[0].when", "high"]),
        ({"name": "x", "when": "> 0.05"}, ["alerts[0].when"]),
        ({"name": "x", "when": 0.05}, ["alerts[0].when", "0.05"]),
        ({"name": "x"}, ["alerts[0]", "'when'"]),
        ({"when": "a.b > 1"}, ["alerts[0]", "'name'"]),
        ({**LEAK, "for": "3 weeks"}, ["alerts[0].for", "'3 weeks'"]),
        ({**LEAK, "cooldown": -1}, ["alerts[0].cooldown", "-1"]),
        ({**LEAK, "severity": "fatal"}, ["alerts[0].severity", "'fatal'"]),
        ({**LEAK, "clear": "deid.swap_rate < 0.2"}, ["alerts[0].clear", "same field"]),
        ({**LEAK, "clear": "deid.leak_rate > 0.2"}, ["alerts[0].clear", "other way"]),
        ({**LEAK, "clear": "deid.leak_rate < 0.6"}, ["alerts[0].clear", "overlaps"]),
        ({"name": "x", "when": "a.b >= 1", "clear": "a.b <= 1"}, ["overlaps"]),
    ],
)
def test_parse_rules_rejects_with_key_and_value(table: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_rules([table])
    for fragment in fragments:
        assert fragment in str(info.value)


def test_parse_rules_accepts_touching_thresholds_and_rejects_duplicates() -> None:
    (rule,) = parse_rules([{"name": "x", "when": "a.b > 1", "clear": "a.b <= 1", "for": 2, "cooldown": "1m"}])
    assert (rule.for_s, rule.cooldown_s, rule.clear_for_s, rule.severity) == (2.0, 60.0, 0.0, "warning")
    with pytest.raises(ConfigError, match=r"alerts\[1\]\.name = 'x'"):
        parse_rules([{"name": "x", "when": "a.b > 1"}, {"name": "x", "when": "a.c > 1"}])
    with pytest.raises(ConfigError, match="list of tables"):
        parse_rules({"name": "x"})  # type: ignore[arg-type]
