"""The analyser interface.

An analyser turns a :class:`~streameval.frames.FramePair` into an :class:`Observation`: a few numbers (or
vectors) at the pair's stream time. Analysers are synchronous and may be slow; the pipeline runs each one in its
own worker thread, one call at a time and in stream order, so an analyser may keep state between calls (a clip
analyser collects frames until a clip is complete and returns ``None`` meanwhile).

An analyser that reads faces sets the class attribute ``needs_faces = True``: the pipeline then runs the face
stage (:mod:`streameval.faces`) before it and only hands it pairs with ``pair.faces`` set. An analyser may
also define ``wants(t) -> bool``: the pipeline then skips pairs it does not need (the reality lane between two
clips), so they are neither queued nor, in a live run, dropped from its queue.

An analyser whose work is a slow, batched statistic that can wait (I3D on a clip) splits it in two: ``analyse``
does the cheap per-pair part (cropping the clip's frames) and, when a batch is complete, returns a
:class:`Deferred` instead of an observation. The pipeline runs the deferred work in a background thread of the
lane (live: at a lower CPU priority, so when the machine is short of cores the per-frame lanes, this lane's own
cropping included, keep up and it is the batched work that waits). While one deferred job runs, a replay waits for it
before starting the next (nothing is skipped, results never depend on the machine); a live run skips the new
batch instead (counted as skipped in ``health.background``), so the clip rate adapts to the CPU left over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from streameval.frames import FramePair


@dataclass(frozen=True, slots=True)
class Observation:
    """What one analyser measured on one pair (or one clip ending at ``t``)."""

    analyser: str
    t: float  # stream time on the source clock
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Deferred:
    """Slow work an analyser hands back for the background: ``run()`` gives the observation at ``t`` (the time of
    the last pair it covers), or None. It must not touch state that the analyser's next ``analyse`` calls use."""

    t: float
    run: Callable[[], Observation | None]


def resolve(result: Observation | Deferred | None) -> Observation | None:
    """An analyser's result with any deferred work done here and now (for callers outside the pipeline)."""
    return result.run() if isinstance(result, Deferred) else result


@runtime_checkable
class Analyser(Protocol):
    #: unique name; metrics subscribe to observations by this name
    name: str
    #: analyses per second of stream time; ``None`` analyses every pair
    rate: float | None

    def analyse(self, pair: FramePair) -> Observation | Deferred | None: ...

    def close(self) -> list[Observation]:
        """End of stream: return what is still pending (e.g. a partial clip), release resources."""
        ...
