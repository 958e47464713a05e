"""JSON Lines sink (stdout or a file) and the JSON encoding shared by every sink."""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import stat
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
    """Write a JSON document so that readers never see half a file (unique temp file + rename)."""
    from streameval.outputs import report_text, write_file_atomic

    write_file_atomic(Path(path), report_text(payload))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return str(exc)


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
            if sys.stdout is None or sys.stdout.closed:  # started with stdout closed (`>&-`)
                raise SinkError("standard output is closed: give --log FILE or --no-log")
            self._fh = sys.stdout
        else:
            self._fh = self._open_file(self.path)
        return self

    @staticmethod
    def _open_file(path: Path) -> TextIO:
        """Append to a regular file; a device, FIFO or directory is refused (opening a FIFO would block)."""
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            mode = None
        except OSError as exc:
            raise SinkError(f"cannot open log file {path}: {exc.strerror or exc}") from exc
        if mode is not None and not stat.S_ISREG(mode):
            raise SinkError(f"cannot open log file {path}: not a regular file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return path.open("a", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot open log file {path}: {exc.strerror or exc}") from exc

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        fh, self._fh = self._fh, None
        if fh is None:
            return
        try:
            if fh is sys.stdout:
                fh.flush()
            else:
                fh.close()  # the last flush can still fail (disk full)
        except (OSError, ValueError) as error:
            raise SinkError(f"cannot write log {self.path or 'stdout'}: {_reason(error)}") from error

    async def publish(self, record: Record) -> None:
        if self._fh is None:
            raise SinkError("JsonLinesSink used outside 'async with'")
        if self.types is not None and record.get("type") not in self.types:
            return
        try:
            self._fh.write(dumps(record) + "\n")
            self._fh.flush()
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed under us
            raise SinkError(f"cannot write log {self.path or 'stdout'}: {_reason(exc)}") from exc
        self.written += 1
        log.debug("wrote %s record", record.get("type"))
