"""A small bounded queue from the decoder thread to an asyncio consumer.

Two policies: ``block`` (file replay: the decoder waits for the consumer, nothing is lost) and
``drop_oldest`` (live: the decoder must keep reading the network, so the oldest queued item is discarded and
reported through ``on_drop``). The thread side never touches the event loop except through
``call_soon_threadsafe``; the consumer side never blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class HandoverClosed(Exception):
    """Raised by ``get`` once the producer has finished and every item was taken."""


class Handover(Generic[T]):
    def __init__(self, maxsize: int, *, drop_oldest: bool, on_drop: Callable[[T], None] | None = None) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self._maxsize = maxsize
        self._drop_oldest = drop_oldest
        self._on_drop = on_drop
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._finished = False  # producer side: no more items will come
        self._closed = False  # consumer side: nobody will take items any more
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the consumer's event loop (call from that loop before the producer starts)."""
        self._loop = loop
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    # -- producer (decoder thread) -------------------------------------------------------------------------

    def put(self, item: T) -> bool:
        """Queue ``item``; return False (and drop it) when the consumer has closed the hand-over."""
        dropped: T | None = None
        with self._cond:
            if self._drop_oldest:
                if not self._closed and len(self._items) >= self._maxsize:
                    dropped = self._items.popleft()
            else:
                while not self._closed and len(self._items) >= self._maxsize:
                    self._cond.wait()
            if self._closed:
                return False
            self._items.append(item)
        if dropped is not None and self._on_drop is not None:
            self._on_drop(dropped)
        self._wake()
        return True

    def finish(self, error: BaseException | None = None) -> None:
        """No more items; ``get`` raises ``error`` (or HandoverClosed) once the queue is drained."""
        with self._cond:
            self._finished = True
            self._error = error
        self._wake()

    def _wake(self) -> None:
        loop, ready = self._loop, self._ready
        if loop is None or ready is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(ready.set)

    # -- consumer (event loop) ---------------------------------------------------------------------------

    async def get(self) -> T:
        if self._ready is None:
            raise RuntimeError("Handover.bind() was not called")
        while True:
            # Clear before looking: a put that lands after the look schedules a set() that wakes the wait.
            self._ready.clear()
            with self._cond:
                if self._items:
                    item = self._items.popleft()
                    self._cond.notify()
                    return item
                if self._finished:
                    if self._error is not None:
                        raise self._error
                    raise HandoverClosed
            await self._ready.wait()

    def close(self) -> None:
        """Stop accepting items and release a producer blocked in ``put``; queued items are discarded."""
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()
