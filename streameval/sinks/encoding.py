"""The one JSON encoding of records, used by every sink (JSON Lines, MQTT) and the report file.

Plain JSON only, so any consumer can read it:

* NaN and ±inf become ``null``. Undefined values must already be ``None`` with a reason next to them; this is the
  last line of defence, so that one stray NaN neither writes the non-standard token ``NaN`` nor aborts a run.
  Every sink does the same: a record looks the same in the log, on MQTT and in the report.
* numpy scalars become Python numbers (``np.float32(0.5)`` -> ``0.5``, ``np.bool_`` -> ``true``) and numpy arrays
  nested lists (their NaNs ``null`` too); tuples become lists, paths strings, mapping keys strings.
* Anything else (an object, bytes) is a bug in the record's producer: ``TypeError``, which each sink turns into its
  own error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np


def to_jsonable(value: Any) -> Any:
    """``value`` made of plain JSON types only (see the module docstring)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(record: Mapping[str, Any], *, indent: int | None = None) -> str:
    """The JSON text of ``record``: compact (one line, for JSON Lines and MQTT) or indented (the report file)."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(to_jsonable(record), separators=separators, indent=indent, allow_nan=False)


def encode(record: Mapping[str, Any]) -> bytes:
    """Bytes of the compact form (MQTT payloads); ASCII, as every form is (non-ASCII text is escaped)."""
    return dumps(record).encode("ascii")
