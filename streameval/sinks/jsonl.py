"""JSON Lines sink (stdout or a file) and the JSON encoding shared by every sink."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO

import numpy as np

from streameval.errors import SinkError
from streameval.sinks.base import Record

log = logging.getLogger(__name__)


def to_jsonable(value: Any) -> Any:
    """Plain JSON types only: numpy scalars and arrays become Python numbers and lists, NaN/inf become None.

    Undefined values must already carry a reason next to them; this is the last line of defence so that no
    NaN ever reaches a consumer (``json`` would write the non-standard token ``NaN``).
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(record: Record) -> str:
    return json.dumps(to_jsonable(record), separators=(",", ":"), allow_nan=False)


def write_json_atomic(path: Path, payload: Record) -> None:
    """Write a JSON document so that readers never see half a file (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise SinkError(f"cannot write {path}: {exc.strerror or exc}") from exc


class JsonLinesSink:
    """One JSON document per line. ``path=None`` or ``'-'`` writes to stdout.

    Each record is flushed as it is written, so a consumer tailing the file, or a run killed mid-way, sees every
    record published so far.
    """

    def __init__(self, path: Path | str | None = None, *, types: frozenset[str] | None = None) -> None:
        self.path = None if path is None or path == "-" else Path(path)
        self.types = types  # publish only these record types (None: all)
        self._fh: TextIO | None = None
        self.written = 0

    async def __aenter__(self) -> Self:
        if self.path is None:
            self._fh = sys.stdout
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = self.path.open("a", encoding="utf-8")
            except OSError as exc:
                raise SinkError(f"cannot open log file {self.path}: {exc.strerror or exc}") from exc
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        fh, self._fh = self._fh, None
        if fh is sys.stdout:
            fh.flush()
        elif fh is not None:
            fh.close()

    async def publish(self, record: Record) -> None:
        if self._fh is None:
            raise SinkError("JsonLinesSink used outside 'async with'")
        if self.types is not None and record.get("type") not in self.types:
            return
        try:
            self._fh.write(dumps(record) + "\n")
            self._fh.flush()
        except OSError as exc:
            raise SinkError(f"cannot write log {self.path or 'stdout'}: {exc.strerror or exc}") from exc
        self.written += 1
        log.debug("wrote %s record", record.get("type"))
