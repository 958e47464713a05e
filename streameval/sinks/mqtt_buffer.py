"""A bounded FIFO of outgoing messages that drops the oldest on overflow and counts what it dropped.

Kept apart from the network code so the counting can be tested on its own: every message put in is, in the end,
either taken out (``pop``) or counted in ``dropped``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from streameval.errors import UsageError


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    retain: bool


class DropOldestBuffer:
    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise UsageError(f"buffer_size = {capacity!r}: expected an integer >= 1")
        self.capacity = capacity
        self.dropped = 0
        self._items: deque[Outgoing] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Outgoing) -> None:
        self._items.append(item)
        self._trim()

    def peek(self) -> Outgoing:
        return self._items[0]

    def pop(self) -> Outgoing:
        return self._items.popleft()

    def put_back(self, item: Outgoing) -> None:
        """Return an item that could not be sent to the front; if that overflows, it is the oldest and goes."""
        self._items.appendleft(item)
        self._trim()

    def _trim(self) -> None:
        while len(self._items) > self.capacity:
            self._items.popleft()
            self.dropped += 1
