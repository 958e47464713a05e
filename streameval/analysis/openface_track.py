"""OpenFace AUs as the AU source of the ``faces`` analyser: one stream's CSV rows, looked up per decoded frame.

Matching a row to a frame (``match``):

* ``"frame"``: OpenFace's ``frame`` column counts the frames it read from the file from 1, streameval's
  ``Frame.index`` counts decoded frames from 0, so row ``frame = index + 1`` belongs to the frame. Exact for any
  frame rate (also variable), as long as both decoders see the same frames (a replayed file drops none).
* ``"time"``: the row whose ``timestamp`` is nearest the frame's ``pts``, within half a frame interval (the
  median step of the CSV's timestamps). ``Frame.pts`` is rebased so a file's first frame is 0, and OpenFace's
  ``timestamp`` starts at 0 too (it is ``(frame - 1) / fps`` for a file), so the two clocks agree for a
  constant-frame-rate file.
* ``"auto"`` (default): ``"frame"`` when the CSV has a ``frame`` column, else ``"time"``.

A frame whose row is invalid (``success == 0`` or low confidence) or absent has no AUs: for the expression
metric it is a frame without a face.
"""

from __future__ import annotations

import logging
import os
import tempfile
from enum import Enum
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from streameval.analysis.openface import OpenFaceRows, read_openface_rows, run_feature_extraction
from streameval.errors import InputError
from streameval.frames import Frame

log = logging.getLogger(__name__)

MatchMode = Literal["auto", "frame", "time"]
MATCH_MODES: tuple[MatchMode, ...] = ("auto", "frame", "time")
FALLBACK_INTERVAL = 0.04  # seconds, when a CSV has fewer than two distinct timestamps


class RowStatus(Enum):
    OK = "ok"
    INVALID = "invalid"  # OpenFace found no trustworthy face on that frame
    UNMATCHED = "unmatched"  # the CSV has no row for that frame (a shorter CSV, or one of another video)


def frame_interval(times: npt.NDArray[np.float64]) -> float:
    """The median step between distinct sorted timestamps (OpenFace's frame interval)."""
    steps = np.diff(np.unique(times))
    return float(np.median(steps)) if steps.size else FALLBACK_INTERVAL


def nearest_row(sorted_times: npt.NDArray[np.float64], t: float, tolerance: float) -> int | None:
    """Position in ``sorted_times`` of the time nearest ``t``, None when none is within ``tolerance``."""
    if sorted_times.size == 0:
        return None
    i = int(np.searchsorted(sorted_times, t))
    candidates = [j for j in (i - 1, i) if 0 <= j < sorted_times.size]
    best = min(candidates, key=lambda j: abs(sorted_times[j] - t))
    return best if abs(sorted_times[best] - t) <= tolerance else None


class AUTrack:
    """One stream's OpenFace rows; :meth:`lookup` gives a decoded frame its AUs."""

    def __init__(self, rows: OpenFaceRows, *, match: MatchMode = "auto", label: str = "OpenFace CSV") -> None:
        if match == "auto":
            match = "frame" if rows.frames is not None else "time"
        self.match: Literal["frame", "time"] = match
        self.aus = rows.aus
        self.valid = rows.valid
        if match == "frame":
            if rows.frames is None:
                raise InputError(f"{label}: matching by frame needs a 'frame' column")
            # first row wins for a repeated frame number (several faces: the reader keeps face_id 0 only)
            self._by_frame: dict[int, int] = {}
            for row, number in enumerate(rows.frames.tolist()):
                self._by_frame.setdefault(int(number), row)
        else:
            if rows.timestamps is None:
                raise InputError(f"{label}: matching by time needs a 'timestamp' column")
            self._order = np.argsort(rows.timestamps, kind="stable")
            self._times = rows.timestamps[self._order]
            self.tolerance = 0.5 * frame_interval(rows.timestamps) + 1e-6  # 1 us: printed timestamps round
        log.debug("%s: %d rows, %d valid, matched by %s", label, len(rows.valid), int(rows.valid.sum()), match)

    def row_for(self, frame: Frame) -> int | None:
        if self.match == "frame":
            return self._by_frame.get(frame.index + 1)
        pos = nearest_row(self._times, frame.pts, self.tolerance)
        return None if pos is None else int(self._order[pos])

    def lookup(self, frame: Frame) -> tuple[npt.NDArray[np.float32] | None, RowStatus]:
        row = self.row_for(frame)
        if row is None:
            return None, RowStatus.UNMATCHED
        if not self.valid[row]:
            return None, RowStatus.INVALID
        return self.aus[row], RowStatus.OK


def load_rows(
    video: str,
    csv_path: Path | None,
    *,
    binary: str | None,
    timeout_s: float | None,
    min_confidence: float,
) -> OpenFaceRows:
    """A stream's rows: from ``csv_path``, else by running FeatureExtraction on ``video`` (a temporary output)."""
    if csv_path is not None:
        return read_openface_rows(csv_path, min_confidence=min_confidence)
    with tempfile.TemporaryDirectory(prefix="streameval-openface-") as tmp:
        written = run_feature_extraction(video, tmp, binary=binary, timeout_s=timeout_s)
        return read_openface_rows(written, min_confidence=min_confidence)


def is_local_file(spec: str) -> bool:
    return spec != "-" and "://" not in spec and os.path.isfile(spec)
