"""The one configuration schema: every table checked at load, one duration convention, defaults in one place,
and the docs (README option table, docs/config.md, docs/config.schema.json) checked against it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from streameval.cli import main
from streameval.config import TABLES, AlertTable, FacesTable, MqttTable, RunConfig, load_config
from streameval.errors import ConfigError
from streameval.schema import convert, default_of, settings_of

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, **overrides: Any) -> RunConfig:
    return load_config(write(tmp_path, text), {"metrics": "pixel", **overrides})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[reality]\nstrid = 8", "[reality]: unknown key 'strid'; did you mean 'stride'?"),
        ("[faces]\nmin_scor = 0.5", "[faces]: unknown key 'min_scor'; did you mean 'min_score'?"),
        ('[models]\ndevise = "cpu"', "[models]: unknown key 'devise'; did you mean 'device'?"),
        ('[identity]\nrefa = "a.png"', "[identity]: unknown key 'refa'; did you mean 'ref_a'?"),
        ('[expression]\nau_sources = "mesh"', "did you mean 'au_source'?"),
        ('[mqtt]\nurl = "mqtt://h"\nflush_timeout_s = 2', "[mqtt]: unknown key 'flush_timeout_s'; did you mean 'flush"),
        ('[[alerts]]\nname = "a"\nwhen = "x.y > 1"\nfro = "3s"', "alerts[0]: unknown key 'fro'; did you mean 'for'?"),
        ("[facess]\ntiles = 2", "unknown key 'facess'; did you mean 'faces'?"),
        ("windw = 5", "unknown key 'windw'; did you mean 'window'?"),
        ("[rate]\nidentiy = 2", "rate: unknown key 'identiy'; did you mean 'identity'?"),
    ],
)  # fmt: skip
def test_every_table_is_checked_whatever_families_run(tmp_path: Path, text: str, message: str) -> None:
    """The bug: with --metrics pixel, misspelt keys of the other families' tables loaded without a word."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[faces]\nmax_faces = "4"', "[faces] max_faces: must be an integer, got '4'"),
        ("[faces]\ntracking = 1", "[faces] tracking: must be true or false, got 1"),
        ("[faces]\nmin_score = 1.5", "[faces] min_score: must be a number in [0, 1], got 1.5"),
        ('[models]\ndevice = "gpu"', "[models] device: must be 'auto', 'cpu' or 'cuda', got 'gpu'"),
        ('[models]\nthreads = "many"', "[models] threads: must be 'auto' or an integer, got 'many'"),
        ("[pixel]\nregion = 3", "[pixel] region: must be 'face' or 'frame', got 3"),
        ('[reality]\nclip_every = "soon"', "[reality] clip_every: must be a duration like '2s'"),
        ('[identity]\nrecognisers = ["vgg"]',
         "[identity] recognisers[0]: must be 'dlib', 'insightface' or 'faceres', got 'vgg'"),
        ("window = true", "window: must be a duration like '2s', '500ms' or '1m' (a number means seconds), got True"),
        ('metrics = [["pixel"]]', "metrics[0]: must be a string, got ['pixel']"),
        ('metrics = "pixel,pixle"', "metrics[1]: unknown family 'pixle'; did you mean 'pixel'?"),
        ('queue_size = "4"', "queue_size: must be an integer, got '4'"),
        ("[rate]\nidentity = inf", "rate.identity: must be a finite number, got inf"),
        ("[rate]\nidentity = 0", "rate.identity: must be a positive number, got 0"),
        ("reality = 3", "[reality] must be a table, got 3"),
        ('[mqtt]\nurl = "mqtt://h"\nqos = 3', "[mqtt] qos: must be 0, 1 or 2, got 3"),
    ],
)  # fmt: skip
def test_wrong_types_and_values_are_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_bad_table_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, '[models]\ndevise = "cpu"\n')
    assert main(["replay", "a.mp4", "b.mp4", "--metrics", "pixel", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[models]: unknown key 'devise'; did you mean 'device'?" in err[0]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("2s", 2.0), ("500ms", 0.5), ("1m", 60.0), ("1.5h", 5400.0), (2, 2.0), (0.25, 0.25), ("3", 3.0), ("-2s", -2.0)],
)
def test_one_duration_convention(tmp_path: Path, value: object, seconds: float) -> None:
    literal = json.dumps(value)
    assert load(tmp_path, f"offset = {literal}").offset == seconds
    if seconds > 0:
        assert load(tmp_path, f"[faces]\nredetect_every = {literal}").table(FacesTable).redetect_every == seconds
        alerts = f'[[alerts]]\nname = "a"\nwhen = "x.y > 1"\nfor = {literal}'
        from streameval.alerts import parse_rules

        assert parse_rules(load(tmp_path, alerts).alerts)[0].for_s == seconds
        mqtt = load(tmp_path, f'[mqtt]\nurl = "mqtt://h"\ntimeout = {literal}').table(MqttTable)
        assert mqtt.timeout == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('window = "-2s"', "window: must be a positive duration, got '-2s'"),
        ('[reality]\nclip_every = "-2s"', "[reality] clip_every: must be a positive duration, got '-2s'"),
        ('[[alerts]]\nname = "a"\nwhen = "x.y > 1"\nfor = "-2s"', "alerts[0].for: must be a duration >= 0, got '-2s'"),
        ('[mqtt]\nurl = "mqtt://h"\ntimeout = "-2s"', "[mqtt] timeout: must be a positive duration, got '-2s'"),
        ('tolerance = "-2s"', "tolerance: must be a duration >= 0, got '-2s'"),
    ],
)
def test_negative_durations_are_refused_the_same_way_everywhere(tmp_path: Path, text: str, message: str) -> None:
    """The bug: '-2s' was accepted by one of the two duration parsers and refused by the other."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert message in str(info.value)


def test_defaults_live_in_the_schema() -> None:
    from streameval.faces.tracker import TrackerOptions
    from streameval.pairing import PairingConfig
    from streameval.pipeline import PipelineConfig
    from streameval.sinks.mqtt_settings import MqttSettings
    from streameval.windows import WindowConfig

    run, faces, mqtt = RunConfig(), FacesTable(), MqttTable()
    assert PairingConfig().max_pending == run.max_pending == 64  # was 256 in PairingConfig
    assert (WindowConfig().window, WindowConfig().hop) == (run.window, run.hop)
    assert PipelineConfig().queue_size == run.queue_size
    tracker = TrackerOptions()
    for key in ("tracking", "redetect_every", "min_presence", "max_faces", "cut_threshold"):
        assert getattr(tracker, key) == getattr(faces, key), key
    settings = MqttSettings(host="h")
    assert (settings.qos, settings.keepalive, settings.timeout_s, settings.flush_timeout_s) == (
        mqtt.qos,
        mqtt.keepalive,
        mqtt.timeout,
        mqtt.flush_timeout,
    )
    assert (settings.backoff_initial_s, settings.backoff_max_s) == (mqtt.backoff_initial, mqtt.backoff_max)


def test_a_config_without_tables_is_valid_and_tables_get_their_defaults() -> None:
    config = load_config()
    for cls in TABLES.values():
        if cls is not MqttTable:  # [mqtt] without url is refused only when the table is given
            assert config.table(cls) == cls()


# -------------------------------------------------------------------------------------- docs against schema


def _rows(markdown: str, heading: str) -> list[list[str]]:
    """The cells of the first Markdown table after ``heading``."""
    start = markdown.index(heading)
    lines = markdown[start:].splitlines()[1:]
    rows: list[list[str]] = []
    for line in lines:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif rows:
            break
    return [r for r in rows if r[0] not in ("key", "flag")]  # without the header row


def _check_documented(cls: type[Any], rows: list[tuple[str, str]], where: str) -> None:
    keys = settings_of(cls)
    documented = {}
    for key_cell, default_cell in rows:
        key = key_cell.strip("`")
        assert key in keys, f"{where}: documented key {key!r} is not in the schema"
        documented[key] = default_cell
    missing = sorted(set(keys) - set(documented))
    assert not missing, f"{where}: schema keys not documented: {missing}"
    for key, cell in documented.items():
        hint, meta, f = keys[key]
        default = default_of(f)
        if cell.startswith("`") and cell.endswith("`"):
            written = tomllib.loads(f"v = {cell.strip('`')}")["v"]
            assert convert(written, hint, meta, key) == default, f"{where} {key}: documented default {cell}"
        else:
            expected = meta.shown_default if meta.shown_default is not None else "none"
            assert cell == expected, f"{where} {key}: documented default {cell!r}, schema says {expected!r}"


def test_readme_option_table_matches_the_schema() -> None:
    rows = _rows((ROOT / "README.md").read_text(encoding="utf-8"), "| flag | key | default | meaning |")
    _check_documented(RunConfig, [(r[1], r[2]) for r in rows], "README")


@pytest.mark.parametrize("name", [*TABLES, "alerts"])
def test_docs_config_tables_match_the_schema(name: str) -> None:
    heading = "### `[[alerts]]`" if name == "alerts" else f"### `[{name}]`"
    rows = _rows((ROOT / "docs" / "config.md").read_text(encoding="utf-8"), heading)
    _check_documented(AlertTable if name == "alerts" else TABLES[name], [(r[0], r[1]) for r in rows], name)


def test_committed_json_schema_is_up_to_date() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_schemas.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_json_schema_accepts_the_example_and_refuses_what_the_loader_refuses(tmp_path: Path) -> None:
    schema = json.loads((ROOT / "docs" / "config.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    example = tomllib.loads((ROOT / "example" / "carphone_swap.toml").read_text(encoding="utf-8"))
    assert list(validator.iter_errors(example)) == []
    for bad in ({"reality": {"strid": 8}}, {"window": "soon"}, {"faces": {"max_faces": "4"}}, {"rate": {"x": 1}}):
        assert list(validator.iter_errors(bad)), bad


def test_schema_choices_match_what_the_code_implements() -> None:
    """The Literal choices of the schema are the names the families accept (no second list can drift)."""
    import typing

    from streameval.analysis.openface_track import MATCH_MODES
    from streameval.analysis.pixel import REGIONS
    from streameval.config import FAMILY_NAMES, LANE_NAMES, ExpressionTable, PixelTable
    from streameval.families import FAMILIES

    assert set(FAMILIES) == set(FAMILY_NAMES) and set(LANE_NAMES) == {"faces", *FAMILIES}
    hints = typing.get_type_hints(PixelTable)
    assert typing.get_args(hints["region"]) == REGIONS
    assert typing.get_args(typing.get_type_hints(ExpressionTable)["openface_match"]) == MATCH_MODES


def test_openface_binary_is_not_rebased_on_the_config_folder(tmp_path: Path) -> None:
    text = '[expression]\nau_source = "openface"\nopenface_binary = "FeatureExtraction"\nopenface_source_csv = "s.csv"'
    config = load(tmp_path, text)
    assert config.options["expression"]["openface_binary"] == "FeatureExtraction"
    assert config.options["expression"]["openface_source_csv"] == str(tmp_path / "s.csv")
