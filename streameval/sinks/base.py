"""The sink interface.

A record is a JSON-serialisable mapping with a ``type`` key: ``metrics`` (one per hop), ``alert`` (raise/clear
events), ``status`` (online/offline, health) or ``report`` (the final whole-stream report). Values that are
undefined are ``None`` (never NaN) with a reason next to them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final, Protocol, Self, runtime_checkable

Record = Mapping[str, Any]
SCHEMA_VERSION = 1
MISSING: Final = object()  # what lookup returns for a path that is not in the record (unlike a null value)


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (``"deid.dlib.leak_rate"``), or :data:`MISSING` when a key on the way is absent."""
    node: Any = record
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return MISSING
        node = node[key]
    return node


def field(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or None when it is absent (readers that treat absent and null alike)."""
    value = lookup(record, path)
    return None if value is MISSING else value


def finite(value: object) -> float | None:
    """A record value as a finite float; None for null, booleans, text, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


@runtime_checkable
class Sink(Protocol):
    """An async context manager that publishes records. ``publish`` must not raise for transient failures
    (a broker that is down): it buffers, counts what it drops, and reports that in its own status."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def publish(self, record: Record) -> None: ...
