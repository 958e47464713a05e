"""MQTT connection settings and the ``mqtt://`` / ``mqtts://`` URL syntax used by ``--sink`` and the config.

``mqtt[s]://[user[:password]@]host[:port][/prefix][?option=value&...]``; options are the MqttSettings fields
that make sense on a command line (``qos``, ``client_id``, ``ca``, ``cert``, ``key``, ``insecure``, ``keepalive``,
``timeout``, ``backoff_max``, ``flush_timeout``). User and password are percent-decoded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from streameval.errors import ConfigError
from streameval.redact import redact_url

DEFAULT_PREFIX: Final = "streameval"
_TOPIC_LEVELS_RE: Final = re.compile(r"^[^/#+\x00]+(?:/[^/#+\x00]+)*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttSettings:
    """Where and how to publish. Durations in seconds; the password is kept out of ``repr``."""

    host: str
    port: int = 1883
    prefix: str = DEFAULT_PREFIX
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    qos: int = 1
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = False
    keepalive: int = 30
    timeout_s: float = 5.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    flush_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("mqtt host: must not be empty")
        if not 0 < self.port < 65536:
            raise ConfigError(f"mqtt port = {self.port!r}: expected 1..65535")
        validate_topic_part("mqtt prefix", self.prefix)
        if self.qos not in (0, 1, 2):
            raise ConfigError(f"mqtt qos = {self.qos!r}: expected 0, 1 or 2")
        if self.password is not None and self.username is None:
            raise ConfigError("mqtt password: given without a username")
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError(
                f"mqtt cert_file = {self.cert_file!s} / key_file = {self.key_file!s}: give both or neither"
            )
        if not self.tls and any(p is not None for p in (self.ca_file, self.cert_file, self.key_file)):
            raise ConfigError("mqtt ca_file/cert_file/key_file: need TLS (use an mqtts:// URL or tls = true)")
        if self.keepalive < 1:
            raise ConfigError(f"mqtt keepalive = {self.keepalive!r}: expected >= 1 second")
        for name in ("timeout_s", "backoff_initial_s", "backoff_max_s", "flush_timeout_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"mqtt {name} = {value!r}: expected a positive number of seconds")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ConfigError(
                f"mqtt backoff_max_s = {self.backoff_max_s!r}: below backoff_initial_s = {self.backoff_initial_s!r}"
            )

    def describe(self) -> str:
        """The broker address for log messages, without credentials."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}/{self.prefix}"


def validate_topic_part(name: str, value: str) -> None:
    """One or more non-empty topic levels without wildcards (``+``, ``#``) or leading/trailing ``/``."""
    if not isinstance(value, str) or _TOPIC_LEVELS_RE.match(value) is None:
        raise ConfigError(
            f"{name} = {value!r}: expected topic levels like 'site/cam1' without '+', '#' or empty levels"
        )


def _as_bool(key: str, text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"mqtt URL option {key} = {text!r}: expected true or false")


def _as_number(kind: Callable[[str], Any]) -> Callable[[str, str], Any]:
    def convert(key: str, text: str) -> Any:
        try:
            return kind(text)
        except ValueError as exc:
            raise ConfigError(f"mqtt URL option {key} = {text!r}: expected a {kind.__name__}") from exc

    return convert


def _as_path(key: str, text: str) -> Path:
    return Path(text)


def _as_str(key: str, text: str) -> str:
    return text


# URL option -> (settings field, converter)
_URL_OPTIONS: Final[dict[str, tuple[str, Callable[[str, str], Any]]]] = {
    "qos": ("qos", _as_number(int)),
    "client_id": ("client_id", _as_str),
    "ca": ("ca_file", _as_path),
    "cert": ("cert_file", _as_path),
    "key": ("key_file", _as_path),
    "insecure": ("tls_insecure", _as_bool),
    "keepalive": ("keepalive", _as_number(int)),
    "timeout": ("timeout_s", _as_number(float)),
    "backoff_max": ("backoff_max_s", _as_number(float)),
    "flush_timeout": ("flush_timeout_s", _as_number(float)),
}


def parse_mqtt_url(url: str) -> MqttSettings:
    """Settings from ``mqtt://user:pass@host:port/prefix?qos=1`` (``mqtts://`` turns TLS on, port 8883)."""
    _, sep, rest = url.partition("://")
    if sep and "@" in rest and "@" in rest.partition("/")[2] + rest.partition("?")[2] + rest.partition("#")[2]:
        # An '@' after a '/', '?' or '#': a password (or user name) with one of those characters unencoded. Say so
        # without echoing any piece of it (urlsplit would cut the password and quote a part as port or path).
        raise ConfigError(
            f"mqtt URL = {redact_url(url)!r}: the user name or password holds a raw '/', '?', '#' or '@': "
            "percent-encode them (%2F, %3F, %23, %40)"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        # the parser's own message may quote part of the password (e.g. as a port): never show it
        raw = str(exc)
        reason = (
            "Port out of range 0-65535" if "out of range" in raw else "port is not a number" if "Port" in raw else ""
        )
        raise ConfigError(f"mqtt URL = {redact_url(url)!r}: {reason or 'not a valid URL'}") from exc
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"mqtt URL = {redact_url(url)!r}: scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise ConfigError(f"mqtt URL = {redact_url(url)!r}: no host")
    if parts.fragment:
        raise ConfigError(f"mqtt URL = {redact_url(url)!r}: unexpected fragment #{parts.fragment}")
    tls = parts.scheme == "mqtts"
    values: dict[str, Any] = {
        "host": parts.hostname,
        "port": port if port is not None else (8883 if tls else 1883),
        "tls": tls,
        "prefix": unquote(parts.path.strip("/")) or DEFAULT_PREFIX,
        "username": unquote(parts.username) if parts.username is not None else None,
        "password": unquote(parts.password) if parts.password is not None else None,
    }
    for key, text in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key not in _URL_OPTIONS:
            raise ConfigError(f"mqtt URL option {key} = {text!r}: unknown (allowed: {', '.join(_URL_OPTIONS)})")
        name, convert = _URL_OPTIONS[key]
        values[name] = convert(key, text)
    return MqttSettings(**values)


def settings_from_config(table: Mapping[str, Any]) -> MqttSettings:
    """Settings from a ``[mqtt]`` TOML table: ``url`` plus optional overrides named like MqttSettings fields."""
    if "url" not in table:
        raise ConfigError("mqtt: missing required key 'url' (e.g. url = \"mqtt://localhost:1883/streameval\")")
    settings = parse_mqtt_url(str(table["url"]))
    known = {f.name: f for f in fields(MqttSettings)}
    overrides: dict[str, Any] = {}
    for key, value in table.items():
        if key == "url":
            continue
        if key not in known or key == "host":
            raise ConfigError(f"mqtt.{key} = {value!r}: unknown key (allowed: url, {', '.join(sorted(known))})")
        if key in ("ca_file", "cert_file", "key_file"):
            value = Path(value)
        overrides[key] = value
    try:
        return replace(settings, **overrides)
    except TypeError as exc:
        raise ConfigError(f"mqtt: {exc}") from exc
