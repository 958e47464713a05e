"""Pairing: the streaming state machine against a brute-force greedy matching reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streameval.errors import UsageError
from streameval.frames import Frame
from streameval.pairing import Pairer, PairingConfig, Unpaired

IMG = np.zeros((2, 2, 3), np.uint8)


def frames(times: list[float]) -> list[Frame]:
    return [Frame(IMG, float(t), i, 0.0) for i, t in enumerate(times)]


def run(src: list[Frame], deid: list[Frame], config: PairingConfig, interleave: str = "alternate") -> Pairer:
    pairer = Pairer(config)
    events = []
    if interleave == "alternate":
        for i in range(max(len(src), len(deid))):
            if i < len(src):
                pairer.push("source", src[i])
            if i < len(deid):
                pairer.push("deid", deid[i])
            events += pairer.events()
    else:  # all of the source first: the de-identified stream arrives late
        for f in src:
            pairer.push("source", f)
        for f in deid:
            pairer.push("deid", f)
    pairer.end("source")
    pairer.end("deid")
    events += pairer.events()
    pairer.collected = events  # type: ignore[attr-defined]
    assert pairer.finished
    return pairer


def reference_pairs(ts: np.ndarray, td: np.ndarray, tol: float) -> set[tuple[int, int]]:
    """The pairing rule as a batch two-pointer walk over complete, sorted sequences.

    Independent of the streaming machinery (arrival order, waiting for look-ahead, end-of-stream handling): the
    streaming pairer must reach the same decisions whatever order the frames arrive in.
    """
    pairs: set[tuple[int, int]] = set()
    i = j = 0
    while i < len(ts) and j < len(td):
        gap = abs(ts[i] - td[j])
        if td[j] < ts[i] - tol or (j + 1 < len(td) and gap <= tol and abs(td[j + 1] - ts[i]) < gap):
            j += 1  # too old, or the next de-identified frame is closer to this source frame
        elif ts[i] < td[j] - tol or (i + 1 < len(ts) and abs(ts[i + 1] - td[j]) < gap):
            i += 1
        else:
            pairs.add((i, j))
            i += 1
            j += 1
    return pairs


def pairs_of(pairer: Pairer) -> set[tuple[int, int]]:
    return {(e.source.index, e.deid.index) for e in pairer.collected if not isinstance(e, Unpaired)}  # type: ignore[attr-defined]


def test_25_vs_30_fps_pairs_every_25fps_frame() -> None:
    src = frames([i / 25 for i in range(25)])
    deid = frames([j / 30 for j in range(30)])
    p = run(src, deid, PairingConfig(tolerance=0.02))
    # Worked by hand over one 0.2 s period: 5 source frames pair with deid 0, 1, 2, 4, 5; deid 3 (t=0.1) is left.
    assert p.counts.paired == 25
    assert p.counts.unpaired_source == 0
    assert p.counts.unpaired_deid == 5
    assert all(j % 6 != 3 for _, j in pairs_of(p))


def test_offset_shifts_the_deid_clock() -> None:
    src = frames([i / 25 for i in range(50)])
    deid = frames([0.5 + i / 25 for i in range(50)])  # the de-identifier runs 0.5 s behind
    p = run(src, deid, PairingConfig(offset=0.5, tolerance=0.01))
    assert p.counts.paired == 50 and p.counts.unpaired_source == 0 and p.counts.unpaired_deid == 0
    assert pairs_of(p) == {(i, i) for i in range(50)}
    # Without the offset every deid frame falls half-way between two source frames (0.5 s = 12.5 frames).
    q = run(src, deid, PairingConfig(offset=0.0, tolerance=0.01))
    assert q.counts.paired == 0 and q.counts.unpaired_source == 50 and q.counts.unpaired_deid == 50
    # An offset one frame too large (0.54 s) pairs source i-1 with deid i: 49 pairs, one frame left per side.
    r = run(src, deid, PairingConfig(offset=0.54, tolerance=0.01))
    assert r.counts.paired == 49 and r.counts.unpaired_source == 1 and r.counts.unpaired_deid == 1


def test_dropped_frames_and_early_end() -> None:
    times = [i / 25 for i in range(100)]
    dropped = {10, 11, 12, 50, 77}
    src = frames(times)
    deid = [f for f in frames(times) if f.index not in dropped][:80]  # also ends early, after frame 84
    p = run(src, deid, PairingConfig(tolerance=0.02))
    assert p.counts.paired == 80
    assert p.counts.unpaired_source == 20  # 4 dropped before index 84 + the 16 after the deid stream ended
    assert p.counts.unpaired_deid == 0


def test_index_mode_with_offset() -> None:
    src = frames([i / 25 for i in range(10)])
    deid = frames([i / 30 for i in range(12)])
    p = run(src, deid, PairingConfig(mode="index", index_offset=2))
    assert pairs_of(p) == {(i, i + 2) for i in range(10)}
    assert p.counts.unpaired_deid == 2 and p.counts.unpaired_source == 0


def test_stalled_stream_releases_frames_after_max_pending() -> None:
    pairer = Pairer(PairingConfig(max_pending=8))
    for f in frames([i / 25 for i in range(20)]):
        pairer.push("source", f)
    events = pairer.events()
    assert len(events) == 12 and all(isinstance(e, Unpaired) and e.side == "source" for e in events)
    assert pairer.counts.forced == 12
    assert pairer.pending("source") == 8


@pytest.mark.parametrize("kwargs", [{"mode": "frames"}, {"tolerance": -1.0}, {"offset": float("nan")}])
def test_bad_config(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        PairingConfig(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.floats(0, 10, allow_nan=False), max_size=40, unique=True),
    st.lists(st.floats(0, 10, allow_nan=False), max_size=40, unique=True),
    st.floats(0, 0.5),
    st.sampled_from(["alternate", "late"]),
)
def test_streaming_equals_batch_reference(s: list[float], d: list[float], tol: float, order: str) -> None:
    ts, td = np.sort(np.array(s)), np.sort(np.array(d))
    # Ties make "nearest" ambiguous; the reference and the stream may break them differently.
    gaps = np.abs(np.subtract.outer(ts, td)).ravel()
    if len(gaps) and np.min(np.abs(np.subtract.outer(gaps, gaps)) + np.eye(len(gaps))) < 1e-9:
        return
    p = run(frames(list(ts)), frames(list(td)), PairingConfig(tolerance=tol, max_pending=1000), order)
    expected = reference_pairs(ts, td, tol)
    assert pairs_of(p) == expected
    got = sorted(pairs_of(p))
    assert all(abs(ts[i] - td[j]) <= tol for i, j in got)  # within tolerance
    assert [j for _, j in got] == sorted(j for _, j in got)  # order kept on both sides, one-to-one
    assert len({j for _, j in got}) == len(got)
    assert p.counts.unpaired_source == len(ts) - len(expected)
    assert p.counts.unpaired_deid == len(td) - len(expected)
