"""Records emitted by real runs (JSON Lines log, report file, MQTT payloads) validate against the JSON Schemas
in docs/schemas/, and the schemas are not vacuous."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from streameval.cli import EXIT_OK, main
from streameval.datasets import example_video
from streameval.sinks.mqtt import encode as mqtt_encode

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = ROOT / "docs" / "schemas"
SCHEMAS = {name: json.loads((SCHEMA_DIR / f"{name}.json").read_text()) for name in ("metrics", "alert", "report")}
REGISTRY: Registry[Any] = Registry().with_resources(
    [(schema["$id"], Resource.from_contents(schema)) for schema in SCHEMAS.values()]
)
ALERTS = """
[[alerts]]
name = "low-psnr"
when = "pixel.psnr_mean < 60"
severity = "critical"

[[alerts]]
name = "quiet"
when = "health.paired < 0"
"""


def errors(record: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMAS[record["type"]], registry=REGISTRY)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(record)]


def replay(tmp_path: Path, config: str, *extra: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    cfg = tmp_path / "run.toml"
    cfg.write_text(config)
    log, report = tmp_path / "records.jsonl", tmp_path / "report.json"
    pristine, distorted = example_video("carphone_pristine"), example_video("carphone_distorted")
    argv = ["-q", "replay", str(pristine), str(distorted), "--config", str(cfg), "--log", str(log)]
    assert main([*argv, "--report", str(report), *extra]) == EXIT_OK
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return records, json.loads(report.read_text())


def check(records: list[dict[str, Any]], report: dict[str, Any]) -> None:
    for record in [*records, report]:
        assert errors(record) == [], record["type"]
        # the MQTT payload of the same record, in the one encoding of every sink
        assert errors(json.loads(mqtt_encode(record))) == [], record["type"]


def test_schemas_are_valid_json_schemas() -> None:
    for schema in SCHEMAS.values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_pixel_run_records_and_report_validate(tmp_path: Path) -> None:
    records, report = replay(tmp_path, '[pixel]\nregion = "frame"\n' + ALERTS, "--window", "1s", "--hop", "500ms")
    types = {r["type"] for r in records}
    assert types == {"metrics", "alert", "report"}
    check(records, report)
    assert report["alerts"]["events"] and report["alerts"]["active_at_end"]


@pytest.mark.slow
def test_every_family_validates(tmp_path: Path, models_dir: Path) -> None:
    config = 'metrics = ["identity", "expression", "reality", "pixel"]\n[reality]\nstride = 16\n'
    config += '[identity]\nrecognisers = ["dlib", "faceres"]\n' + ALERTS  # both bundled recognisers
    records, report = replay(tmp_path, config, "--window", "2s", "--hop", "1s")
    check(records, report)
    assert {"dlib", "faceres"} <= set(report["totals"]["deid"])
    assert (
        sum(len(r["deid"]["pairs"]) for r in records if r["type"] == "metrics")
        == report["totals"]["deid"]["analysed_pairs"]
    )
    families = {"deid", "expression", "reality", "pixel", "coverage", "health"}
    assert families <= set(report["totals"]) and "paper" in report
    assert any(families <= set(r) for r in records if r["type"] == "metrics")


def test_schemas_refuse_what_consumers_cannot_use() -> None:
    """The schemas catch drift: a missing field, a NaN written as a string, an unknown family, a bad event."""
    window = {"start": 0.0, "end": 1.0, "length_s": 1.0, "final": False}
    health = {"paired": 1, "unpaired_source": 0, "unpaired_deid": 0, "dropped": 0}
    good = {"schema": 1, "type": "metrics", "stream_id": "s", "seq": 0, "window": window, "health": health}
    assert errors(good) == []
    assert errors({**good, "pixel": {"region": "frame", "psnr_mean": None, "ssim_mean": 0.5}}) == []
    assert errors({k: v for k, v in good.items() if k != "window"})
    assert errors({**good, "pixel": {"region": "frame", "psnr_mean": "NaN", "ssim_mean": 0.5}})
    assert errors({**good, "pixle": {}})
    assert errors({**good, "coverage": {"source": 1.5, "deid": 1.0}})
    alert = {"schema": 1, "type": "alert", "stream_id": "s", "event": "raise", "rule": "r", "severity": "warning",
             "field": "a.b", "time": 1.0, "since": 1.0}  # fmt: skip
    assert errors(alert) == []
    assert errors({**alert, "event": "explode"})
