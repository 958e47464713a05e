"""The sink interface.

A record is a JSON-serialisable mapping with a ``type`` key: ``metrics`` (one per hop), ``alert`` (raise/clear
events), ``status`` (online/offline, health) or ``report`` (the final whole-stream report). Values that are
undefined are ``None`` (never NaN) with a reason next to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

Record = Mapping[str, Any]
SCHEMA_VERSION = 1


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
