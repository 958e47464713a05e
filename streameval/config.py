"""Run configuration: the one typed schema of the TOML file and the command-line flags.

Every flag ``--foo-bar`` is the TOML key ``foo_bar`` (flags win over the file). The schema is declared here, once:
:class:`RunConfig` holds the top-level keys and their defaults, and one table class per TOML table (``[models]``,
``[faces]``, ``[identity]``, ``[expression]``, ``[reality]``, ``[pixel]``, ``[mqtt]``, ``[[alerts]]``) holds that
table's keys and defaults. :func:`load_config` checks every table at load, whichever families the run uses: an
unknown key, a wrong type or an out-of-range value is a ConfigError naming the table and the key. Durations follow
one convention (:func:`streameval.schema.parse_duration`). ``docs/config.schema.json`` is generated from these
declarations (``python tools/gen_schemas.py``; reference: docs/config.md).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, TypeVar

from streameval.errors import ConfigError, UsageError
from streameval.schema import (
    check_table,
    closest,
    convert,
    json_schema,
    parse_duration,
    setting,
    settings_of,
    unknown_key_error,
)

__all__ = [
    "PATH_OPTIONS",
    "TABLES",
    "AlertTable",
    "ExpressionTable",
    "FacesTable",
    "IdentityTable",
    "ModelsTable",
    "MqttTable",
    "PixelTable",
    "RealityTable",
    "RunConfig",
    "apply_settings",
    "config_json_schema",
    "load_config",
    "load_toml",
    "parse_duration",
]

TableT = TypeVar("TableT")

# The built-in metric families (streameval.families.FAMILIES, which callers may extend, is checked at load) and
# the analysis lanes `rate` may name: the face stage and one lane per family.
FAMILY_NAMES: Final = ("identity", "expression", "reality", "pixel")
LANE_NAMES: Final = ("faces", *FAMILY_NAMES)


# ------------------------------------------------------------------------------------------------- tables


@dataclass(frozen=True, kw_only=True)
class ModelsTable:
    """[models]: where the model files are and how they run."""

    NAME: ClassVar[str] = "models"
    dir: str | None = setting(
        None, "models directory", path=True, shown_default="$STREAMEVAL_MODELS, ./models with a manifest, the cache"
    )
    device: Literal["auto", "cpu", "cuda"] = setting("auto", "where onnxruntime runs the models")
    threads: Literal["auto"] | int = setting(
        "auto", "onnxruntime intra-op threads per model ('auto': sized per model)", ge=1, le=256
    )


@dataclass(frozen=True, kw_only=True)
class FacesTable:
    """[faces]: the face stage (detect, then track with the mesh), shared by every face family."""

    NAME: ClassVar[str] = "faces"
    min_score: float = setting(0.6, "detector confidence", ge=0.0, le=1.0)
    tiles: int = setting(1, "extra tiled detector pass for small faces (1 = off)", ge=1, le=8)
    tracking: bool = setting(True, "follow faces with the mesh and detect only when needed (false: every frame)")
    redetect_every: float = setting(1.0, "scheduled detector run while tracking", gt=0, duration=True)
    min_presence: float = setting(0.5, "mesh face-presence below which a track is lost", ge=0.0, le=1.0)
    max_faces: int = setting(4, "faces tracked per stream", ge=1, le=64)
    # 0.016 at most within the carphone clip, 0.28 from its last frame to another scene
    cut_threshold: float = setting(0.08, "shot-change sensitivity (mean grey difference)", ge=0.0, le=1.0)


@dataclass(frozen=True, kw_only=True)
class IdentityTable:
    """[identity]: references and recognisers of the identity family."""

    NAME: ClassVar[str] = "identity"
    ref_a: str | None = setting(None, "reference image of the original person A", path=True)
    ref_b: str | None = setting(None, "reference image of the target identity B", path=True)
    recognisers: list[Literal["dlib", "insightface", "faceres"]] = setting(
        ["dlib"], "recognisers; the first is the primary one", csv=True
    )
    dlib_backend: Literal["onnx", "dlib"] = setting("onnx", "dlib's network on onnxruntime, or dlib itself")
    dlib_threshold: float = setting(0.6, "dlib same-person distance threshold", ge=1e-6, le=10.0)
    insightface_dir: str | None = setting(
        None, "folder with w600k_r50.onnx", path=True, shown_default="<models dir>/insightface/buffalo_l"
    )
    insightface_threshold: float = setting(0.6, "ArcFace cosine-distance threshold", ge=1e-6, le=1.999)
    # calibrated on public labelled faces (tools/calibrate_faceres.py, docs/models.md)
    faceres_threshold: float = setting(0.35, "faceres cosine-distance threshold", ge=1e-6, le=1.999)
    num_jitters: int = setting(1, "dlib jitters per face (needs dlib_backend = 'dlib' above 1)", ge=1, le=100)

    def __post_init__(self) -> None:
        if len(set(self.recognisers)) != len(self.recognisers) or not self.recognisers:
            raise ConfigError(
                f"[identity] recognisers: must be a non-empty list of distinct names, got {self.recognisers!r}"
            )
        if self.num_jitters > 1 and self.dlib_backend != "dlib":
            raise ConfigError("[identity] num_jitters > 1 needs dlib_backend = 'dlib' (dlib's own random jitter)")


MESH_KEYS = frozenset({"au_model", "adaptive_neutral", "neutral_window", "neutral_min_frames"})
PYFACEAU_KEYS = frozenset({"pyfaceau_python", "pyfaceau_timeout"})
OPENFACE_KEYS = frozenset(
    {
        "openface_source_csv",
        "openface_deid_csv",
        "openface_binary",
        "openface_min_confidence",
        "openface_timeout",
        "openface_match",
    }
)


@dataclass(frozen=True, kw_only=True)
class ExpressionTable:
    """[expression]: where the action units come from (the face mesh, OpenFace, or the user's pyfaceau)."""

    NAME: ClassVar[str] = "expression"
    au_source: Literal["mesh", "openface", "pyfaceau"] = setting(
        "mesh", "AUs from the face-mesh geometry, from OpenFace, or from the user's pyfaceau"
    )
    au_model: Literal["geometry", "blendshapes", "combined"] = setting(
        "geometry", "mesh: AUs from the mesh geometry, MediaPipe's blendshapes, or each AU from the better of both"
    )
    adaptive_neutral: bool = setting(True, "mesh: per-stream running neutral face (of the geometry)")
    neutral_window: int = setting(300, "mesh: frames in the running neutral", ge=1, le=10**6)
    neutral_min_frames: int = setting(30, "mesh: frames before the neutral is used", ge=1, le=10**6)
    openface_source_csv: str | None = setting(None, "openface: precomputed CSV of the original", path=True)
    openface_deid_csv: str | None = setting(None, "openface: precomputed CSV of the de-identified video", path=True)
    # not a path key: a bare command name is looked up on PATH, not next to the config file
    openface_binary: str | None = setting(
        None, "openface: FeatureExtraction to run (a path or a command)", shown_default="$STREAMEVAL_OPENFACE or PATH"
    )
    openface_min_confidence: float = setting(0.75, "openface: rows below this confidence are ignored", ge=0, le=1)
    openface_timeout: float | None = setting(None, "openface: limit per FeatureExtraction run", gt=0, duration=True)
    openface_match: Literal["auto", "frame", "time"] = setting("auto", "openface: match rows by frame or time")
    # not a path key: a bare command name is looked up on PATH
    pyfaceau_python: str | None = setting(
        None, "pyfaceau: Python that has pyfaceau installed (a path or a command)", shown_default="this Python"
    )
    pyfaceau_timeout: float | None = setting(None, "pyfaceau: limit per file it analyses", gt=0, duration=True)

    @classmethod
    def check_keys(cls, values: dict[str, Any], where: str) -> None:
        # options of the other AU source would be silently ignored: say so instead
        source = values.get("au_source", "mesh")
        owners = {"mesh": MESH_KEYS, "openface": OPENFACE_KEYS, "pyfaceau": PYFACEAU_KEYS}
        foreign = sorted(set(values) & frozenset().union(*(k for name, k in owners.items() if name != source)))
        if foreign:
            other = next(name for name, keys in owners.items() if foreign[0] in keys)
            raise ConfigError(f"{where} {foreign}: only used with au_source = '{other}' (au_source is '{source}')")

    def __post_init__(self) -> None:
        if self.openface_binary == "":
            raise ConfigError("[expression] openface_binary: must be a path or command name, got ''")
        if self.neutral_min_frames > self.neutral_window:
            raise ConfigError(
                f"[expression] neutral_min_frames: must be at most neutral_window ({self.neutral_window}), "
                f"got {self.neutral_min_frames}"
            )


# I3D costs ~1.1 CPU-s per clip on this class of CPU (2.2 s a clip pair): every 4 s it takes ~0.55 of a core,
# while a 10 s window still holds 2-3 clips per side for its FID
CLIP_EVERY_S = 4.0


@dataclass(frozen=True, kw_only=True)
class RealityTable:
    """[reality]: the I3D clips of the reality family."""

    NAME: ClassVar[str] = "reality"
    clip_every: float = setting(CLIP_EVERY_S, "stream time between clip starts", gt=0, duration=True)
    stride: int | None = setting(
        None, "instead of clip_every: frames between clip starts (16 = back to back)", ge=1, le=10**6
    )
    box_scale: float = setting(1.3, "crop side / longer face-box side", ge=0.5, le=4.0)
    smoothing: float = setting(0.8, "weight of the previous crop box", ge=0.0, le=0.99)
    max_gap: int = setting(4, "frames without a face before a clip restarts", ge=0, le=10**6)

    @classmethod
    def check_keys(cls, values: dict[str, Any], where: str) -> None:
        if "clip_every" in values and "stride" in values:
            raise ConfigError(f"{where} clip_every and stride: give one of them (time or frames between clip starts)")


@dataclass(frozen=True, kw_only=True)
class PixelTable:
    """[pixel]: the pixel family."""

    NAME: ClassVar[str] = "pixel"
    region: Literal["face", "frame"] = setting("face", "compare the face region, or whole frames (no model)")


@dataclass(frozen=True, kw_only=True)
class MqttTable:
    """[mqtt]: a broker to publish to. A key given here overrides what the URL says; the defaults here are
    also the defaults of mqtt:// URLs (MqttSettings)."""

    NAME: ClassVar[str] = "mqtt"
    url: str | None = setting(None, "mqtt[s]://[user[:password]@]host[:port][/prefix][?option=value&...]")
    port: int | None = setting(None, "broker port", ge=1, le=65535, shown_default="the URL's, else 1883 (8883 TLS)")
    prefix: str | None = setting(None, "topic prefix", shown_default="the URL's, else streameval")
    username: str | None = setting(None, "user name", shown_default="the URL's")
    password: str | None = setting(None, "password", shown_default="the URL's")
    client_id: str | None = setting(None, "MQTT client id", shown_default="random")
    qos: Literal[0, 1, 2] = setting(1, "quality of service")
    tls: bool = setting(False, "TLS (an mqtts:// URL turns it on)")
    ca_file: str | None = setting(None, "CA bundle for TLS", path=True)
    cert_file: str | None = setting(None, "client certificate for TLS", path=True)
    key_file: str | None = setting(None, "client key for TLS", path=True)
    tls_insecure: bool = setting(False, "do not check the broker's host name (the chain still is)")
    keepalive: float = setting(30.0, "MQTT keepalive, whole seconds", ge=1, duration=True)
    timeout: float = setting(5.0, "wait for a connection or an acknowledgement", gt=0, duration=True)
    backoff_initial: float = setting(0.5, "first reconnect delay", gt=0, duration=True)
    backoff_max: float = setting(30.0, "longest reconnect delay", gt=0, duration=True)
    flush_timeout: float = setting(5.0, "at shutdown, time spent sending what is buffered", gt=0, duration=True)
    buffer_size: int = setting(1000, "records held while the broker is away", ge=1)

    @classmethod
    def check_keys(cls, values: dict[str, Any], where: str) -> None:
        if values and "url" not in values:
            raise ConfigError(f"{where}: missing required key 'url' (e.g. url = \"mqtt://localhost:1883/streameval\")")


@dataclass(frozen=True, kw_only=True)
class AlertTable:
    """[[alerts]]: one threshold rule over the metric records (see docs/alerts.md)."""

    name: str = setting("", "unique rule name", shown_default="required")
    when: str = setting("", "raise condition, e.g. 'deid.leak_rate > 0.05'", shown_default="required")
    clear: str | None = setting(None, "clear condition on the same field", shown_default="the negation of when")
    for_s: float = setting(0.0, "how long `when` must hold", ge=0, duration=True, key="for")
    clear_for: float = setting(0.0, "how long `clear` must hold", ge=0, duration=True)
    cooldown: float = setting(0.0, "quiet time after a clear before the rule can raise again", ge=0, duration=True)
    severity: Literal["info", "warning", "error", "critical"] = setting("warning", "severity of the events")
    description: str = setting("", "free text copied into the events")

    @classmethod
    def check_keys(cls, values: dict[str, Any], where: str) -> None:
        for required in ("name", "when"):
            if required not in values:
                raise ConfigError(f"{where}: missing required key {required!r}")
        if not values["name"].strip():
            raise ConfigError(f"{where}.name: must be a non-empty string, got {values['name']!r}")


TABLES: dict[str, type[Any]] = {
    t.NAME: t for t in (ModelsTable, FacesTable, IdentityTable, ExpressionTable, RealityTable, PixelTable, MqttTable)
}
# (table, key) of every path in the option tables: resolved relative to a config file, and the files a run reads
PATH_OPTIONS: tuple[tuple[str, str], ...] = tuple(
    (name, key) for name, cls in TABLES.items() for key, (_, meta, _) in settings_of(cls).items() if meta.path
)


# --------------------------------------------------------------------------------------------- top level


@dataclass
class RunConfig:
    """Everything one evaluation run needs. Field names are the TOML keys; the defaults here are the defaults."""

    source: str | None = setting(None, "original video: file, URL, /dev/videoN or - (stdin)")
    deid: str | None = setting(None, "de-identified video, same forms as source")
    live: bool = False  # set by the subcommand (`run` or `replay`), not a key
    stream_id: str = setting("default", "names the stream pair in records and MQTT topics")
    # windows
    window: float = setting(10.0, "rolling window, in stream time", gt=0, duration=True)
    hop: float = setting(1.0, "record interval, in stream time", gt=0, duration=True)
    # pairing
    pair: Literal["time", "index"] = setting("time", "pair frames by timestamp or by frame index")
    offset: float = setting(0.0, "how far the de-identified stream runs behind the original", duration=True)
    tolerance: float | None = setting(
        None,
        "largest time gap between the two frames of a pair",
        ge=0,
        duration=True,
        shown_default="half a source frame",
    )
    index_offset: int = setting(0, "with pair = 'index': de-identified frame i+N pairs with original frame i")
    max_pending: int = setting(64, "frames held for one stream while the other lags", ge=2)
    # analysis
    metrics: list[str] = setting(["pixel"], "metric families", csv=True)
    rate: dict[str, float] = setting({}, "analyses per second of stream time, by lane", gt=0, shown_default="per lane")
    policy: Literal["block", "drop-oldest"] | None = setting(
        None, "when analysis falls behind: wait, or drop the oldest queued pair",
        shown_default="block (replay), drop-oldest (run)",
    )  # fmt: skip
    queue_size: int = setting(4, "pairs queued per analyser", ge=1)
    # sources
    realtime: bool = setting(False, "pace files at their frame rate")
    read_timeout: float = setting(10.0, "a network read that stalls longer counts as a stall", gt=0, duration=True)
    reconnect: bool | None = setting(
        None, "reconnect live sources when they end", shown_default="true (run), false (replay)"
    )
    give_up_after: float | None = setting(
        None, "end a live stream after this long without frames", gt=0, duration=True, shown_default="never"
    )
    # outputs
    log: str | None = setting("-", "JSON Lines records: a path, or - for stdout")
    report: str | None = setting("streameval_report.json", "final report file")
    frames: str | None = setting(
        None, "both streams' per-frame AUs as a CSV (expression family, mesh AUs)", shown_default="off"
    )
    sink: list[str] = setting([], "extra sink URLs: mqtt://..., mqtts://..., prometheus://HOST:PORT")
    metrics_port: str | None = setting(
        None, "serve Prometheus metrics at /metrics: PORT (on 127.0.0.1) or HOST:PORT", shown_default="off"
    )
    # [[alerts]] (checked by streameval.alerts.parse_rules) and the tables by name (checked against TABLES)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def effective_policy(self) -> Literal["block", "drop-oldest"]:
        if self.policy is not None:
            return self.policy
        return "drop-oldest" if self.live else "block"

    def table(self, cls: type[TableT]) -> TableT:
        """The typed, checked table ``cls`` (its defaults when the table is absent)."""
        name: str = getattr(cls, "NAME")  # noqa: B009 - a ClassVar of every table class
        return check_table(cls, self.options.get(name, {}), f"[{name}]")

    def validate(self) -> RunConfig:
        """Check every key and every table, whichever families the run uses; returns self."""
        for key, (hint, meta, f) in settings_of(RunConfig).items():
            setattr(self, f.name, convert(getattr(self, f.name), hint, meta, key))
        if self.source == "-" and self.deid == "-":
            raise ConfigError("only one of SOURCE and DEID can be '-' (standard input)")
        if self.hop > self.window:
            raise ConfigError(f"hop ({self.hop} s) must not exceed window ({self.window} s): data would be skipped")
        if not self.metrics:
            raise ConfigError("metrics: at least one metric family is needed")
        if not isinstance(self.stream_id, str) or not self.stream_id:
            raise ConfigError(f"stream_id: must be a non-empty string, got {self.stream_id!r}")
        if len(self.stream_id.encode("utf-8")) > MAX_STREAM_ID_BYTES:
            raise ConfigError(
                f"stream_id: {len(self.stream_id.encode('utf-8'))} bytes long; at most {MAX_STREAM_ID_BYTES} "
                "(it is part of every MQTT topic, which is limited to 65,535 bytes)"
            )
        from streameval.families import FAMILIES  # the registry: the built-in families and any a caller added

        for index, name in enumerate(self.metrics):
            if name not in FAMILIES:
                near = closest(name, list(FAMILIES))
                hint = f"; did you mean {near!r}?" if near else ""
                raise ConfigError(f"metrics[{index}]: unknown family {name!r}{hint} (families: {', '.join(FAMILIES)})")
        for name in self.rate:
            if name != "faces" and name not in FAMILIES:
                raise unknown_key_error("rate", name, ["faces", *FAMILIES])
        for name in self.options:
            if name not in TABLES:
                raise unknown_key_error("config", name, config_keys())
            self.table(TABLES[name])
        if self.options.get("mqtt"):
            from streameval.sinks.mqtt_settings import settings_from_config  # the URL and TLS file pairs

            settings_from_config(self.options["mqtt"])
        from streameval.alerts import parse_rules  # checked now, so a typo fails before any video is opened

        parse_rules(self.alerts)
        for url in self.sink:
            if not url.startswith(("mqtt://", "mqtts://", "prometheus://")):
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


def config_keys() -> list[str]:
    """Every top-level key of the TOML file: settings, tables and ``alerts``."""
    return sorted(set(settings_of(RunConfig)) | set(TABLES) | {"alerts"})


def apply_settings(config: RunConfig, settings: dict[str, Any], origin: str) -> RunConfig:
    """Set fields from a mapping (TOML document or parsed flags), converting and checking each value."""
    keys = settings_of(RunConfig)
    for key, value in settings.items():
        if key in TABLES:
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: [{key}] must be a table, got {value!r}")
            config.options.setdefault(key, {}).update(value)
        elif key == "alerts":
            if not isinstance(value, list):
                raise ConfigError(f"{origin}: alerts must be a list of tables ([[alerts]] in TOML), got {value!r}")
            config.alerts = value
        elif key in keys:
            if key == "metrics_port" and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)  # `metrics_port = 9108` in TOML; "HOST:PORT" needs the string form
            hint, meta, _ = keys[key]
            setattr(config, key, convert(value, hint, meta, key))
        elif key == "live" and origin == "command line":  # chosen by the subcommand
            config.live = bool(value)
        else:
            raise unknown_key_error(origin, key, config_keys())
    return config


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
        apply_settings(config, document, f"config file {path}")
        # Relative paths in a config file are relative to the file, so a config runs the same from anywhere.
        base = Path(path).resolve().parent
        for key in ("source", "deid", "log", "report", "frames"):
            value = document.get(key)
            if isinstance(value, str) and _is_local_path(value) and not Path(value).is_absolute():
                setattr(config, key, str(base / value))
        for name, key in PATH_OPTIONS:
            table = config.options.get(name, {})
            value = table.get(key)
            if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                table[key] = str(base / value)
    if overrides:
        apply_settings(config, overrides, "command line")
    return config.validate()


def _is_local_path(spec: str) -> bool:
    return spec != "-" and "://" not in spec and not spec.startswith("/dev/")


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of the TOML configuration file, generated from the declarations above."""
    tables: dict[str, Any] = {name: json_schema(cls) for name, cls in TABLES.items()}
    tables["alerts"] = {"type": "array", "items": json_schema(AlertTable), "description": "alert rules"}
    for rule in ("name", "when"):
        tables["alerts"]["items"]["properties"][rule].pop("default", None)
    tables["alerts"]["items"]["required"] = ["name", "when"]
    tables["mqtt"]["required"] = ["url"]
    schema = json_schema(RunConfig, title="streameval configuration file (TOML)", tables=tables)
    schema["properties"]["rate"]["propertyNames"] = {"enum": list(LANE_NAMES)}
    port = schema["properties"]["metrics_port"]  # a bare port may be a TOML integer (apply_settings)
    del port["type"]
    port["anyOf"] = [{"type": "string"}, {"type": "integer", "minimum": 1, "maximum": 65535}]
    schema["properties"]["metrics"]["anyOf"][0]["items"]["enum"] = list(FAMILY_NAMES)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
