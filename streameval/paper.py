"""The paper-compatible whole-stream block of the final report (Bursic et al., ICPR 2020).

``paper = {"source": {...}, "deid": {...}}``; each stream has ``A_mean, A_std, B_mean, B_std`` (distances of its
faces to identities A and B, population std, primary recogniser), per AU ``[PCC, RMSE]`` against the source
stream (``AU01`` ... ``AU45``) and ``FID`` (I3D pool features against the source stream). The ``source`` row
compares the source with itself, as the paper's reference row does. Metric families contribute through a
``paper()`` method returning ``{stream: {key: value}}``; families that did not run leave their keys out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

STREAMS = ("source", "deid")


@runtime_checkable
class PaperContributor(Protocol):
    def paper(self) -> dict[str, dict[str, Any]]: ...


def paper_block(metrics: Iterable[object]) -> dict[str, dict[str, Any]] | None:
    """Merge every contributing metric's part; None when no metric contributes."""
    parts = [m.paper() for m in metrics if isinstance(m, PaperContributor)]
    if not parts:
        return None
    block: dict[str, dict[str, Any]] = {side: {} for side in STREAMS}
    for part in parts:
        for side in STREAMS:
            block[side].update(part.get(side, {}))
    return block
