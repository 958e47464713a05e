"""Classify a source specification: file path, network URL, V4L2 camera or ``-`` for stdin."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

SourceKind = Literal["file", "url", "device", "pipe"]

# Protocols FFmpeg reaches over the network; every one of them is a live source by default.
NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp"})
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_V4L2_DEVICE = re.compile(r"^/dev/video\d+$")


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What to hand to ``av.open`` and how the source behaves by default.

    ``target`` is the string passed to FFmpeg, ``format`` the demuxer to force (``None``: probe),
    ``live`` and ``reconnect`` the defaults that ``open_source`` applies when the caller leaves them unset.
    """

    spec: str
    kind: SourceKind
    target: str
    format: str | None
    live: bool
    reconnect: bool


def parse_spec(spec: str) -> SourceSpec:
    """Classify ``spec``; raises ValueError for an empty or unsupported one."""
    text = spec.strip()
    if not text:
        raise ValueError("source spec is empty")
    if text == "-":
        # A pipe ends when the writer closes it; there is nothing to reconnect to.
        return SourceSpec(spec, "pipe", "pipe:0", None, live=True, reconnect=False)
    match = _SCHEME.match(text)
    if match is not None:
        scheme = match.group(1).lower()
        if scheme == "file":
            return SourceSpec(spec, "file", text[len("file://") :], None, live=False, reconnect=False)
        if scheme not in NETWORK_SCHEMES:
            known = ", ".join(sorted(NETWORK_SCHEMES))
            raise ValueError(f"unsupported URL scheme {scheme!r} in source {spec!r}; use one of {known}")
        return SourceSpec(spec, "url", text, None, live=True, reconnect=True)
    if _V4L2_DEVICE.match(text):
        # A USB camera can be unplugged and plugged back in: reopen it like a network stream.
        return SourceSpec(spec, "device", text, "v4l2", live=True, reconnect=True)
    return SourceSpec(spec, "file", text, None, live=False, reconnect=False)
