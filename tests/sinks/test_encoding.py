"""The one JSON encoding of every sink: NaN/inf as null, numpy values as plain JSON, the same bytes everywhere."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streameval.sinks.encoding import dumps, encode, to_jsonable
from streameval.sinks.jsonl import JsonLinesSink, write_json_atomic
from streameval.sinks.mqtt import encode as mqtt_encode

STRAY = {
    "schema": 1,
    "type": "metrics",
    "nan": float("nan"),
    "inf": float("inf"),
    "ninf": -math.inf,
    "np_nan": np.float32("nan"),
    "np": {"f32": np.float32(0.5), "i64": np.int64(-3), "u8": np.uint8(7), "b": np.bool_(True)},
    "arr": np.array([[1.0, np.nan], [np.inf, 2.5]]),
    "ints": np.arange(3, dtype=np.int16),
    "tuple": (1, 2.0),
    "path": Path("/tmp/x"),
    "keys": {1: "one"},
}
EXPECTED = {
    "schema": 1,
    "type": "metrics",
    "nan": None,
    "inf": None,
    "ninf": None,
    "np_nan": None,
    "np": {"f32": 0.5, "i64": -3, "u8": 7, "b": True},
    "arr": [[1.0, None], [None, 2.5]],
    "ints": [0, 1, 2],
    "tuple": [1, 2.0],
    "path": "/tmp/x",
    "keys": {"1": "one"},
}


def test_every_sink_encodes_the_same_way(tmp_path: Path) -> None:
    """The bug: jsonl.dumps wrote NaN as null while mqtt.encode raised, so one NaN aborted an MQTT run only."""
    assert json.loads(dumps(STRAY)) == EXPECTED
    assert json.loads(mqtt_encode(STRAY)) == EXPECTED
    assert mqtt_encode(STRAY) == encode(STRAY)

    async def log() -> None:
        async with JsonLinesSink(tmp_path / "log.jsonl") as sink:
            await sink.publish(STRAY)

    asyncio.run(log())
    assert json.loads((tmp_path / "log.jsonl").read_text()) == EXPECTED
    write_json_atomic(tmp_path / "report.json", STRAY)
    assert json.loads((tmp_path / "report.json").read_text()) == EXPECTED


def test_output_is_strict_json() -> None:
    text = dumps(STRAY)
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard token {name}"))
    assert "\n" not in text and "\n" in dumps(STRAY, indent=2)


def test_unencodable_values_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="object"):
        to_jsonable({"x": object()})
    with pytest.raises(TypeError, match="bytes"):
        to_jsonable({"x": b"raw"})


json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_round_trip_keeps_finite_values_and_nulls_the_rest(value: Any) -> None:
    def expected(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, list):
            return [expected(x) for x in v]
        if isinstance(v, dict):
            return {k: expected(x) for k, x in v.items()}
        return v

    assert json.loads(dumps({"v": value})) == {"v": expected(value)}
