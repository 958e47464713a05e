"""The one validator of configuration values: typed tables declared as dataclasses, checked the same way
everywhere, and exported as a JSON Schema.

A table is a frozen dataclass whose fields are declared with :func:`setting` (default, one-line doc, bounds,
whether the value is a duration or a path). :func:`check_table` turns a TOML mapping into an instance: unknown
keys, wrong types and out-of-range values each give one :class:`~streameval.errors.ConfigError` line that names
the table and the key. :func:`json_schema` derives the JSON Schema from the same declarations, so the docs
cannot drift from the code.

Durations have one convention everywhere: a number is seconds; a string is a number with an optional unit,
``ms``, ``s``, ``m`` or ``h`` (``"500ms"``, ``"2s"``, ``"1.5m"``); a string without a unit is seconds. The sign
is parsed here and each key's bounds decide whether zero or negative values are allowed (only ``offset`` takes a
negative duration).

This is our own small validator rather than pydantic: the messages (the table, the key, the closest valid key)
are the product here, the TOML values are already typed so no coercion is wanted, and it keeps
``import streameval.cli`` free of a compiled dependency (see docs/config.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar, get_args, get_origin

from streameval.errors import ConfigError

T = TypeVar("T")

_DURATION_RE: Final = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS: Final[dict[str | None, float]] = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
DURATION_PATTERN: Final = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*(ms|s|m|h)?\s*$"
DURATION_HELP: Final = "a duration like '2s', '500ms' or '1m' (a number means seconds)"


def parse_duration(value: object, name: str) -> float:
    """Seconds from ``1.5``, ``"1.5"``, ``"1500ms"``, ``"2m"``, ``"-0.5s"``; a ConfigError naming ``name``
    otherwise. Bounds are the caller's business (see :func:`setting`)."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}: must be {DURATION_HELP}, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ConfigError(f"{name}: must be {DURATION_HELP}, got {value!r}")
    if not math.isfinite(seconds):
        raise ConfigError(f"{name}: must be a finite duration, got {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class Setting:
    """What a field's metadata says about its TOML key."""

    doc: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    duration: bool = False
    path: bool = False  # relative paths in a config file are relative to the file
    csv: bool = False  # a list that may also be written as one comma-separated string
    shown_default: str | None = None  # the default as documented, when the value itself is computed (None)
    key: str | None = None  # the TOML key when it cannot be the field name (`for` is a Python keyword)


def setting(
    default: T,
    doc: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    duration: bool = False,
    path: bool = False,
    csv: bool = False,
    shown_default: str | None = None,
    key: str | None = None,
) -> T:
    """A dataclass field that is a configuration key. Mutable defaults (lists, dicts) are copied per instance."""
    meta = {"setting": Setting(doc, ge, gt, le, duration, path, csv, shown_default, key)}
    if isinstance(default, list | dict):
        factory: Callable[[], Any] = default.copy
        return dataclasses.field(default_factory=factory, metadata=meta)  # type: ignore[no-any-return]
    return dataclasses.field(default=default, metadata=meta)


def settings_of(cls: type[Any]) -> dict[str, tuple[Any, Setting, dataclasses.Field[Any]]]:
    """TOML key -> (type hint, Setting, field) for every configuration key of a table class."""
    hints = typing.get_type_hints(cls)
    out: dict[str, tuple[Any, Setting, dataclasses.Field[Any]]] = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("setting")
        if isinstance(meta, Setting):
            out[meta.key or f.name] = (hints[f.name], meta, f)
    return out


def default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def closest(key: str, valid: list[str]) -> str | None:
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return match[0] if match else None


def unknown_key_error(where: str, key: str, valid: list[str]) -> ConfigError:
    near = closest(key, valid)
    hint = f"; did you mean {near!r}?" if near else ""
    return ConfigError(f"{where}: unknown key {key!r}{hint} (valid keys: {', '.join(sorted(valid))})")


def key_name(where: str, key: str) -> str:
    """How messages name a key: ``[faces] min_score`` in a table, ``alerts[0].for`` in an array of tables."""
    return f"{where} {key}" if where.startswith("[") else f"{where}.{key}"


def check_table(cls: type[T], raw: object, where: str) -> T:
    """An instance of table class ``cls`` from a TOML mapping; ``where`` names the table in messages
    (``[faces]``, ``alerts[2]``)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a table, got {raw!r}")
    keys = settings_of(cls)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in keys:
            raise unknown_key_error(where, str(key), list(keys))
        hint, meta, _ = keys[key]
        values[key] = convert(value, hint, meta, key_name(where, key))
    hook = getattr(cls, "check_keys", None)  # rules that depend on which keys were given, not only on values
    if hook is not None:
        hook(values, where)
    return cls(**{keys[k][2].name: v for k, v in values.items()})


def convert(value: Any, hint: Any, meta: Setting, name: str) -> Any:
    """``value`` checked against the type ``hint`` and the bounds of ``meta``; converted where the convention
    asks (durations to seconds, comma-separated strings to lists)."""
    out = _convert(value, hint, meta, name)
    if isinstance(out, int | float) and not isinstance(out, bool):
        _check_bounds(out, meta, name, value)
    return out


def _convert(value: Any, hint: Any, meta: Setting, name: str) -> Any:
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            with contextlib.suppress(ConfigError):  # the message below names every accepted type at once
                return _convert(value, option, meta, name)
        raise ConfigError(f"{name}: must be {describe(hint, meta)}, got {value!r}")
    if meta.duration and hint is float:
        return parse_duration(value, name)
    if origin is Literal:
        choices = get_args(hint)
        if isinstance(value, str | int) and not isinstance(value, bool) and value in choices:
            return value
        raise ConfigError(f"{name}: must be {describe(hint, meta)}, got {value!r}")
    if origin in (list, tuple):
        (item,) = [a for a in get_args(hint) if a is not Ellipsis][:1]
        if meta.csv and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name}: must be {describe(hint, meta)}, got {value!r}")
        item_meta = dataclasses.replace(meta, ge=None, gt=None, le=None, csv=False)
        items = [_convert_item(v, item, item_meta, f"{name}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        _, item = get_args(hint)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name}: must be {describe(hint, meta)}, got {value!r}")
        out = {}
        for k, v in value.items():
            out[str(k)] = convert(v, item, meta, f"{name}.{k}")
        return out
    return _convert_item(value, hint, meta, name)


def _convert_item(value: Any, hint: Any, meta: Setting, name: str) -> Any:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return check_table(hint, value, name)
    if get_origin(hint) is not None:
        return _convert(value, hint, meta, name)
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(hint)
    if ok is None:
        raise TypeError(f"{name}: unsupported setting type {hint!r}")  # a bug in a table declaration
    if not ok:
        raise ConfigError(f"{name}: must be {describe(hint, meta)}, got {value!r}")
    if hint is float:
        if not math.isfinite(value):
            raise ConfigError(f"{name}: must be a finite number, got {value!r}")
        return float(value)
    if hint is str and meta.path and not value:
        raise ConfigError(f"{name}: must be a non-empty path, got {value!r}")
    return value


def _check_bounds(number: float, meta: Setting, name: str, given: Any) -> None:
    lo_ok = (meta.ge is None or number >= meta.ge) and (meta.gt is None or number > meta.gt)
    hi_ok = meta.le is None or number <= meta.le
    if lo_ok and hi_ok:
        return
    what = "duration" if meta.duration else "number"
    if meta.gt == 0 and meta.le is None:
        need = f"a positive {what}"
    elif meta.ge is not None and meta.le is not None:
        need = f"{'an integer' if isinstance(number, int) else 'a ' + what} in [{meta.ge:g}, {meta.le:g}]"
    else:
        parts = [f">= {meta.ge:g}" if meta.ge is not None else "", f"> {meta.gt:g}" if meta.gt is not None else ""]
        parts.append(f"<= {meta.le:g}" if meta.le is not None else "")
        need = f"a {what} " + " and ".join(p for p in parts if p)
    raise ConfigError(f"{name}: must be {need}, got {given!r}")


def describe(hint: Any, meta: Setting) -> str:
    """The expected type in words, for one-line error messages."""
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(describe(a, meta) for a in get_args(hint) if a is not type(None))
    if meta.duration and hint is float:
        return DURATION_HELP
    if origin is Literal:
        names = [repr(c) for c in get_args(hint)]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    if origin in (list, tuple):
        item = get_args(hint)[0]
        text = f"a list of {_plural(describe(item, dataclasses.replace(meta, csv=False)))}"
        return text + (" (or one comma-separated string)" if meta.csv else "")
    if origin is dict:
        return f"a table of {_plural(describe(get_args(hint)[1], meta))}"
    if dataclasses.is_dataclass(hint):
        return "a table"
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a path" if meta.path else "a string"}
    return words.get(hint, str(hint))


def _plural(text: str) -> str:
    for article in ("a ", "an "):
        if text.startswith(article):
            noun = text[len(article) :]
            return noun + ("s" if not noun.endswith("s") else "")
    return text


# ---------------------------------------------------------------------------------------------- JSON Schema


def json_schema(cls: type[Any], *, title: str | None = None, tables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of table class ``cls``; ``tables`` adds nested tables by key."""
    props: dict[str, Any] = {}
    for key, (hint, meta, f) in settings_of(cls).items():
        prop = _schema_of(hint, meta)
        prop["description"] = meta.doc
        default = default_of(f)
        if default is not dataclasses.MISSING and default is not None and not dataclasses.is_dataclass(default):
            prop["default"] = list(default) if isinstance(default, tuple) else default
        props[key] = prop
    for key, sub in (tables or {}).items():
        props[key] = sub
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
    if title:
        schema["title"] = title
    if cls.__doc__:
        schema["description"] = " ".join(cls.__doc__.split())
    return schema


def _schema_of(hint: Any, meta: Setting) -> dict[str, Any]:
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [_schema_of(a, meta) for a in get_args(hint) if a is not type(None)]
        return options[0] if len(options) == 1 else {"anyOf": options}
    if meta.duration and hint is float:
        number: dict[str, Any] = {"type": "number"}
        _bounds(number, meta)
        return {"anyOf": [number, {"type": "string", "pattern": DURATION_PATTERN}]}
    if origin is Literal:
        return {"enum": list(get_args(hint))}
    if origin in (list, tuple):
        plain = dataclasses.replace(meta, ge=None, gt=None, le=None, csv=False)
        array = {"type": "array", "items": _schema_of(get_args(hint)[0], plain)}
        return {"anyOf": [array, {"type": "string"}]} if meta.csv else array
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_of(get_args(hint)[1], meta)}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return json_schema(hint)
    kind = {bool: "boolean", int: "integer", float: "number", str: "string"}[hint]
    out: dict[str, Any] = {"type": kind}
    if hint is str and meta.path:
        out["minLength"] = 1
    if hint in (int, float):
        _bounds(out, meta)
    return out


def _bounds(out: dict[str, Any], meta: Setting) -> None:
    if meta.ge is not None:
        out["minimum"] = meta.ge
    if meta.gt is not None:
        out["exclusiveMinimum"] = meta.gt
    if meta.le is not None:
        out["maximum"] = meta.le
