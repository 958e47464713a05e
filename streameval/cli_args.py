"""Argument types shared by the command-line parsers (``replay``/``run`` and ``batch``): one duration and one
rate syntax on every command."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from streameval.errors import StreamevalError
from streameval.schema import parse_duration


def duration(name: str) -> Callable[[str], float]:
    """argparse type for ``--<name>``: a duration such as ``10s``, ``500ms`` or ``2m`` (seconds as a float)."""

    def parse(text: str) -> float:
        try:
            return parse_duration(text, f"--{name}")
        except StreamevalError:
            raise argparse.ArgumentTypeError(f"expected a duration like '10s', '500ms' or '2m', got {text!r}") from None

    return parse


def rate(text: str) -> tuple[str, float]:
    """argparse type for ``--rate NAME=ANALYSES_PER_SECOND``."""
    name, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=ANALYSES_PER_SECOND, e.g. pixel=5, got {text!r}") from None
