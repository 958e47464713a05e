"""Run configuration: one flat set of settings, from a TOML file and/or command-line flags.

Every flag ``--foo-bar`` is the TOML key ``foo_bar`` (flags win over the file). Durations are numbers of seconds
or strings with a unit: ``"500ms"``, ``"10s"``, ``"2m"``. Unknown keys are an error, never silently ignored.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from streameval.errors import ConfigError, UsageError

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d*)?|-?\.\d+)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object, name: str) -> float:
    """Seconds from ``1.5``, ``"1.5"``, ``"1500ms"``, ``"2m"``; a ConfigError naming ``name`` otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}: expected a duration like '10s', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ConfigError(f"{name}: expected a duration like '10s', '500ms' or '2m', got {value!r}")
    if not math.isfinite(seconds):
        raise ConfigError(f"{name}: duration must be finite, got {value!r}")
    return seconds


@dataclass
class RunConfig:
    """Everything one evaluation run needs. Field names are the TOML keys."""

    source: str | None = None
    deid: str | None = None
    live: bool = False
    stream_id: str = "default"
    # windows
    window: float = 10.0
    hop: float = 1.0
    # pairing
    pair: Literal["time", "index"] = "time"
    offset: float = 0.0
    tolerance: float | None = None  # None: half the source frame interval
    index_offset: int = 0
    max_pending: int = 64
    # analysis
    metrics: list[str] = field(default_factory=lambda: ["pixel"])
    rate: dict[str, float] = field(default_factory=dict)  # analyser name -> analyses per second
    policy: Literal["block", "drop-oldest"] | None = None  # None: block for replay, drop-oldest for live
    queue_size: int = 4
    # sources
    realtime: bool = False
    read_timeout: float = 10.0
    reconnect: bool | None = None  # None: reconnect live sources, not files
    give_up_after: float | None = None  # live: end a stream after this long without frames (None: never)
    # outputs
    log: str | None = "-"  # JSON Lines: a path, '-' for stdout, or None for no log
    report: str | None = "streameval_report.json"
    sink: list[str] = field(default_factory=list)  # extra sinks, e.g. mqtt://host:1883/prefix
    metrics_port: str | None = None  # Prometheus endpoint: "PORT" (on 127.0.0.1) or "HOST:PORT"
    # free-form sections for metric families and alerts (validated by their owners)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def effective_policy(self) -> Literal["block", "drop-oldest"]:
        if self.policy is not None:
            return self.policy
        return "drop-oldest" if self.live else "block"

    def validate(self) -> RunConfig:
        if self.source == "-" and self.deid == "-":
            raise ConfigError("only one of SOURCE and DEID can be '-' (standard input)")
        # The stages check their own settings; building them here makes a bad value fail before any I/O.
        from streameval.pairing import PairingConfig
        from streameval.pipeline import PipelineConfig
        from streameval.windows import WindowConfig

        WindowConfig(window=self.window, hop=self.hop)
        PairingConfig(
            mode=self.pair,
            offset=self.offset,
            tolerance=0.0 if self.tolerance is None else self.tolerance,
            index_offset=self.index_offset,
            max_pending=self.max_pending,
        )
        PipelineConfig(live=self.live, policy=self.effective_policy, queue_size=self.queue_size)
        if self.give_up_after is not None and not self.give_up_after > 0:
            raise ConfigError(f"give_up_after: must be a positive duration, got {self.give_up_after!r} s")
        if not self.read_timeout > 0:
            raise ConfigError(f"read_timeout: must be positive, got {self.read_timeout!r} s")
        if self.queue_size < 1:
            raise ConfigError(f"queue_size: must be >= 1, got {self.queue_size!r}")
        if self.max_pending < 2:
            raise ConfigError(f"max_pending: must be >= 2, got {self.max_pending!r}")
        for name, value in self.rate.items():
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
            if not ok:
                raise ConfigError(f"rate.{name}: analyses per second must be positive and finite, got {value!r}")
        if not self.metrics:
            raise ConfigError("metrics: at least one metric family is needed")
        bad = [m for m in self.metrics if not isinstance(m, str)]
        if bad:
            raise ConfigError(f'metrics: expected family names like "pixel", got {bad[0]!r}')
        if not isinstance(self.stream_id, str) or not self.stream_id:
            raise ConfigError(f"stream_id: must be a non-empty string, got {self.stream_id!r}")
        if len(self.stream_id.encode("utf-8")) > MAX_STREAM_ID_BYTES:
            raise ConfigError(
                f"stream_id: {len(self.stream_id.encode('utf-8'))} bytes long; at most {MAX_STREAM_ID_BYTES} "
                "(it is part of every MQTT topic, which is limited to 65,535 bytes)"
            )
        from streameval.alerts import parse_rules  # checked now, so a typo fails before any video is opened

        parse_rules(self.alerts)
        for url in self.sink:
            if not isinstance(url, str) or not url.startswith(("mqtt://", "mqtts://", "prometheus://")):
                raise ConfigError(
                    f"sink: {url!r} is not a sink URL (supported: mqtt://..., mqtts://..., prometheus://HOST:PORT)"
                )
        if self.metrics_port is not None:
            from streameval.sinks.prometheus import parse_metrics_port

            try:
                parse_metrics_port(self.metrics_port)
            except UsageError as exc:
                raise ConfigError(f"metrics_port: {exc}") from exc
        return self


# MQTT limits a topic to 65,535 bytes; the stream id shares it with the prefix and a suffix such as '/metrics'.
MAX_STREAM_ID_BYTES = 65_535 - 1024

_DURATION_KEYS = {"window", "hop", "offset", "tolerance", "read_timeout", "give_up_after"}
_TYPES: dict[str, tuple[type, ...]] = {
    "source": (str,),
    "deid": (str,),
    "live": (bool,),
    "stream_id": (str,),
    "pair": (str,),
    "index_offset": (int,),
    "max_pending": (int,),
    "metrics": (list,),
    "rate": (dict,),
    "policy": (str,),
    "queue_size": (int,),
    "realtime": (bool,),
    "reconnect": (bool,),
    "log": (str,),
    "report": (str,),
    "sink": (list,),
    "metrics_port": (str, int),
    "alerts": (list,),
}
# Top-level TOML tables that configure metric families (their contents are validated by the family).
OPTION_SECTIONS = ("pixel", "faces", "identity", "expression", "reality", "models", "mqtt")


# Paths inside option tables, resolved like source/deid when they come from a file.
_PATH_OPTIONS = (
    ("identity", "ref_a"),
    ("identity", "ref_b"),
    ("identity", "insightface_dir"),
    ("expression", "openface_source_csv"),
    ("expression", "openface_deid_csv"),
    ("models", "dir"),
    ("mqtt", "ca_file"),
    ("mqtt", "cert_file"),
    ("mqtt", "key_file"),
)
PATH_OPTIONS = _PATH_OPTIONS  # the input files named in option tables (outputs must not overwrite them)


def config_keys() -> list[str]:
    return sorted({f.name for f in fields(RunConfig)} - {"options"} | set(OPTION_SECTIONS))


def apply_settings(config: RunConfig, settings: dict[str, Any], origin: str) -> RunConfig:
    """Set fields from a mapping (TOML document or parsed flags), converting and checking each value."""
    known = {f.name for f in fields(RunConfig)} - {"options"}
    for key, value in settings.items():
        if key in OPTION_SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: [{key}] must be a table, got {value!r}")
            config.options.setdefault(key, {}).update(value)
            continue
        if key not in known:
            raise ConfigError(f"{origin}: unknown key {key!r}; valid keys: {', '.join(config_keys())}")
        if value is None:
            setattr(config, key, None)
            continue
        if key in _DURATION_KEYS:
            value = parse_duration(value, key)
        elif key == "metrics" and isinstance(value, str):
            value = [m.strip() for m in value.split(",") if m.strip()]
        elif key in _TYPES and not _has_type(value, _TYPES[key]):
            expected = " or ".join(t.__name__ for t in _TYPES[key])
            raise ConfigError(f"{origin}: {key} must be {expected}, got {value!r}")
        if key == "metrics_port" and isinstance(value, int):
            value = str(value)  # `metrics_port = 9108` in TOML; "HOST:PORT" needs the string form
        setattr(config, key, value)
    return config


def _has_type(value: object, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # bool is an int in Python, but `queue_size = true` is a mistake
        return bool in types
    return isinstance(value, types)


def load_toml(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:  # TOML files are UTF-8 by definition
        raise ConfigError(f"config file {path} is not valid UTF-8 (byte {exc.start}: {exc.reason})") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc


def load_config(path: Path | str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """A validated RunConfig from an optional TOML file, then ``overrides`` (e.g. command-line flags)."""
    config = RunConfig()
    if path is not None:
        document = load_toml(path)
        apply_settings(config, document, str(path))
        # Relative paths in a config file are relative to the file, so a config runs the same from anywhere.
        base = Path(path).resolve().parent
        for key in ("source", "deid", "log", "report"):
            value = document.get(key)
            if isinstance(value, str) and _is_local_path(value) and not Path(value).is_absolute():
                setattr(config, key, str(base / value))
        for section, key in _PATH_OPTIONS:
            table = config.options.get(section, {})
            value = table.get(key)
            if isinstance(value, str) and not Path(value).is_absolute():
                table[key] = str(base / value)
    if overrides:
        apply_settings(config, overrides, "command line")
    return config.validate()


def _is_local_path(spec: str) -> bool:
    return spec != "-" and "://" not in spec and not spec.startswith("/dev/")
