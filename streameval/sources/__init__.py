"""Video sources: files, network streams, cameras and pipes, decoded by PyAV in a thread.

``open_source(spec, ...)`` returns a ``VideoSource``, an async context manager and async iterator of
``streameval.frames.Frame``.
"""

from __future__ import annotations

from streameval.sources.clock import SYSTEM_CLOCK, Clock, SystemClock
from streameval.sources.source import VideoSource, open_source
from streameval.sources.spec import SourceKind, SourceSpec, parse_spec
from streameval.sources.stats import EndReason, SourceInfo, SourceStats

__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "EndReason",
    "SourceInfo",
    "SourceKind",
    "SourceSpec",
    "SourceStats",
    "SystemClock",
    "VideoSource",
    "open_source",
    "parse_spec",
]
