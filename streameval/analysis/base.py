"""The analyser interface.

An analyser turns a :class:`~streameval.frames.FramePair` into an :class:`Observation`: a few numbers (or
vectors) at the pair's stream time. Analysers are synchronous and may be slow; the pipeline runs each one in its
own worker thread, one call at a time and in stream order, so an analyser may keep state between calls (a clip
analyser collects frames until a clip is complete and returns ``None`` meanwhile).

An analyser that reads faces sets the class attribute ``needs_faces = True``: the pipeline then runs the face
stage (:mod:`streameval.faces`) before it and only hands it pairs with ``pair.faces`` set. An analyser may
also define ``wants(t) -> bool``: the pipeline then skips pairs it does not need (the reality lane between two
clips), so they are neither queued nor, in a live run, dropped from its queue. An analyser whose work is a
slow, batched statistic that can wait (I3D clips) sets ``background = True``: its lane thread runs at a lower
CPU priority, so when the machine is short of cores the per-frame lanes keep up and it is the batched work that
falls behind (and, live, drops its clip frames) rather than every face family losing frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from streameval.frames import FramePair


@dataclass(frozen=True, slots=True)
class Observation:
    """What one analyser measured on one pair (or one clip ending at ``t``)."""

    analyser: str
    t: float  # stream time on the source clock
    values: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Analyser(Protocol):
    #: unique name; metrics subscribe to observations by this name
    name: str
    #: analyses per second of stream time; ``None`` analyses every pair
    rate: float | None

    def analyse(self, pair: FramePair) -> Observation | None: ...

    def close(self) -> list[Observation]:
        """End of stream: return what is still pending (e.g. a partial clip), release resources."""
        ...
