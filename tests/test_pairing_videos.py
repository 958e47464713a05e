"""Pairing end to end on generated videos: every frame shows its own index, so each pair can be checked.

The runs go through the real sources (PyAV decoding, rebased timestamps) and the pipeline; a test analyser reads
the index drawn in both frames of every pair.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streameval import evaluation
from streameval.analysis.base import Observation
from streameval.config import load_config
from streameval.frames import FramePair
from streameval.metrics.base import Metric
from tests.videos import decode_index, write_shown


class IndexAnalyser:
    name = "index"
    rate = None

    def __init__(self, seen: list[tuple[int, int]]) -> None:
        self.seen = seen

    def analyse(self, pair: FramePair) -> Observation:
        self.seen.append((decode_index(pair.source.image), decode_index(pair.deid.image)))
        return Observation(self.name, pair.t, {})

    def close(self) -> list[Observation]:
        return []


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    pairs: list[tuple[int, int]] = []

    def factory(config: Any) -> tuple[list[Any], list[Metric]]:
        return [IndexAnalyser(pairs)], []

    monkeypatch.setitem(evaluation.FAMILIES, "index", factory)
    yield pairs


def replay(tmp_path: Path, source: Path, deid: Path, **settings: Any) -> dict[str, Any]:
    config = load_config(
        None,
        {"source": str(source), "deid": str(deid), "metrics": ["index"], "log": None,
         "report": str(tmp_path / "report.json"), **settings},
    )  # fmt: skip
    return asyncio.run(evaluation.evaluate(config))


def counts(report: dict[str, Any]) -> tuple[int, int, int]:
    p = report["pairing"]
    return p["paired"], p["unpaired_source"], p["unpaired_deid"]


def test_25_vs_30_fps(tmp_path: Path, seen: list[tuple[int, int]]) -> None:
    # Both show the same 2 s scene: the 25 fps frame i at i/25, the 30 fps frame j at j/30, content = 25 fps index
    # of the nearest instant (the de-identifier re-timed the video).
    src = write_shown(tmp_path / "s.mp4", [(i, i / 25) for i in range(50)], fps=25)
    deid = write_shown(tmp_path / "d.mp4", [(round(j * 25 / 30), j / 30) for j in range(60)], fps=30)
    report = replay(tmp_path, src, deid)
    assert counts(report) == (50, 0, 10)  # every 25 fps frame pairs; one 30 fps frame in 6 is left over
    assert all(s == d for s, d in seen)  # and each pairs with the frame showing the same instant


def test_offset_of_the_deid_stream(tmp_path: Path, seen: list[tuple[int, int]]) -> None:
    # The de-identified recording started 12 frames (0.48 s) late: its frame k shows the original's frame k + 12.
    src = write_shown(tmp_path / "s.mp4", [(i, i / 25) for i in range(50)])
    deid = write_shown(tmp_path / "d.mp4", [(k + 12, k / 25) for k in range(50)])
    report = replay(tmp_path, src, deid, offset=-0.48)
    assert counts(report) == (38, 12, 12)
    assert seen == [(i, i) for i in range(12, 50)]
    seen.clear()
    report = replay(tmp_path, src, deid)  # without the offset: every pair shows different content
    assert counts(report) == (50, 0, 0) and all(d == s + 12 for s, d in seen)


def test_dropped_frames_on_both_sides(tmp_path: Path, seen: list[tuple[int, int]]) -> None:
    src_drop, deid_drop = {20, 21, 35}, {5, 6, 7, 40}
    src = write_shown(tmp_path / "s.mp4", [(i, i / 25) for i in range(50) if i not in src_drop])
    deid = write_shown(tmp_path / "d.mp4", [(i, i / 25) for i in range(50) if i not in deid_drop])
    report = replay(tmp_path, src, deid)
    assert counts(report) == (50 - 7, 4, 3)  # a frame dropped on one side leaves its partner unpaired
    assert seen == [(i, i) for i in range(50) if i not in src_drop | deid_drop]


def test_one_stream_ends_early(tmp_path: Path, seen: list[tuple[int, int]]) -> None:
    src = write_shown(tmp_path / "s.mp4", [(i, i / 25) for i in range(50)])
    deid = write_shown(tmp_path / "d.mp4", [(i, i / 25) for i in range(30)])
    report = replay(tmp_path, src, deid)
    assert counts(report) == (30, 20, 0)
    assert seen == [(i, i) for i in range(30)]
    assert report["status"] == "complete"


def test_index_pairing_ignores_timestamps(tmp_path: Path, seen: list[tuple[int, int]]) -> None:
    src = write_shown(tmp_path / "s.mp4", [(i, i / 25) for i in range(40)], fps=25)
    deid = write_shown(tmp_path / "d.mp4", [(i, i / 10) for i in range(45)], fps=10)  # same frames, slow clock
    report = replay(tmp_path, src, deid, pair="index")
    assert counts(report) == (40, 0, 5)
    assert seen == [(i, i) for i in range(40)]
