"""The ``reality`` analyser: I3D features of face-centred 16-frame clips of both streams.

Both streams are cropped with the *same* box, around the source stream's primary face (the de-identified
stream's when the source has no face; faces from the face stage), so the two clips show the same region and a
de-identifier that removes the face entirely is still measured where the face should be. The box is square
(``box_scale`` x the longer side of the face box), smoothed over time (exponential weight ``smoothing`` on the
previous box) so the clip does not jitter with the face box, and held for up to ``max_gap`` frames without a
face; after a longer gap the clip restarts. A clip pair is taken every ``clip_every`` seconds of stream time
(default 4 s: I3D costs ~1.1 s of CPU per clip), or every ``stride`` frames once 16 are collected (16 = back to
back); both clips run through I3D as one batch of 2. A partial clip at the end of the stream is discarded (I3D
needs exactly 16 frames).

Cropping is cheap and runs for every pair of a clip in the lane itself; the I3D batch is handed back as
:class:`~streameval.analysis.base.Deferred` work, which the pipeline runs in the background (see
:mod:`streameval.analysis.base`): a slow I3D never costs the frames of the clip being collected.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from streameval import imaging
from streameval.analysis.base import Deferred, Observation
from streameval.faces.types import faces_of
from streameval.frames import FramePair
from streameval.models.base import Image, VideoFeatureExtractor
from streameval.models.i3d import prepare_clip


@dataclass(frozen=True, slots=True)
class Box:
    """A square crop: centre and side in pixels."""

    cx: float
    cy: float
    side: float


def square_box(face_box: tuple[float, float, float, float], scale: float) -> Box:
    x0, y0, x1, y1 = face_box
    return Box((x0 + x1) / 2, (y0 + y1) / 2, scale * max(x1 - x0, y1 - y0))


def smooth(previous: Box | None, new: Box, weight: float) -> Box:
    """Exponential smoothing of centre and side; ``weight`` is the share kept from ``previous``."""
    if previous is None:
        return new
    w = weight
    return Box(
        w * previous.cx + (1 - w) * new.cx, w * previous.cy + (1 - w) * new.cy, w * previous.side + (1 - w) * new.side
    )


def crop_square(image: Image, box: Box) -> Image:
    """The box's pixels (integer grid, side >= 2); parts outside the image are black."""
    return imaging.crop_square(image, box.cx, box.cy, box.side)


class ClipCollector:
    """Collects face crops of both streams into clips (state only, no models).

    Clips are spaced either by ``stride`` frames between clip starts (16 = back to back, less = overlapping) or,
    with ``every_s``, by stream time: a clip starts at the first frame at least ``every_s`` seconds after the
    previous clip's start, and frames in between are not even cropped.
    """

    def __init__(
        self,
        length: int,
        stride: int,
        *,
        box_scale: float,
        smoothing: float,
        max_gap: int,
        every_s: float | None = None,
    ) -> None:
        self.length = length
        self.stride = stride
        self.every_s = every_s
        self.box_scale = box_scale
        self.smoothing = smoothing
        self.max_gap = max_gap
        self.box: Box | None = None
        self.gap = 0
        self.crops: deque[tuple[Image, Image, float]] = deque(maxlen=length)
        self.since_clip = 0  # frames added since the last clip was taken
        self.next_start = -math.inf  # with every_s: the earliest stream time of the next clip's first frame
        self.taken = 0
        self.restarts = 0  # clips abandoned because the face was gone too long

    def _follow(self, face: tuple[float, float, float, float] | None) -> Box | None:
        """Update the smoothed crop box with this frame's face; None when the clip in progress must restart."""
        if face is None:
            self.gap += 1
            if self.box is None or self.gap > self.max_gap:
                if self.crops:
                    self.restarts += 1
                self.crops.clear()
                self.box = None
                self.since_clip = 0
            return self.box
        self.gap = 0
        self.box = smooth(self.box, square_box(face, self.box_scale), self.smoothing)
        return self.box

    def wants(self, t: float) -> bool:
        """Whether a frame at stream time ``t`` can be part of a clip (time-spaced clips skip the frames between)."""
        return self.every_s is None or bool(self.crops) or t + 1e-9 >= self.next_start

    def add(
        self, source: Image, deid: Image, t: float, face: tuple[float, float, float, float] | None
    ) -> tuple[list[Image], list[Image], float] | None:
        """Add one frame pair; returns (source crops, deid crops, first frame time) when a clip is due."""
        if not self.wants(t):
            return None
        if self.every_s is not None and not self.crops:
            # a new time-spaced clip: the frames before it may have been skipped, so its box starts afresh
            self.box, self.gap = None, 0
        box = self._follow(face)
        if box is None:
            return None
        self.crops.append((crop_square(source, box), crop_square(deid, box), t))
        self.since_clip += 1
        if len(self.crops) < self.length or (self.every_s is None and self.taken and self.since_clip < self.stride):
            return None
        self.taken += 1
        self.since_clip = 0
        clip = [c[0] for c in self.crops], [c[1] for c in self.crops], self.crops[0][2]
        if self.every_s is not None:
            self.next_start = clip[2] + self.every_s
            self.crops.clear()
        return clip


class RealityAnalyser:
    """When a clip completes at a pair, deferred I3D work whose observation values are ``source_pool`` /
    ``deid_pool`` (1024,), ``source_logits`` / ``deid_logits`` (400,) float32 and ``clip_start``, at the time of
    the clip's last pair; nothing on other pairs."""

    name = "reality"
    needs_faces = True

    def __init__(
        self,
        extractor: VideoFeatureExtractor,
        *,
        stride: int = 16,
        every_s: float | None = None,
        box_scale: float = 1.3,
        smoothing: float = 0.8,
        max_gap: int = 4,
        rate: float | None = None,
    ) -> None:
        self.extractor = extractor
        self.collector = ClipCollector(
            extractor.clip_length,
            stride,
            every_s=every_s,
            box_scale=box_scale,
            smoothing=smoothing,
            max_gap=max_gap,
        )
        self.rate = rate

    def wants(self, t: float) -> bool:
        return self.collector.wants(t)

    def analyse(self, pair: FramePair) -> Deferred | None:
        faces = faces_of(pair)
        face = faces.source.primary or faces.deid.primary
        clip = self.collector.add(pair.source.image, pair.deid.image, pair.t, None if face is None else face.box)
        if clip is None:
            return None
        src_crops, deid_crops, start = clip
        t = pair.t

        def features() -> Observation:
            # runs in the background: only the crops (copies, owned by this job) and the extractor are touched
            size = self.extractor.image_size
            batch = np.stack([prepare_clip(src_crops, size), prepare_clip(deid_crops, size)])
            values: dict[str, object] = {"clip_start": start}
            for name, rows in self.extractor.features(batch).items():
                values[f"source_{name}"] = rows[0]
                values[f"deid_{name}"] = rows[1]
            return Observation(self.name, t, values)

        return Deferred(t, features)

    def close(self) -> list[Observation]:
        return []
