"""Rolling windows over any statistic: by count (:class:`Rolling`) and by stream time (:class:`TimeRolling`).

A window keeps the arguments of the observations it holds (O(window) memory) and, when one expires,
calls the inner statistic's ``revert`` with them, so every update costs O(1) in the window length.
:class:`Windowed` keeps a window and the whole-stream (cumulative) value side by side.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from typing import Any, Generic, Self, TypeVar

import numpy as np

from streameval.errors import UsageError
from streameval.stats._check import positive_int, stream_time
from streameval.stats.base import Statistic

R = TypeVar("R")

_Obs = tuple[tuple[Any, ...], dict[str, Any]]


def _frozen(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Obs:
    """Copy array arguments: the caller may reuse its buffers, and revert must see the values we added."""
    a = tuple(x.copy() if isinstance(x, np.ndarray) else x for x in args)
    k = {key: (v.copy() if isinstance(v, np.ndarray) else v) for key, v in kwargs.items()}
    return a, k


class _Window(Generic[R]):
    def __init__(self, stat: Statistic[R]) -> None:
        if not all(callable(getattr(stat, m, None)) for m in ("update", "revert", "get", "reset")):
            raise UsageError(f"{type(stat).__name__} cannot be windowed: it needs update, revert, get and reset")
        if stat.n != 0:
            raise UsageError(f"the statistic given to a window must be empty, it has n={stat.n}")
        self._stat = stat

    @property
    def stat(self) -> Statistic[R]:
        """The inner statistic (its state is the window's)."""
        return self._stat

    @property
    def n(self) -> int:
        return self._stat.n

    def get(self) -> R:
        return self._stat.get()

    def clone(self) -> Self:
        return copy.deepcopy(self)

    def __getattr__(self, name: str) -> Any:
        # Forward reason/reasons/pearson()/... to the inner statistic; private names are never forwarded,
        # which also keeps unpickling (before _stat exists) from recursing.
        if name.startswith("_") or name in ("merge", "revert"):
            # merge/revert on the inner statistic would desynchronise it from the stored observations.
            raise AttributeError(name)
        return getattr(self._stat, name)


class Rolling(_Window[R]):
    """The last ``size`` observations of ``stat``: ``Rolling(PearsonCorr(), 300).update(x, y)``."""

    def __init__(self, stat: Statistic[R], size: int) -> None:
        super().__init__(stat)
        self.size = positive_int(size, "size")
        self._obs: deque[_Obs] = deque()

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Add one observation (same arguments as the inner ``update``), reverting the oldest when full."""
        obs = _frozen(args, kwargs)
        self._stat.update(*obs[0], **obs[1])
        self._obs.append(obs)
        if len(self._obs) > self.size:
            old_args, old_kwargs = self._obs.popleft()
            self._stat.revert(*old_args, **old_kwargs)

    def reset(self) -> None:
        self._stat.reset()
        self._obs.clear()

    def __len__(self) -> int:
        return len(self._obs)


class TimeRolling(_Window[R]):
    """Observations with stream time in ``(now - period, now]``, ``now`` being the latest time seen.

    ``update(..., t=seconds)`` first expires what falls out of the window at ``t``; ``expire(now)`` (alias
    ``advance``) drops expired observations without adding one, e.g. when a stream has no face for a while.
    Times must not decrease.
    """

    def __init__(self, stat: Statistic[R], period: float) -> None:
        super().__init__(stat)
        p = float(period)
        if not math.isfinite(p) or p <= 0:
            raise UsageError(f"period must be a positive number of seconds, got {period!r}")
        self.period = p
        self._obs: deque[tuple[float, _Obs]] = deque()
        self._now = -math.inf

    @property
    def now(self) -> float | None:
        """Latest stream time seen (None before the first)."""
        return None if self._now == -math.inf else self._now

    @property
    def t_first(self) -> float | None:
        """Stream time of the oldest observation in the window."""
        return self._obs[0][0] if self._obs else None

    @property
    def t_last(self) -> float | None:
        """Stream time of the newest observation in the window."""
        return self._obs[-1][0] if self._obs else None

    def _advance_clock(self, t: float) -> float:
        self._now = stream_time(t, self._now)
        return self._now

    def expire(self, now: float) -> int:
        """Drop observations with ``t <= now - period``; returns how many were dropped."""
        limit = self._advance_clock(now) - self.period
        dropped = 0
        while self._obs and self._obs[0][0] <= limit:
            _, (args, kwargs) = self._obs.popleft()
            self._stat.revert(*args, **kwargs)
            dropped += 1
        return dropped

    advance = expire

    def update(self, *args: Any, t: float, **kwargs: Any) -> None:
        """Add one observation at stream time ``t`` (seconds)."""
        self.expire(t)
        obs = _frozen(args, kwargs)
        self._stat.update(*obs[0], **obs[1])
        self._obs.append((self._now, obs))

    def reset(self) -> None:
        self._stat.reset()
        self._obs.clear()
        self._now = -math.inf

    def __len__(self) -> int:
        return len(self._obs)


class Windowed(Generic[R]):
    """A window and the whole-stream value of the same statistic, updated together.

    Give exactly one of ``size`` (count window) or ``period`` (stream-time window, seconds; ``update``
    then needs ``t=``).
    """

    def __init__(self, stat: Statistic[R], *, size: int | None = None, period: float | None = None) -> None:
        if (size is None) == (period is None):
            raise UsageError("Windowed needs exactly one of size= or period=")
        self.total: Statistic[R] = stat.clone()
        self.window: Rolling[R] | TimeRolling[R] = (
            Rolling(stat.clone(), size) if size is not None else TimeRolling(stat.clone(), float(period or 0))
        )

    def update(self, *args: Any, t: float | None = None, **kwargs: Any) -> None:
        """Add one observation to both; ``t`` is required for time windows and ignored otherwise."""
        if isinstance(self.window, TimeRolling):
            if t is None:
                raise UsageError("a time window needs the observation time t=")
            self.window.update(*args, t=t, **kwargs)
        else:
            self.window.update(*args, **kwargs)
        self.total.update(*args, **kwargs)

    def expire(self, now: float) -> int:
        """Advance a time window to ``now`` (no-op for count windows)."""
        return self.window.expire(now) if isinstance(self.window, TimeRolling) else 0

    def reset(self) -> None:
        self.window.reset()
        self.total.reset()

    def clone(self) -> Self:
        return copy.deepcopy(self)
