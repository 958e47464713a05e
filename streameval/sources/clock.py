"""The clock a source paces, waits and timestamps with; tests substitute a controllable one."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time plus an interruptible wait (called from the decoder thread)."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Wait up to ``seconds``; return True at once if ``stop`` is (or becomes) set."""
        ...


class SystemClock:
    """``time.monotonic`` and ``Event.wait``: the real thing."""

    def now(self) -> float:
        return time.monotonic()

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        if seconds <= 0.0:
            return stop.is_set()
        return stop.wait(seconds)


SYSTEM_CLOCK = SystemClock()
