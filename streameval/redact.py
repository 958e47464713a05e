"""The one place that hides secrets in URLs before they leave the process.

Every URL streameval prints, logs, publishes or writes into a record goes through :func:`redact` (a single URL
or any text that contains URLs: an error message, a log line). What is hidden:

- the password of ``scheme://user:password@host``: it becomes ``***``; the user name stays, it helps to tell
  accounts apart. The user information is taken to end at the *last* ``@`` of the URL, so a password with a
  raw ``/``, ``?``, ``#`` or ``@`` in it is hidden whole (a path that contains ``@`` is then hidden too: the
  safe side of an ambiguous URL);
- query parameters whose name says they carry a secret (``password``, ``pass``, ``pwd``, ``secret``, ``token``,
  ``auth``, ``signature``, ``sig``, ``api_key``, ``access_key``, ``credential``...): their value becomes ``***``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Final

MASK: Final = "***"

# scheme://, then the user information up to the last '@' before whitespace, quotes or the end of the URL
_USERINFO: Final = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s'\"<>]*)@")
_SECRET_PARAM: Final = re.compile(
    r"(?P<name>[?&;](?:[\w.-]*(?:pass|pwd|secret|token|auth|credential|api[-_]?key|access[-_]?key|signature)"
    r"[\w.-]*|sig))=(?P<value>[^&;#\s'\"<>]*)",
    re.IGNORECASE,
)


def _hide_password(match: re.Match[str]) -> str:
    userinfo = match.group("userinfo")
    user, colon, _password = userinfo.partition(":")
    if not colon:
        # No ':' before the last '@': either a user name alone, or a path/query that holds an '@'. A '/', '?'
        # or '#' means the '@' is not the end of a user name: hide everything up to it.
        return match.group(0) if not re.search(r"[/?#]", userinfo) else f"{match.group('head')}{MASK}@"
    if re.search(r"[/?#]", user):  # the ':' belongs to a port or a path, yet an '@' follows: hide it all
        return f"{match.group('head')}{MASK}@"
    return f"{match.group('head')}{user}:{MASK}@"


def redact(text: str) -> str:
    """``text`` with the password of every URL in it and secret-looking query values replaced by ``***``."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(_hide_password, text)
    return _SECRET_PARAM.sub(lambda m: f"{m.group('name')}={MASK}", text)


def redact_url(url: str) -> str:
    """One URL (or any text) without its secrets; the name says what callers mean."""
    return redact(url)


def redact_strings(value: Any) -> Any:
    """A copy of a JSON-like value (a record, a report) with :func:`redact` applied to every string in it."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_strings(v) for v in value]
    return value


class RedactFilter(logging.Filter):
    """A handler filter that redacts the formatted message (and an attached traceback's text) of every record,
    so no log line can carry a password whichever module logged the URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if redact(text) != text:
                record.exc_text = redact(text)
                record.exc_info = None
        return True
