"""Privacy measured like an attacker: identity at the source face's location, next to the detected face.

The unit tests feed the deid family synthetic observations and compare with numpy. The end-to-end tests run the
face stage and the identity analyser on the bundled example's blur and mask (where the detector loses the
de-identified face) and check the at-source embeddings against dlib itself: its shape predictor on the source
frame, its ``compute_face_descriptor`` on the de-identified frame at those landmarks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streameval.analysis.base import Observation
from streameval.analysis.identity import IdentityAnalyser, Recogniser
from streameval.faces.stage import FaceStage
from streameval.frames import Frame, FramePair
from streameval.metrics.deid import DeidMetric, RecogniserInfo
from streameval.models.loaders import load_detector, load_dlib_onnx_embedder, load_landmarker
from tests.faces.conftest import decode

RNG = np.random.default_rng(12)
DLIB = RecogniserInfo("dlib", "dlib_resnet_v1", "euclidean", 0.6, "paired source face", None)


def observation(t: float, deid_face: bool, d: dict[str, float | None], *, source_face: bool = True) -> Observation:
    return Observation(
        "identity", t, {"source_faces": int(source_face), "deid_faces": int(deid_face), "distances": {"dlib": d}}
    )


def test_at_source_block_and_missing_share_match_numpy() -> None:
    metric = DeidMetric([DLIB], window=2.0)
    n = 50
    detected = RNG.uniform(0.3, 0.9, n)
    at_source = RNG.uniform(0.3, 0.9, n)
    has_source = np.arange(n) % 10 != 3
    has_deid = has_source & (np.arange(n) % 3 != 0)
    for i in range(n):
        d = {
            "deid_a": float(detected[i]) if has_deid[i] else None,
            "deid_src": float(detected[i]) if has_deid[i] else None,
            "source_a": 0.0 if has_source[i] else None,
            "at_source_a": float(at_source[i]) if has_source[i] else None,
            "at_source_src": float(at_source[i]) if has_source[i] else None,
        }
        metric.update(observation(i * 0.1, bool(has_deid[i]), d, source_face=bool(has_source[i])))
    total = metric.total_values()
    # the detected path: only pairs with a de-identified face
    assert total["leak_rate"] == pytest.approx(np.mean(detected[has_deid] <= 0.6))
    assert total["leak_rate_n"] == has_deid.sum()
    # the attacker's path: every pair with a source face
    at = total["dlib"]["at_source"]
    assert at["leak_rate"] == pytest.approx(np.mean(at_source[has_source] <= 0.6))
    assert at["leak_rate_n"] == at["dist_a_n"] == has_source.sum()
    assert at["dist_a_mean"] == pytest.approx(at_source[has_source].mean())
    assert at["dist_a_std"] == pytest.approx(at_source[has_source].std())
    assert at["swap_rate"] is None and at["null_reasons"]["swap_rate"] == "no ref_b configured"
    assert sum(at["histograms"]["dist_a"]["counts"]) == has_source.sum()
    # missing faces: their own share, over pairs with a source face; never folded into the leak rate
    assert total["deid_face_missing_rate"] == pytest.approx(np.mean(~has_deid[has_source]))
    assert total["deid_face_missing_rate_n"] == has_source.sum()
    # the window: the last 2 s
    win = (np.arange(n) * 0.1 > (n - 1) * 0.1 - 2.0 + 1e-9) & has_source
    window = metric.window_values()
    assert window["at_source"]["dist_a_mean"] == pytest.approx(at_source[win].mean())
    assert window["deid_face_missing_rate"] == pytest.approx(np.mean(~has_deid[win]))
    assert "histograms" not in window["at_source"]


def test_missing_share_is_null_without_source_faces() -> None:
    metric = DeidMetric([DLIB], window=2.0)
    metric.update(observation(0.0, False, {}, source_face=False))
    total = metric.total_values()
    assert total["deid_face_missing_rate"] is None
    assert total["null_reasons"]["deid_face_missing_rate"] == "no pair with a source face"


def analyse_pairs(models_dir: Path, source: Path, deid: Path, every: int = 6) -> list[tuple[FramePair, Observation]]:
    """The face stage over every frame (tracking needs them), the identity analyser on every ``every``-th."""
    src, dei = decode(source), decode(deid)
    stage = FaceStage(load_detector(models_dir, device="cpu"), load_landmarker(models_dir, device="cpu"))
    embedder = load_dlib_onnx_embedder(models_dir, device="cpu")
    analyser = IdentityAnalyser([Recogniser("dlib", embedder, 0.6)])
    out = []
    try:
        for i, (a, b) in enumerate(zip(src, dei, strict=True)):
            t = i / 30
            pair, _ = stage.process(FramePair(Frame(a, t, i, 0.0), Frame(b, t, i, 0.0), t))
            if i % every == 0:
                out.append((pair, analyser.analyse(pair)))
    finally:
        stage.close()
    return out


def dlib_at_source(models_dir: Path, pair: FramePair) -> np.ndarray:
    """dlib itself: its five landmarks on the source frame, its descriptor of the de-identified frame there."""
    import dlib

    from streameval.models.zoo import DLIB_RESNET, model_file

    resnet = dlib.face_recognition_model_v1(str(model_file(DLIB_RESNET.name, DLIB_RESNET.files[0], models_dir)))
    predictor = dlib.shape_predictor(str(model_file(DLIB_RESNET.name, DLIB_RESNET.files[1], models_dir)))
    assert pair.faces is not None and pair.faces.source.primary is not None
    x0, y0, x1, y1 = pair.faces.source.primary.box
    shape = predictor(
        np.ascontiguousarray(pair.source.image), dlib.rectangle(round(x0), round(y0), round(x1), round(y1))
    )
    return np.asarray(resnet.compute_face_descriptor(np.ascontiguousarray(pair.deid.image), shape), np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["blur", "pixelate", "mask"])
def test_at_source_measures_every_pair_where_the_detector_misses(
    models_dir: Path, examples: dict[str, Path], method: str
) -> None:
    analysed = analyse_pairs(models_dir, examples["original"], examples[method])
    observations = [obs for _, obs in analysed]
    missed = [(pair, obs) for pair, obs in analysed if obs.values["deid_faces"] == 0]
    assert missed, f"the {method} should hide the face from the detector on some pairs"
    for obs in observations:
        assert obs.values["source_faces"] == 1
        d: dict[str, Any] = obs.values["distances"]["dlib"]
        assert d["at_source_a"] is not None and d["at_source_src"] == d["at_source_a"]  # A = the source face
        assert (d["deid_a"] is None) == (obs.values["deid_faces"] == 0)
    # the at-source descriptor is dlib's own of the de-identified frame at the source's landmarks
    checked = missed[:2] + [x for x in analysed if x[1].values["deid_faces"] > 0][:1]
    for pair, obs in checked:
        ours = obs.values["embeddings"]["dlib"]["at_source"]
        theirs = dlib_at_source(models_dir, pair)
        # measured up to 1.9e-4 (blur): OpenCV's float32 bilinear step moves a few chip values by one grey level
        assert float(np.abs(ours - theirs).max()) <= 5e-4
        source = obs.values["embeddings"]["dlib"]["source"]
        assert obs.values["distances"]["dlib"]["at_source_a"] == pytest.approx(
            float(np.linalg.norm(theirs.astype(np.float64) - source)), abs=1e-3
        )
    metric = DeidMetric([DLIB], window=2.0)
    for obs in observations:
        metric.update(obs)
    total = metric.total_values()
    assert total["at_source"]["dist_a_n"] == len(observations)
    assert total["leak_rate_n"] == len(observations) - len(missed)
    assert total["deid_face_missing_rate"] == pytest.approx(len(missed) / len(observations))


def test_summary_gives_every_rate_its_counts() -> None:
    from streameval.cli import summary

    deid = {
        "recogniser": "dlib", "threshold": 0.6, "leak_rate": 0.0, "leak_rate_n": 23, "swap_rate": None,
        "dist_a_mean": 0.8, "dist_b_mean": None, "deid_face_missing_rate": 76 / 99, "deid_face_missing_rate_n": 99,
        "at_source": {"leak_rate": 5 / 99, "leak_rate_n": 99},
    }  # fmt: skip
    lines = summary({"status": "complete", "pairing": {}, "totals": {"deid": deid}}).splitlines()
    assert lines[1].startswith("identity (dlib, threshold 0.6): leak rate 0.000 (0/23 analysed), swap rate n/a")
    assert lines[2] == (
        "  at the source face's location: leak rate 0.051 (5/99 pairs); 76 of 99 pairs without a detected "
        "de-identified face"
    )
    deid |= {"leak_any": 0.25, "leak_any_n": 20, "leak_any_at_source": 0.1, "leak_any_at_source_n": 90,
             "leak_events_n": 2, "leak_events_s": 1.25}  # fmt: skip
    lines = summary({"status": "complete", "pairing": {}, "totals": {"deid": deid}}).splitlines()
    assert lines[3] == (
        "  any recogniser: leak rate 0.250 (5/20 analysed), at the source location 0.100 (9/90 pairs); "
        "leak events: 2 (1.2 s)"
    )
    # a second recogniser gets its own line, between the first one's and the worst case over both
    deid["faceres"] = {
        "recogniser": "faceres_hse_mobilenet", "threshold": 0.35, "leak_rate": 0.25, "leak_rate_n": 20,
        "swap_rate": None, "dist_a_mean": 0.5, "at_source": {"leak_rate": 0.1, "leak_rate_n": 90},
    }  # fmt: skip
    deid["dlib"] = {"recogniser": "dlib", "threshold": 0.6}  # the first recogniser's own block: not repeated
    lines = summary({"status": "complete", "pairing": {}, "totals": {"deid": deid}}).splitlines()
    assert lines[3] == (
        "  faceres_hse_mobilenet (threshold 0.35): leak rate 0.250 (5/20 analysed), at the source location 0.100 "
        "(9/90 pairs), swap rate n/a, distance to A 0.500"
    )
    assert lines[4].startswith("  any recogniser:") and len(lines) == 5


ARC = RecogniserInfo("insightface", "arcface_w600k_r50", "cosine", 0.4, "paired source face", None)


def test_leak_any_is_the_worst_case_over_recognisers() -> None:
    metric = DeidMetric([DLIB, ARC], window=100.0)
    n = 60
    dlib_d = RNG.uniform(0.4, 0.8, n)
    arc_d = RNG.uniform(0.2, 0.6, n)
    dlib_has = np.arange(n) % 4 != 0
    arc_has = np.arange(n) % 6 != 0
    for i in range(n):
        distances = {
            "dlib": {"deid_a": float(dlib_d[i]) if dlib_has[i] else None, "at_source_a": float(dlib_d[i])},
            "insightface": {"deid_a": float(arc_d[i]) if arc_has[i] else None, "at_source_a": float(arc_d[i])},
        }
        metric.update(Observation("identity", i * 0.1, {"source_faces": 1, "deid_faces": 1, "distances": distances}))
    total = metric.total_values()
    either = dlib_has | arc_has
    verdict = (dlib_has & (dlib_d <= 0.6)) | (arc_has & (arc_d <= 0.4))
    assert total["leak_any"] == pytest.approx(verdict[either].mean())
    assert total["leak_any_n"] == either.sum()
    assert total["leak_any_at_source"] == pytest.approx(np.mean((dlib_d <= 0.6) | (arc_d <= 0.4)))
    assert total["leak_any_at_source_n"] == n
    # the worst case is at least each recogniser's own rate
    assert total["leak_any_at_source"] >= max(
        total["dlib"]["at_source"]["leak_rate"], total["insightface"]["at_source"]["leak_rate"]
    )


FACERES = RecogniserInfo("faceres", "faceres_hse_mobilenet", "cosine", 0.35, "paired source face", None)


def test_window_records_list_every_pair_once_with_every_recognisers_distances() -> None:
    """Per-pair distances of all recognisers: each analysed pair appears in exactly one window record (the first
    cut after it), under its record names; the verdicts at each recogniser's threshold can be redone from them."""
    from streameval.windows import WindowConfig, Windower

    metric = DeidMetric([DLIB, ARC, FACERES], window=2.0)
    windower = Windower([metric], WindowConfig(window=2.0, hop=1.0))
    sent: dict[float, dict[str, dict[str, float | None]]] = {}
    records = []
    for i in range(25):
        t = round(i * 0.2, 3)
        distances = {
            key: {
                "deid_a": None if i % 5 == 0 else float(RNG.uniform(0, 1)),
                "deid_b": None,
                "deid_src": float(RNG.uniform(0, 1)),
                "source_a": 0.0,
                "source_b": None,
                "at_source_a": float(RNG.uniform(0, 1)),
                "at_source_b": None,
                "at_source_src": float(RNG.uniform(0, 1)),
            }
            for key in ("dlib", "insightface", "faceres")
        }
        sent[t] = distances
        windower.add(Observation("identity", t, {"source_faces": 1, "deid_faces": 1, "distances": distances}))
        records += windower.advance(t)
    records += windower.finish()
    listed = [p for r in records for p in r["deid"]["pairs"]]
    assert [p["t"] for p in listed] == sorted(sent)  # every pair once, in time order
    for p in listed:
        for key in ("dlib", "insightface", "faceres"):
            d = sent[p["t"]][key]
            assert p[key]["dist_a"] == d["deid_a"] and p[key]["at_source_dist_a"] == d["at_source_a"]
            assert p[key]["dist_src"] == d["deid_src"] and p[key]["source_dist_a"] == 0.0
            assert p[key]["dist_b"] is None
    # each record names each recogniser's threshold next to its rates
    assert {k: records[0]["deid"][k]["threshold"] for k in ("dlib", "insightface", "faceres")} == {
        "dlib": 0.6,
        "insightface": 0.4,
        "faceres": 0.35,
    }


def embedding_observation(t: float, rec: str, deid: np.ndarray | None, a: np.ndarray) -> Observation:
    d = {"deid_a": None, "at_source_a": None}
    emb = {"deid": deid, "at_source": deid, "a": a, "source": a}
    return Observation(
        "identity",
        t,
        {"source_faces": 1, "deid_faces": int(deid is not None), "distances": {rec: d}, "embeddings": {rec: emb}},
    )


def test_track_attacker_cosine_uses_the_normalised_mean() -> None:
    # Hand-computed: two frames 60 degrees either side of A. Each frame alone: 1 - cos 60 = 0.5, not verified
    # at 0.4; their normalised mean points exactly at A: distance 0, verified. A plain mean of these vectors
    # (norms 5 and 0.1) would point almost along the first frame: distance 1 - cos 59.0 deg = 0.485.
    metric = DeidMetric([ARC], window=100.0)
    a = np.array([1.0, 0.0])
    c, s = 0.5, np.sqrt(3) / 2
    frames = [5 * np.array([c, s]), 0.1 * np.array([c, -s])]
    for i, x in enumerate(frames):
        obs = embedding_observation(i * 0.2, "insightface", x, a)
        obs.values["distances"]["insightface"]["deid_a"] = 1 - float(x @ a) / float(np.linalg.norm(x))
        metric.update(obs)
    total = metric.total_values()["insightface"]
    assert total["leak_rate"] == 0.0 and total["dist_a_mean"] == pytest.approx(0.5)
    assert total["track_dist_a"] == pytest.approx(0.0, abs=1e-12)
    assert total["track_leak"] is True and total["track_n"] == 2
    assert total["at_source"]["track_dist_a"] == pytest.approx(0.0, abs=1e-12)
    plain = frames[0] + frames[1]
    assert 1 - plain @ a / np.linalg.norm(plain) == pytest.approx(0.485, abs=1e-3)


def test_track_attacker_euclidean_matches_numpy_over_the_window() -> None:
    metric = DeidMetric([DLIB], window=2.0)
    n, k = 40, 128
    deid = RNG.normal(0, 0.05, (n, k))
    a = RNG.normal(0, 0.05, (n, k))
    has = np.arange(n) % 7 != 2
    for i in range(n):
        metric.update(embedding_observation(i * 0.1, "dlib", deid[i] if has[i] else None, a[i]))
    t = np.arange(n) * 0.1
    win = has & (t > t[-1] - 2.0 + 1e-9)
    window, total = metric.window_values(), metric.total_values()
    expected_total = np.linalg.norm(deid[has].mean(axis=0) - a[has].mean(axis=0))
    expected_window = np.linalg.norm(deid[win].mean(axis=0) - a[win].mean(axis=0))
    assert total["track_dist_a"] == pytest.approx(expected_total, rel=1e-9)
    assert total["track_n"] == has.sum()
    assert window["track_dist_a"] == pytest.approx(expected_window, rel=1e-9)
    assert window["track_n"] == win.sum()
    assert window["track_leak"] is bool(expected_window <= 0.6)
    # the at-source path has the same embeddings here (the helper gives both)
    assert window["at_source"]["track_dist_a"] == pytest.approx(expected_window, rel=1e-9)


def test_track_attacker_is_null_without_embeddings() -> None:
    metric = DeidMetric([DLIB], window=2.0)
    metric.update(observation(0.0, False, {}))
    total = metric.total_values()
    assert total["track_dist_a"] is None and total["track_n"] == 0
    assert total["null_reasons"]["track_dist_a"] == "no embeddings"


def test_leak_events_are_the_runs_of_verified_pairs() -> None:
    metric = DeidMetric([DLIB, ARC], window=1.0)
    # per pair (t = i * 0.2): dlib's distance to A on the detected path, ArcFace's at the source location
    dlib_a = [0.9, 0.5, 0.55, 0.9, 0.9, None, 0.9, 0.3, 0.9, 0.9]
    arc_at = [0.9, 0.9, 0.3, 0.9, 0.9, 0.9, 0.2, 0.9, 0.9, 0.1]
    for i, (x, y) in enumerate(zip(dlib_a, arc_at, strict=True)):
        distances = {"dlib": {"deid_a": x}, "insightface": {"at_source_a": y}}
        metric.update(Observation("identity", i * 0.2, {"source_faces": 1, "deid_faces": 1, "distances": distances}))
        metric.expire(i * 0.2)
    total = metric.total_values()
    events = total["leak_events"]
    # runs: pairs 1-2 (dlib 0.5, 0.55; ArcFace 0.3 at pair 2, margin 0.75 beats dlib's 0.83), 6-7, 9 (open)
    assert [(e["start"], e["end"], e["pairs"], e["open"]) for e in events] == [
        (pytest.approx(0.2), pytest.approx(0.4), 2, False),
        (pytest.approx(1.2), pytest.approx(1.4), 2, False),
        (pytest.approx(1.8), pytest.approx(1.8), 1, True),
    ]
    assert events[0]["strongest"] == {
        "recogniser": "insightface", "path": "at_source", "distance": 0.3, "threshold": 0.4, "t": pytest.approx(0.4)
    }  # fmt: skip
    assert events[0]["duration_s"] == pytest.approx(0.2)
    # pair 6: ArcFace 0.2 (margin 0.5); pair 7: dlib 0.3 (margin 0.5 too): the first strongest stays
    assert events[1]["strongest"]["recogniser"] == "insightface"
    assert total["leak_events_n"] == 3 and total["leak_events_s"] == pytest.approx(0.4)
    # the window (0.8, 1.8]: the second event and the open third; the open one is alert-able by its pairs
    window = metric.window_values()
    assert [e["start"] for e in window["leak_events"]] == [pytest.approx(1.2), pytest.approx(1.8)]
    assert window["leak_events_n"] == 2 and window["leak_open_pairs"] == 1


def test_leak_event_alert_raises_and_clears() -> None:
    from streameval.alerts.engine import AlertEngine
    from streameval.alerts.rules import parse_rules

    engine = AlertEngine(parse_rules([{"name": "leak", "when": "deid.leak_open_pairs >= 2"}]))
    metric = DeidMetric([DLIB], window=1.0)
    fired = []
    for i, x in enumerate([0.9, 0.3, 0.3, 0.3, 0.9, 0.9]):
        metric.update(observation(i * 0.5, True, {"deid_a": x}))
        metric.expire(i * 0.5)
        record = {"type": "metrics", "window": {"end": i * 0.5}, "deid": metric.window_values()}
        fired += [(e["event"], e["time"]) for e in engine.evaluate(record)]
    assert fired == [("raise", 1.0), ("clear", 2.0)]


@pytest.mark.slow
def test_a_planted_unaltered_segment_is_one_leak_event(
    models_dir: Path, examples: dict[str, Path], tmp_path: Path
) -> None:
    from tests.faces.conftest import write_video

    original, masked = decode(examples["original"]), decode(examples["mask"])
    planted = masked[:45] + original[45:75] + masked[75:]  # frames 45..74: t = 1.5 .. 2.467 s unaltered
    deid = write_video(tmp_path / "planted.mp4", planted)
    analysed = analyse_pairs(models_dir, examples["original"], deid, every=3)
    metric = DeidMetric([DLIB], window=2.0)
    for _, obs in analysed:
        metric.update(obs)
    total = metric.total_values()
    assert total["leak_events_n"] == 1, total["leak_events"]
    (event,) = total["leak_events"]
    # the analysed pairs (every third frame) inside the segment: frames 45, 48, ..., 72
    assert event["start"] == pytest.approx(45 / 30) and event["end"] == pytest.approx(72 / 30)
    assert event["pairs"] == 10 and not event["open"]
    assert event["strongest"]["distance"] < 0.1  # the unaltered face against itself


def test_report_page_lists_the_leak_events() -> None:
    from streameval.reporting.html import render
    from streameval.reporting.inputs import RunRecords

    metric = DeidMetric([DLIB], window=2.0)
    for i, x in enumerate([0.9, 0.31, 0.2, 0.9, 0.4]):
        metric.update(observation(i * 0.5, True, {"deid_a": x}))
    page, _ = render(RunRecords({"status": "complete", "totals": {"deid": metric.total_values()}}))
    incidents = page.split("<h2>Privacy incidents</h2>")[1].split("<h2>")[0]
    assert "2 leak events" in incidents
    assert incidents.count("<tr>") == 3  # header and two events
    assert "open" in incidents and "detected" in incidents
    empty, _ = render(RunRecords({"status": "complete", "totals": {"deid": DeidMetric([DLIB], 2.0).total_values()}}))
    assert "No leak event" in empty


def test_prometheus_exports_the_attacker_path_without_taking_it_for_a_recogniser() -> None:
    from streameval.sinks.prometheus import families_from_metrics

    metric = DeidMetric([DLIB], window=2.0)
    metric.update(observation(0.0, False, {"deid_a": None, "at_source_a": 0.3}))
    families = {f.name: f.samples for f in families_from_metrics({"type": "metrics", "deid": metric.window_values()})}
    assert families["streameval_leak_rate_at_source_ratio"] == (({"recogniser": "dlib"}, 1.0),)
    assert families["streameval_deid_face_missing_ratio"] == (({}, 1.0),)
    assert families["streameval_leak_open_pairs"] == (({}, 1),)
    assert "streameval_leak_rate_ratio" not in families  # the detected path measured nothing: no NaN, no fake 0


class _FakeRealigner:
    """Records the landmarks it is asked to cut at; the 'embedding' is the mean of the image there."""

    name, metric, threshold = "fake", "euclidean", 0.6

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], np.ndarray]] = []

    def align(self, image: np.ndarray, detection: Any) -> np.ndarray:
        x0, y0, x1, y1 = detection.box
        return np.array([[x0, y0], [x1, y1]], np.float64)

    def embed_aligned(self, images: list[np.ndarray], points: np.ndarray) -> np.ndarray:
        out = []
        for image in images:
            self.calls.append((image.shape, points.copy()))
            (x0, y0), (x1, y1) = points.astype(int)
            out.append(np.array([image[y0:y1, x0:x1].mean()], np.float32))
        return np.stack(out)

    def embed(self, image: np.ndarray, detection: Any, landmarks: Any) -> np.ndarray:
        vector: np.ndarray = self.embed_aligned([image], self.align(image, detection))[0]
        return vector


class _FakeKeypointEmbedder:
    """An embedder aligned by the detection it is given (as ArcFace is by the stage's keypoints)."""

    name, metric, threshold = "fake_kp", "euclidean", 0.6

    def __init__(self) -> None:
        self.boxes: list[tuple[tuple[int, ...], tuple[float, ...]]] = []

    def embed(self, image: np.ndarray, detection: Any, landmarks: Any) -> np.ndarray:
        self.boxes.append((image.shape, tuple(detection.box)))
        x0, y0, x1, y1 = (int(v) for v in detection.box)
        return np.array([image[y0:y1, x0:x1].mean()], np.float32)


def _pair_with_source_face(src: np.ndarray, deid: np.ndarray) -> FramePair:
    from streameval.faces.types import FrameFaces, PairFaces, TrackedFace

    mesh = np.zeros((468, 3), np.float32)
    mesh[:, 0], mesh[:, 1] = np.linspace(20, 60, 468), np.linspace(30, 70, 468)
    face = TrackedFace(1, (20.0, 30.0, 60.0, 70.0), mesh, 1.0, 1.0, True)
    faces = PairFaces(FrameFaces((face,), face, True), FrameFaces())
    return FramePair(Frame(src, 0.0, 0, 0.0), Frame(deid, 0.0, 0, 0.0), 0.0, faces)


@pytest.mark.parametrize("scale", [1, 2])
def test_at_source_uses_the_source_alignment_on_the_deid_frame(scale: int) -> None:
    src = np.zeros((100, 100, 3), np.uint8)
    src[30:70, 20:60] = 200  # the source face
    deid = np.zeros((100 * scale, 100 * scale, 3), np.uint8)
    deid[30 * scale : 70 * scale, 20 * scale : 60 * scale] = 50  # the de-identified face, same place
    realigner, keypoints = _FakeRealigner(), _FakeKeypointEmbedder()
    analyser = IdentityAnalyser([Recogniser("r", realigner, 0.6), Recogniser("k", keypoints, 0.6)])
    obs = analyser.analyse(_pair_with_source_face(src, deid))
    for key in ("r", "k"):
        d = obs.values["distances"][key]
        assert d["deid_a"] is None  # no de-identified face detected
        assert d["at_source_a"] == pytest.approx(150.0)  # 200 at the source, 50 at the same place on the deid
    # the realigner cut the de-identified frame at the source's landmarks, scaled to its size
    (src_shape, src_points), (deid_shape, deid_points) = realigner.calls
    assert src_shape == src.shape and deid_shape == deid.shape
    assert np.allclose(deid_points, src_points * scale)
    # the keypoint embedder got the source face's box, scaled
    assert keypoints.boxes[1] == (deid.shape, (20.0 * scale, 30.0 * scale, 60.0 * scale, 70.0 * scale))


def test_the_detected_series_keep_their_names_for_the_batch_state() -> None:
    from streameval.metrics.deid import DISTANCES

    metric = DeidMetric([DLIB], window=2.0)
    metric.update(observation(0.0, True, {"deid_a": 0.5, "source_a": 0.0, "at_source_a": 0.9}))
    per = metric.per["dlib"]
    assert list(DISTANCES) == ["deid_a", "deid_b", "deid_src", "source_a", "source_b"]
    assert per.dist["deid_a"].total.get() == 0.0 and per.dist["source_a"].total.n == 1  # Var: one value
    assert per.leak.total.get() == 1.0 and per.swap.total.n == 0
