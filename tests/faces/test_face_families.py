"""End to end on real video: the expression, identity and reality families, coverage and the paper block.

The whole-stream values are checked against numpy/scipy computed over the very observations the analysers
produced (recorded by wrapping the analysers), so the streaming statistics, windows and report plumbing are
tested against an independent batch computation.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.linalg
from scipy import stats

from streameval import evaluation
from streameval.analysis.base import Analyser, Deferred, Observation
from streameval.api import calculate_face_recognition_distances
from streameval.config import RunConfig
from streameval.errors import InputError
from streameval.families import FamilyFactory
from streameval.frames import FramePair
from streameval.metrics.expression import AU_KEYS
from tests.faces.conftest import decode, write_png

pytestmark = pytest.mark.slow
ALL = ["expression", "identity", "reality"]
Recorded = dict[str, list[Observation]]


class Recorder:
    """Passes an analyser through and keeps every observation it returns."""

    def __init__(self, inner: Analyser, into: list[Observation]) -> None:
        self.inner, self.seen = inner, into
        self.name, self.rate = inner.name, inner.rate
        self.needs_faces = getattr(inner, "needs_faces", False)
        self._lock = threading.Lock()

    def analyse(self, pair: FramePair) -> Observation | Deferred | None:
        obs = self.inner.analyse(pair)
        if isinstance(obs, Deferred):  # the reality lane's I3D job: record its observation when it has run
            job = obs

            def run() -> Observation | None:
                done = job.run()
                if done is not None:
                    with self._lock:
                        self.seen.append(done)
                return done

            return Deferred(job.t, run)
        if obs is not None:
            with self._lock:
                self.seen.append(obs)
        return obs

    def close(self) -> list[Observation]:
        out = self.inner.close()
        self.seen.extend(out)
        return out


def run(source: Path, deid: Path, metrics: list[str], **options: dict[str, Any]) -> tuple[dict[str, Any], Recorded]:
    recorded: Recorded = {}
    saved = dict(evaluation.FAMILIES)

    def wrap(name: str) -> FamilyFactory:
        def factory(config: RunConfig) -> tuple[list[Analyser], list[Any]]:
            analysers, family_metrics = saved[name](config)
            return [Recorder(a, recorded.setdefault(a.name, [])) for a in analysers], family_metrics

        return factory

    evaluation.FAMILIES.update({name: wrap(name) for name in metrics})
    try:
        config = RunConfig(
            source=str(source),
            deid=str(deid),
            metrics=metrics,
            window=2.0,
            hop=1.0,
            log=None,
            report=None,
            options={"models": {"device": "cpu"}, **options},
        ).validate()
        # never a hang: a run of these short clips must end well within the limit
        report = asyncio.run(asyncio.wait_for(evaluation.evaluate(config), timeout=240))
    finally:
        evaluation.FAMILIES.clear()
        evaluation.FAMILIES.update(saved)
    for seen in recorded.values():
        seen.sort(key=lambda o: o.t)
    return report, recorded


BACK_TO_BACK: dict[str, Any] = {"reality": {"stride": 16}}  # more clips than the default one per 2 s


@pytest.fixture(scope="module")
def self_run(zoo_ready: Path, pristine: Path) -> tuple[dict[str, Any], Recorded]:
    return run(pristine, pristine, ALL, **BACK_TO_BACK)


@pytest.fixture(scope="module")
def distorted_run(zoo_ready: Path, pristine: Path, distorted: Path) -> tuple[dict[str, Any], Recorded]:
    return run(pristine, distorted, ALL, **BACK_TO_BACK)


def test_source_against_itself(self_run: tuple[dict[str, Any], Recorded]) -> None:
    report, recorded = self_run
    totals = report["totals"]
    assert report["status"] == "complete"
    deid = totals["deid"]
    assert deid["recogniser"] == "dlib_resnet_v1" and deid["threshold"] == 0.6
    assert deid["leak_rate"] == 1.0 and deid["leak_rate_n"] == len(recorded["identity"]) >= 15
    assert deid["dist_src_mean"] == 0.0 and deid["swap_rate"] is None
    src_aus = np.stack([o.values["source_aus"] for o in recorded["expression"]])
    moving = src_aus.std(axis=0) > 0.05
    assert moving.sum() >= 8
    expr = totals["expression"]
    for key, moves in zip(AU_KEYS, moving, strict=True):
        if moves:
            assert expr[f"{key}_pcc"] == pytest.approx(1.0, abs=1e-9)
            assert expr[f"{key}_rmse"] == pytest.approx(0.0, abs=1e-9)
            assert expr[f"{key}_ccc"] == pytest.approx(1.0, abs=1e-9)
    assert totals["reality"]["fid"] == pytest.approx(0.0, abs=1e-6)
    assert totals["reality"]["clips"] == 7  # 120 frames, back-to-back 16-frame clips
    cov = totals["coverage"]
    assert (cov["frames"], cov["source_face_frames"], cov["deid_face_frames"]) == (120, 120, 120)
    # one subject followed through the clip: one track per stream, the detector run once a second
    assert (cov["source_tracks"], cov["deid_tracks"]) == (1, 1)
    # 120 frames at 29.97 fps span 0-3.97 s: scheduled detector runs at the first frames of seconds 0, 1, 2, 3
    assert cov["source_detector_runs"] == cov["deid_detector_runs"] == 4
    paper = report["paper"]
    assert paper["deid"]["A_mean"] == 0.0 and paper["deid"]["FID"] == pytest.approx(0.0, abs=1e-6)


def test_distortion_raises_fid(
    self_run: tuple[dict[str, Any], Recorded], distorted_run: tuple[dict[str, Any], Recorded]
) -> None:
    same, worse = self_run[0]["totals"]["reality"], distorted_run[0]["totals"]["reality"]
    assert worse["fid"] > same["fid"] + 1.0
    assert worse["fvd_logits"] > same["fvd_logits"] + 1.0
    # the windowed records carry values with low_n flags (a 2 s window holds ~3 clips per side)
    assert worse["fid_low_n"] is True


def _frechet(x: np.ndarray, y: np.ndarray) -> float:
    """The textbook formula with scipy's matrix square root (independent of streameval.stats)."""
    m1, m2 = x.mean(axis=0), y.mean(axis=0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def test_whole_stream_equals_batch(distorted_run: tuple[dict[str, Any], Recorded]) -> None:
    report, recorded = distorted_run
    totals, paper = report["totals"], report["paper"]
    # expression: pairs with a face on both streams
    faces = recorded["expression"]
    both = [o for o in faces if o.values["source_aus"] is not None and o.values["deid_aus"] is not None]
    x = np.stack([o.values["source_aus"] for o in both]).astype(np.float64)
    y = np.stack([o.values["deid_aus"] for o in both]).astype(np.float64)
    assert totals["expression"]["n"] == len(both) < len(faces)
    for j, key in enumerate(AU_KEYS):
        rmse = float(np.sqrt(np.mean((x[:, j] - y[:, j]) ** 2)))
        assert totals["expression"][f"{key}_rmse"] == pytest.approx(rmse, rel=1e-9)
        if x[:, j].std() > 1e-6 and y[:, j].std() > 1e-6:
            r = float(stats.pearsonr(x[:, j], y[:, j])[0])
            assert totals["expression"][f"{key}_pcc"] == pytest.approx(r, rel=1e-7, abs=1e-9)
            assert paper["deid"][key] == [pytest.approx(r, rel=1e-7, abs=1e-9), pytest.approx(rmse, rel=1e-9)]
    # identity: distances of the sampled pairs
    ident = recorded["identity"]
    d_a = np.array(
        [o.values["distances"]["dlib"]["deid_a"] for o in ident if o.values["distances"]["dlib"]["deid_a"] is not None]
    )
    assert len(d_a) == totals["deid"]["dist_a_n"] > 0
    assert paper["deid"]["A_mean"] == pytest.approx(d_a.mean(), rel=1e-9)
    assert paper["deid"]["A_std"] == pytest.approx(d_a.std(), rel=1e-7)  # population std, as the paper
    assert totals["deid"]["leak_rate"] == pytest.approx(np.mean(d_a <= 0.6))
    # reality: Fréchet distance of the clip features
    clips = [o for o in recorded["reality"] if "source_pool" in o.values]
    for feature, key in (("pool", "fid"), ("logits", "fvd_logits")):
        fx = np.stack([o.values[f"source_{feature}"] for o in clips]).astype(np.float64)
        fy = np.stack([o.values[f"deid_{feature}"] for o in clips]).astype(np.float64)
        assert totals["reality"][key] == pytest.approx(_frechet(fx, fy), rel=1e-5)
    assert paper["deid"]["FID"] == totals["reality"]["fid"]
    # coverage: counted by the face stage, whose primary faces are what the expression lane turned into AUs
    cov = totals["coverage"]
    assert cov["frames"] == len(faces) == 120
    assert cov["deid_face_frames"] == sum(o.values["deid_aus"] is not None for o in faces)
    assert cov["source_face_frames"] == 120


def test_face_leaves_and_returns(zoo_ready: Path, leaves_and_returns: Path) -> None:
    report, recorded = run(leaves_and_returns, leaves_and_returns, ALL, **BACK_TO_BACK)
    assert report["status"] == "complete"
    cov = report["totals"]["coverage"]
    assert (cov["frames"], cov["source_face_frames"], cov["deid_face_frames"]) == (90, 60, 60)
    assert cov["source"] == pytest.approx(60 / 90)
    assert cov["source_tracks"] == 2  # the face that returns is a new track
    # faces on frames 0-29 and 60-89. Clips end at frame 15, at 31 (frames 30 and 31 bridged with the held box,
    # max_gap 4), then the 30-frame gap restarts the clip, and the next ends at 60 + 15
    clips = [o for o in recorded["reality"] if "source_pool" in o.values]
    assert [round(o.t * 30) for o in clips] == [15, 31, 75]
    assert report["totals"]["reality"]["clips"] == 3
    # identity is sampled: its face counts (the stage's) follow the sampled times
    ident = recorded["identity"]
    expected = [0 if 30 <= round(o.t * 30) < 60 else 1 for o in ident]
    assert [o.values["source_faces"] for o in ident] == [o.values["deid_faces"] for o in ident] == expected
    # windows with no face at all report undefined values with reasons, never a silent number
    assert report["totals"]["expression"]["pairs_without_face"] == {"source": 30, "deid": 30}


def test_video_without_faces(zoo_ready: Path, no_face: Path) -> None:
    report, recorded = run(no_face, no_face, ALL)
    totals = report["totals"]
    assert report["status"] == "complete"
    assert (totals["coverage"]["frames"], totals["coverage"]["source_face_frames"]) == (24, 0)
    assert totals["coverage"]["source"] == 0.0
    assert totals["expression"]["pcc_mean"] is None and "pcc_mean" in totals["expression"]["null_reasons"]
    assert totals["deid"]["leak_rate"] is None and totals["deid"]["analysed_pairs"] == len(recorded["identity"])
    assert totals["reality"]["fid"] is None and totals["reality"]["clips"] == 0
    assert (
        "fewer than 2" in totals["reality"]["null_reasons"]["fid"]
        or "at least 2" in totals["reality"]["null_reasons"]["fid"]
    )
    assert report["paper"]["deid"]["FID"] is None and report["paper"]["deid"]["A_mean"] is None


@pytest.fixture(scope="module")
def reference_images(tmp_path_factory: pytest.TempPathFactory, pristine: Path) -> Iterator[dict[str, Path]]:
    from streameval.datasets import astronaut

    folder = tmp_path_factory.mktemp("refs")
    frame = decode(pristine, 1)[0]
    paths = {
        "astronaut": write_png(folder / "astronaut.png", astronaut()),
        "carphone": write_png(folder / "carphone.png", frame),
        "blank": write_png(folder / "blank.png", np.full((64, 64, 3), 128, np.uint8)),
    }
    yield paths


def test_references_a_and_b(zoo_ready: Path, pristine: Path, reference_images: dict[str, Path]) -> None:
    # A = the astronaut (not the person in the video), B = the carphone subject: the stream looks like B
    out = calculate_face_recognition_distances(
        pristine,
        pristine,
        ref_a=reference_images["astronaut"],
        ref_b=reference_images["carphone"],
        rate=2.0,
        options={"models": {"device": "cpu"}},
    )
    for side in ("source", "deid"):
        assert out[side]["A_mean"] > 0.75 and out[side]["B_mean"] < 0.5
    assert out["deid_totals"]["leak_rate"] == 0.0 and out["deid_totals"]["swap_rate"] == 1.0
    assert out["deid_totals"]["a_reference"].startswith("ref_a: ")


def test_reference_without_a_face_is_an_error(
    zoo_ready: Path, pristine: Path, reference_images: dict[str, Path]
) -> None:
    with pytest.raises(InputError, match="no face found in reference image"):
        calculate_face_recognition_distances(pristine, pristine, ref_a=reference_images["blank"])
