"""The protocol every statistic follows, so that one rolling wrapper serves them all."""

from __future__ import annotations

from typing import Any, Protocol, Self, TypeVar

R_co = TypeVar("R_co", covariant=True)


class Statistic(Protocol[R_co]):
    """A running statistic: O(1) ``update``/``revert`` of one observation, ``get`` the current value.

    ``revert`` must only be given observations that were added before (that is how windows expire them).
    """

    @property
    def n(self) -> int: ...

    def update(self, *args: Any, **kwargs: Any) -> None: ...

    def revert(self, *args: Any, **kwargs: Any) -> None: ...

    def get(self) -> R_co: ...

    def reset(self) -> None: ...

    def clone(self) -> Self: ...
