"""The batch manifest: one (original, de-identified) pair per row, as CSV or JSON Lines.

Columns (JSON keys): ``source``, ``deid``, ``method`` (required); ``ref_a``, ``ref_b`` (reference images of
identities A and B), ``id`` (the pair's directory name; derived when absent) and ``options`` (settings for this
pair only, in the shape of the TOML file: ``{"offset": "0.5s", "reality": {"clip_every": "1s"}}``; in CSV a JSON
object in the cell). Relative paths are relative to the manifest. A bad row (missing file, missing or unknown
column, bad options, a pair or id seen before) is reported with its line number and the other rows still run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streameval.errors import ConfigError

REQUIRED = ("source", "deid", "method")
OPTIONAL = ("ref_a", "ref_b", "id", "options")
COLUMNS = REQUIRED + OPTIONAL
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class PairSpec:
    """One valid manifest row, with paths resolved."""

    id: str
    method: str
    source: str
    deid: str
    row: int  # line number in the manifest (1: the first line of the file)
    ref_a: str | None = None
    ref_b: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowError:
    """A manifest row that cannot run, and why."""

    row: int
    message: str
    id: str | None = None
    method: str | None = None


@dataclass
class Manifest:
    path: Path
    pairs: list[PairSpec]
    errors: list[RowError]


def _is_local(spec: str) -> bool:
    return spec != "-" and "://" not in spec and not spec.startswith("/dev/")


def _resolve(value: str, base: Path) -> str:
    if _is_local(value) and not Path(value).expanduser().is_absolute():
        return str(base / value)
    return str(Path(value).expanduser()) if _is_local(value) else value


def derived_id(method: str, source: str, deid: str, options: dict[str, Any]) -> str:
    """A stable directory name: method, the de-identified file's stem and a short hash of the whole row."""
    digest = hashlib.sha256(json.dumps([method, source, deid, options], sort_keys=True).encode()).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(deid).stem)[:60] or "pair"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", method)[:40] or "method"
    return f"{slug}-{stem}-{digest}"


def _rows(path: Path) -> list[tuple[int, dict[str, Any] | str]]:
    """(line, mapping) per data row, or (line, error message) for a row that cannot be read at all."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"manifest {path}: cannot read it: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"manifest {path}: not UTF-8 text: {exc}") from exc
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson", ".json") or text.lstrip().startswith("{")
    out: list[tuple[int, dict[str, Any] | str]] = []
    if jsonl:
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                out.append((line_no, f"not valid JSON: {exc.msg}"))
                continue
            out.append((line_no, value if isinstance(value, dict) else f"expected a JSON object, got {value!r}"))
        return out
    reader = csv.reader(text.splitlines())
    header: list[str] | None = None
    for record in reader:
        line_no = reader.line_num
        if not any(cell.strip() for cell in record) or record[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [h.strip() for h in record]
            continue
        if len(record) != len(header):
            out.append((line_no, f"{len(record)} cells for {len(header)} columns"))
            continue
        # An empty cell is an absent value, so optional columns can be left blank.
        out.append((line_no, {k: v.strip() for k, v in zip(header, record, strict=True) if v.strip()}))
    if header is None:
        raise ConfigError(f"manifest {path}: no header row (expected columns {', '.join(COLUMNS)})")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ConfigError(f"manifest {path}: header lacks column(s) {', '.join(missing)} (have {', '.join(header)})")
    return out


def _pair(line: int, raw: dict[str, Any], base: Path) -> PairSpec:
    unknown = sorted(set(raw) - set(COLUMNS))
    if unknown:
        raise ConfigError(f"unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}")
    missing = [c for c in REQUIRED if not raw.get(c)]
    if missing:
        raise ConfigError(f"missing {', '.join(missing)}")
    values: dict[str, str] = {}
    for key in ("source", "deid", "method", "ref_a", "ref_b", "id"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        if value:
            values[key] = value
    options = raw.get("options") or {}
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"options: not a JSON object: {exc.msg}") from None
    if not isinstance(options, dict):
        raise ConfigError(f"options must be a JSON object, got {options!r}")
    paths = {k: _resolve(values[k], base) for k in ("source", "deid", "ref_a", "ref_b") if k in values}
    for key, value in paths.items():
        if _is_local(value) and not Path(value).is_file():
            raise ConfigError(f"{key} {value}: no such file")
    pair_id = values.get("id") or derived_id(values["method"], paths["source"], paths["deid"], options)
    if not _SAFE_ID.match(pair_id):
        raise ConfigError(f"id {pair_id!r}: use letters, digits, '.', '_' and '-' (it names a directory)")
    return PairSpec(
        id=pair_id,
        method=values["method"],
        source=paths["source"],
        deid=paths["deid"],
        row=line,
        ref_a=paths.get("ref_a"),
        ref_b=paths.get("ref_b"),
        options=options,
    )


def load_manifest(path: Path | str) -> Manifest:
    """Every row of the manifest: the valid pairs and a :class:`RowError` for each row that cannot run.

    Raises ConfigError only when the file as a whole is unusable (unreadable, no CSV header).
    """
    path = Path(path)
    base = path.resolve().parent
    pairs: list[PairSpec] = []
    errors: list[RowError] = []
    seen_rows: dict[str, int] = {}
    seen_ids: dict[str, int] = {}
    for line, raw in _rows(path):
        if isinstance(raw, str):
            errors.append(RowError(line, raw))
            continue
        method = raw.get("method") if isinstance(raw.get("method"), str) else None
        try:
            pair = _pair(line, raw, base)
        except ConfigError as exc:
            errors.append(RowError(line, str(exc), method=method))
            continue
        key = json.dumps([pair.source, pair.deid, pair.method, pair.ref_a, pair.ref_b, pair.options], sort_keys=True)
        if key in seen_rows:
            errors.append(RowError(line, f"duplicate of the pair on line {seen_rows[key]}", pair.id, pair.method))
            continue
        if pair.id in seen_ids:
            errors.append(RowError(line, f"id {pair.id!r} already used on line {seen_ids[pair.id]}", None, method))
            continue
        seen_rows[key] = seen_ids[pair.id] = line
        pairs.append(pair)
    return Manifest(path, pairs, errors)
