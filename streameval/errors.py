"""The one exception hierarchy of streameval.

The CLI maps each family to its own exit code, so callers can tell a bad command line from a bad input
from a bug. Errors from third-party libraries are translated at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class StreamevalError(Exception):
    """Base class of every error streameval raises on purpose."""


class UsageError(StreamevalError):
    """Bad command line or configuration (unknown key, invalid window, ...)."""


class ConfigError(UsageError):
    """Invalid configuration file or value."""


class InputError(StreamevalError):
    """A source cannot be opened or decoded (missing file, corrupt data, no video stream, ...)."""


class SourceStalled(InputError):
    """A live source produced nothing for longer than its read timeout."""


class ModelError(StreamevalError):
    """A model file is missing, corrupted, or has the wrong signature."""


class MissingExtraError(StreamevalError):
    """A dependency is not installed; the message names the pip command: the extra to install, or the package
    itself when ``extra`` is None (a core dependency missing from a broken or partial install)."""

    def __init__(self, extra: str | None, package: str, purpose: str) -> None:
        command = f"pip install 'streameval[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{purpose} needs the '{package}' package: {command}")
        self.extra = extra
        self.package = package


class SinkError(StreamevalError):
    """A sink (log file, MQTT broker) failed in a way that cannot be retried."""
