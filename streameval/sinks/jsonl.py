"""JSON Lines sink (stdout or a file) and the report file, in the one encoding of every sink
(:mod:`streameval.sinks.encoding`)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

from streameval.errors import SinkError
from streameval.sinks.base import Record
from streameval.sinks.encoding import dumps, to_jsonable

__all__ = ["JsonLinesSink", "dumps", "to_jsonable", "write_json_atomic"]

log = logging.getLogger(__name__)


def write_json_atomic(path: Path, payload: Record) -> None:
    """Write a JSON document so that readers never see half a file (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(dumps(payload, indent=2) + "\n", encoding="utf-8")
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
