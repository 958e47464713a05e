"""Face families without models: metrics against numpy/scipy on synthetic observations, clip collection, options."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from streameval.analysis.base import Observation
from streameval.analysis.face_config import identity_options, reality_options
from streameval.analysis.reality import Box, ClipCollector, crop_square, smooth
from streameval.config import RunConfig
from streameval.errors import ConfigError
from streameval.metrics.coverage import CoverageMetric
from streameval.metrics.deid import DeidMetric, RecogniserInfo
from streameval.metrics.expression import AU_KEYS, ExpressionMetric
from streameval.paper import paper_block

RNG = np.random.default_rng(7)


def test_expression_window_and_total_match_scipy() -> None:
    n, window = 60, 1.0
    t = np.arange(n) / 10.0
    src = RNG.uniform(0, 5, (n, 17))
    deid = 0.5 * src + RNG.normal(0, 0.5, (n, 17))
    src[:, 3] = 1.0  # a constant AU: PCC undefined, with a reason
    metric = ExpressionMetric(window)
    for i in range(n):
        missing = i % 7 == 0  # no face on the de-identified frame: left out of the statistics
        metric.update(
            Observation(
                "expression",
                float(t[i]),
                {"source_aus": src[i].astype(np.float32), "deid_aus": None if missing else deid[i]},
            )
        )
    keep = np.arange(n) % 7 != 0
    s32 = src.astype(np.float32).astype(np.float64)
    win = keep & (t > t[-1] - window)
    values, total = metric.window_values(), metric.total_values()
    for mask, out in ((win, values), (keep, total)):
        x, y = s32[mask], deid[mask]
        for j, key in enumerate(AU_KEYS):
            rmse = np.sqrt(np.mean((x[:, j] - y[:, j]) ** 2))
            assert out[f"{key}_rmse"] == pytest.approx(rmse, rel=1e-9)
            if j == 3:
                assert out[f"{key}_pcc"] is None and "constant" in out["null_reasons"][f"{key}_pcc"]
            else:
                assert out[f"{key}_pcc"] == pytest.approx(stats.pearsonr(x[:, j], y[:, j])[0], rel=1e-9)
        pccs = [stats.pearsonr(x[:, j], y[:, j])[0] for j in range(17) if j != 3]
        assert out["pcc_mean"] == pytest.approx(np.mean(pccs), rel=1e-9)
        assert out["n"] == mask.sum()
    assert total["pairs_without_face"] == {"source": 0, "deid": int((~keep).sum())}
    paper = metric.paper()
    assert paper["deid"]["AU12"][0] == pytest.approx(total["AU12_pcc"])
    assert paper["source"]["AU12"] == [pytest.approx(1.0), pytest.approx(0.0)]


def test_deid_distances_and_rates_match_numpy() -> None:
    info = RecogniserInfo("dlib", "dlib_resnet_v1", "euclidean", 0.6, "paired source face", "ref_b: b.png")
    metric = DeidMetric([info], window=2.0)
    n = 40
    d = RNG.uniform(0.2, 1.0, (n, 5))
    names = ("deid_a", "deid_b", "deid_src", "source_a", "source_b")
    has_face = np.arange(n) % 5 != 0
    for i in range(n):
        dist = {k: (float(d[i, j]) if has_face[i] else None) for j, k in enumerate(names)}
        metric.update(
            Observation(
                "identity", i * 0.2, {"source_faces": 1, "deid_faces": int(has_face[i]), "distances": {"dlib": dist}}
            )
        )
    total = metric.total_values()
    x = d[has_face]
    assert total["leak_rate"] == pytest.approx(np.mean(x[:, 0] <= 0.6))
    assert total["swap_rate"] == pytest.approx(np.mean(x[:, 1] <= 0.6))
    assert total["dist_src_mean"] == pytest.approx(x[:, 2].mean())
    assert total["dist_src_std"] == pytest.approx(x[:, 2].std())
    assert total["dlib"]["dist_a_n"] == has_face.sum()
    win = has_face & (np.arange(n) * 0.2 > (n - 1) * 0.2 - 2.0 + 1e-9)
    assert metric.window_values()["dist_a_mean"] == pytest.approx(d[win, 0].mean())
    paper = metric.paper()
    assert paper["deid"]["A_mean"] == pytest.approx(x[:, 0].mean())
    assert paper["source"]["B_std"] == pytest.approx(x[:, 4].std())
    # whole-stream histograms of the de-identified face's distances, against numpy
    for j, key in ((0, "dist_a"), (1, "dist_b"), (2, "dist_src")):
        hist = total["dlib"]["histograms"][key]
        assert hist["counts"] == np.histogram(x[:, j], bins=np.array(hist["edges"]))[0].tolist()
        assert hist["under"] == hist["over"] == 0 and hist["edges"][0] == 0.0 and hist["edges"][-1] == 2.0
    assert "histograms" not in metric.window_values()["dlib"]


def test_coverage_counts() -> None:
    metric = CoverageMetric(window=10.0)
    assert metric.consumes == {"faces"}
    counts = [(1, 1), (0, 1), (2, 0), (1, 3), (0, 0)]
    for i, (s, d) in enumerate(counts):
        values = {"source_faces": s, "deid_faces": d, "source_detector": i % 2 == 0, "deid_detector": True}
        values |= {"source_new_tracks": int(i == 0), "deid_new_tracks": 2 * int(i == 3), "deid_cut": i == 3}
        metric.update(Observation("faces", i * 0.1, values))
    total = metric.total_values()
    assert (total["frames"], total["source_face_frames"], total["deid_face_frames"]) == (5, 3, 3)
    assert (total["source_multiple_frames"], total["deid_multiple_frames"]) == (1, 1)
    assert total["source"] == pytest.approx(0.6) and total["deid_multiple"] == pytest.approx(0.2)
    assert (total["source_detector_runs"], total["deid_detector_runs"]) == (3, 5)
    assert (total["source_tracks"], total["deid_tracks"], total["source_cuts"], total["deid_cuts"]) == (1, 2, 0, 1)


def test_paper_block_merges_contributors() -> None:
    class Part:
        def __init__(self, key: str) -> None:
            self.key = key

        def paper(self) -> dict[str, dict[str, float]]:
            return {"source": {self.key: 0.0}, "deid": {self.key: 1.0}}

    assert paper_block([object()]) is None
    assert paper_block([Part("FID"), Part("A_mean")]) == {
        "source": {"FID": 0.0, "A_mean": 0.0},
        "deid": {"FID": 1.0, "A_mean": 1.0},
    }


def test_crop_square_pads_outside_with_black() -> None:
    image = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    crop = crop_square(image, Box(cx=1.0, cy=2.0, side=6.0))  # x in [-2, 4), y in [-1, 5)
    assert crop.shape == (6, 6, 3)
    np.testing.assert_array_equal(crop[1:, 2:], image[0:5, 0:4])
    assert not crop[0].any() and not crop[:, :2].any()
    assert smooth(Box(0, 0, 10), Box(10, 20, 20), 0.75) == Box(2.5, 5.0, 12.5)


def _det(x: float) -> tuple[float, float, float, float]:
    return (x, 10.0, x + 20.0, 30.0)


def test_clip_collector_strides_and_restarts() -> None:
    img = np.zeros((40, 60, 3), np.uint8)
    col = ClipCollector(4, 2, box_scale=1.0, smoothing=0.0, max_gap=1)
    faces = [_det(5)] * 6 + [None] + [_det(5)] + [None, None] + [_det(8)] * 4
    taken = []
    for i, face in enumerate(faces):
        clip = col.add(img, img, float(i), face)
        if clip is not None:
            assert len(clip[0]) == len(clip[1]) == 4 and all(c.shape == (20, 20, 3) for c in clip[0])
            taken.append((i, clip[2]))
    # first clip when 4 frames are in (frame 3), then every 2 frames; a 1-frame gap is bridged with the held
    # box, a 2-frame gap (> max_gap) restarts the clip
    assert taken == [(3, 0.0), (5, 2.0), (7, 4.0), (13, 10.0)]
    assert col.restarts == 1


def test_clip_collector_spaces_clips_in_stream_time() -> None:
    img = np.zeros((40, 60, 3), np.uint8)
    col = ClipCollector(4, 4, box_scale=1.0, smoothing=0.0, max_gap=1, every_s=1.0)
    taken = []
    for i in range(30):  # 10 frames per second
        clip = col.add(img, img, i / 10, _det(5))
        if clip is not None:
            taken.append((i, clip[2]))
    # a clip starts at the first frame >= 1 s after the previous start; frames in between are not kept
    assert taken == [(3, 0.0), (13, 1.0), (23, 2.0)]
    assert len(col.crops) == 0  # frames 24-29 (2.4-2.9 s) come before the next start at 3 s
    # the pipeline asks first, so those frames are never even queued for the lane
    assert [col.wants(t) for t in (2.9, 3.0, 3.1)] == [False, True, True]


def test_time_spaced_clip_starts_its_box_afresh() -> None:
    img = np.zeros((40, 60, 3), np.uint8)
    col = ClipCollector(2, 2, box_scale=1.0, smoothing=0.5, max_gap=1, every_s=1.0)
    assert col.add(img, img, 0.0, _det(5)) is None and col.add(img, img, 0.1, _det(5)) is not None
    # frames between clips were skipped; the next clip's box is its own face's, not smoothed with the old one
    col.add(img, img, 1.0, _det(30))
    assert col.box is not None and col.box.cx == 40.0


def test_options_are_validated() -> None:
    config = RunConfig(options={"identity": {"ref_a": "/nonexistent.png"}})
    with pytest.raises(ConfigError, match="ref_a"):
        identity_options(config)
    with pytest.raises(ConfigError, match="recognisers"):
        identity_options(RunConfig(options={"identity": {"recognisers": ["vgg"]}}))
    with pytest.raises(ConfigError, match="strid"):
        reality_options(RunConfig(options={"reality": {"strid": 8}}))
    with pytest.raises(ConfigError, match="stride"):
        reality_options(RunConfig(options={"reality": {"stride": 0}}))


@pytest.mark.parametrize(
    ("table", "options", "match"),
    [
        ("faces", {"tracking": "yes"}, r"\[faces\] tracking: must be true or false"),
        ("faces", {"redetect_every": "-1s"}, r"\[faces\] redetect_every"),
        ("faces", {"max_faces": 0}, r"\[faces\] max_faces"),
        ("faces", {"cut_treshold": 0.1}, r"\[faces\]: unknown key"),
        ("reality", {"clip_every": "0s"}, r"\[reality\] clip_every: must be a positive duration"),
        ("reality", {"clip_every": "2s", "stride": 16}, r"give one of them"),
        ("identity", {"dlib_backend": "tensorflow"}, r"\[identity\] dlib_backend: must be 'onnx' or 'dlib'"),
        ("identity", {"num_jitters": 5}, r"num_jitters > 1 needs dlib_backend = 'dlib'"),
    ],
)
def test_new_options_are_validated(table: str, options: dict[str, object], match: str) -> None:
    from streameval.analysis.face_config import face_options

    read = {"faces": face_options, "reality": reality_options, "identity": identity_options}[table]
    with pytest.raises(ConfigError, match=match):
        read(RunConfig(options={table: options}))


def test_new_options_are_read() -> None:
    from streameval.analysis.face_config import face_options

    faces = face_options(RunConfig(options={"faces": {"tracking": False, "redetect_every": "500ms", "max_faces": 2}}))
    assert (faces.tracker.tracking, faces.tracker.redetect_every, faces.tracker.max_faces) == (False, 0.5, 2)
    assert reality_options(RunConfig()).every_s == 4.0
    assert reality_options(RunConfig(options={"reality": {"stride": 16}})).every_s is None
    assert identity_options(RunConfig()).dlib_backend == "onnx"
    assert (
        identity_options(RunConfig(options={"identity": {"dlib_backend": "dlib", "num_jitters": 3}})).num_jitters == 3
    )
