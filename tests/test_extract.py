"""``streameval extract``: per-frame AUs in OpenFace's CSV layout, against independent references.

The reference recomputes every row outside the extract code (its own decoding loop, the face tracker and the
AU estimator called frame by frame) and reads the CSV back with the project's OpenFace reader and with the csv
module. Head pose is checked against known rotations of the canonical face.
"""

from __future__ import annotations

import csv
from pathlib import Path

import av
import numpy as np
import pytest

from streameval.analysis.au import AU_NAMES, MeshAUEstimator
from streameval.analysis.au.canonical import CANONICAL
from streameval.analysis.au.face_aus import BlendshapeModels, FaceAUEstimator
from streameval.analysis.au.pose import euler_to_rotation, head_pose
from streameval.analysis.openface import read_openface_rows
from streameval.cli import main
from streameval.datasets import example_video
from streameval.extract import BASE_COLUMNS
from streameval.faces.tracker import FaceTracker, TrackerOptions
from streameval.models.face_landmarker import BLENDSHAPE_NAMES
from streameval.models.loaders import load_blendshapes, load_detector, load_landmarker, load_mesh_478

CARPHONE = example_video("carphone_pristine")


def _extract(args: list[str], capsys: pytest.CaptureFixture[str], models_dir: Path) -> tuple[int, str]:
    code = main(["extract", *args, "--models-dir", str(models_dir)])
    return code, capsys.readouterr().err


def _seconds(frame: av.VideoFrame) -> float:
    assert frame.pts is not None and frame.time_base is not None
    return float(frame.pts * frame.time_base)


def _reference(models_dir: Path, model: str) -> list[tuple[float, float, np.ndarray, np.ndarray | None]]:
    """(pts, presence, AUs, blendshapes) of the primary face of every carphone frame, recomputed here."""
    detector, landmarker = load_detector(models_dir, device="cpu"), load_landmarker(models_dir, device="cpu")
    networks = None
    tracker = FaceTracker(detector, landmarker, TrackerOptions())
    if model != "geometry":  # the blendshapes' models track with the 478-point mesh; combined keeps the 468 beside
        mesh_478 = load_mesh_478(models_dir, device="cpu")
        networks = BlendshapeModels(mesh_478, load_blendshapes(models_dir, device="cpu"))
        beside = landmarker if model == "combined" else None
        tracker = FaceTracker(detector, mesh_478, TrackerOptions(), mesh_468=beside)
    estimator = FaceAUEstimator(model, MeshAUEstimator(adaptive=True), networks)  # type: ignore[arg-type]
    rows = []
    with av.open(str(CARPHONE)) as container:
        frames = list(container.decode(video=0))
    first = _seconds(frames[0])
    for frame in frames:
        image = np.ascontiguousarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
        t = _seconds(frame) - first
        face = tracker.process(image, t).primary
        assert face is not None
        result = estimator.estimate(image, face)
        assert (face.landmarks_478 is not None) == (model != "geometry")  # no second 478-point run on this face
        rows.append((t, face.presence, result.aus, result.blendshapes))
    return rows


@pytest.mark.parametrize("model", ["geometry", "blendshapes", "combined"])
def test_rows_equal_the_estimator_frame_by_frame(
    model: str, models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "aus.csv"
    code, err = _extract([str(CARPHONE), "--out", str(out), "--au-model", model], capsys, models_dir)
    assert code == 0, err
    assert "120 frames, a face on 120" in err
    reference = _reference(models_dir, model)

    rows = read_openface_rows(out, min_confidence=0.0)  # the project's OpenFace reader
    assert rows.frames is not None and rows.timestamps is not None
    np.testing.assert_array_equal(rows.frames, np.arange(1, 121))
    np.testing.assert_allclose(rows.timestamps, [r[0] for r in reference], atol=5e-4)  # written with 3 decimals
    np.testing.assert_array_equal(rows.aus, np.stack([r[2] for r in reference]))  # identical float32 values
    assert rows.valid.all()

    with out.open(newline="") as fh:
        table = list(csv.DictReader(fh, skipinitialspace=True))
    header = list(table[0])
    extra = list(BLENDSHAPE_NAMES) if model != "geometry" else []
    assert header == [*BASE_COLUMNS, *AU_NAMES, *extra]  # OpenFace's column order, then the blendshapes
    assert {row["face_id"] for row in table} == {"0"} and {row["success"] for row in table} == {"1"}
    confidence = [float(row["confidence"]) for row in table]  # a float64 written with 9 digits
    np.testing.assert_allclose(confidence, [r[1] for r in reference], rtol=1e-8)
    if extra:
        got = np.array([[np.float32(row[n]) for n in BLENDSHAPE_NAMES] for row in table])
        np.testing.assert_array_equal(got, np.stack([r[3] for r in reference if r[3] is not None]))
    # the head turns but stays within what a frontal-face tracker follows
    pose = np.array([[float(row[k]) for k in ("pose_Rx", "pose_Ry", "pose_Rz")] for row in table])
    assert np.abs(pose).max() < 1.0 and pose.std(axis=0).max() > 0.01


def test_video_without_faces_writes_unsuccessful_rows_and_says_so(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bikes.csv"
    code, err = _extract([str(example_video("bikes")), "--out", str(out)], capsys, models_dir)
    assert code == 0
    assert "no face found in any of the 250 frames" in err and "rows with success 0" in err
    rows = read_openface_rows(out, min_confidence=0.0)
    assert len(rows.aus) == 250 and not rows.valid.any() and not rows.aus.any()


@pytest.mark.parametrize(
    ("make", "code", "message"),
    [
        (lambda d: d / "missing.mp4", 3, "no such file"),
        (lambda d: d, 3, "is a directory, not a video"),
        (lambda d: (d / "notes.mp4").write_text("not a video") and d / "notes.mp4", 3, "not a readable video"),
    ],
)
def test_bad_input_is_one_line_with_exit_3(
    make: object, code: int, message: str, models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = make(tmp_path)  # type: ignore[operator]
    out = tmp_path / "aus.csv"
    got, err = _extract([str(video), "--out", str(out)], capsys, models_dir)
    assert got == code and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_output_is_checked_before_anything_runs(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "clip.mp4"
    copy.write_bytes(CARPHONE.read_bytes())
    code, err = _extract([str(copy), "--out", str(copy)], capsys, models_dir)
    assert code == 2 and "refusing to overwrite an input" in err
    assert copy.read_bytes() == CARPHONE.read_bytes()
    code, err = _extract([str(copy), "--out", "/dev/null"], capsys, models_dir)
    assert code == 2 and "not a regular file" in err


def test_head_pose_recovers_known_rotations() -> None:
    canonical = np.asarray(CANONICAL, dtype=np.float64) * np.array([1.0, -1.0, -1.0])  # camera axes, y down
    assert np.abs(head_pose(canonical * 30)).max() < 1e-9  # a frontal face: no rotation
    rng = np.random.default_rng(3)
    for _ in range(20):
        angles = rng.uniform(-0.6, 0.6, size=3)
        mesh = canonical @ euler_to_rotation(*angles).T * rng.uniform(5, 80) + rng.uniform(-200, 200, size=3)
        np.testing.assert_allclose(head_pose(mesh), angles, atol=1e-9)


# -- a replay's --frames: both streams' rows in extract's layout ------------------------------------------------


def test_replay_frames_equal_what_extract_writes_for_each_file(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``replay --frames`` writes, per stream, exactly the rows ``extract`` writes for that file (same tracker,
    estimator and formatting), with a leading ``stream`` column; the heavily compressed clip loses its face on some
    frames, so both kinds of row are compared."""
    distorted = example_video("carphone_distorted")
    frames = tmp_path / "frames.csv"
    config = tmp_path / "run.toml"
    config.write_text(f'[expression]\nau_model = "combined"\n[models]\ndir = "{models_dir}"\n', encoding="utf-8")
    code = main(
        [
            "replay", str(CARPHONE), str(distorted), "--metrics", "expression", "--no-log",
            "--report", str(tmp_path / "report.json"), "--frames", str(frames), "-c", str(config),
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    lines = frames.read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:]
    assert header == "stream, " + ", ".join([*BASE_COLUMNS, *AU_NAMES, *BLENDSHAPE_NAMES])
    assert [line.split(", ")[0] for line in body] == ["source", "deid"] * 120  # one of each per pair, source first
    for side, video in (("source", CARPHONE), ("deid", distorted)):
        out = tmp_path / f"{side}.csv"
        got, err = _extract([str(video), "--out", str(out), "--au-model", "combined"], capsys, models_dir)
        assert got == 0, err
        expected = out.read_text(encoding="utf-8").splitlines()
        assert header == "stream, " + expected[0]
        assert [line[len(side) + 2 :] for line in body if line.startswith(side + ", ")] == expected[1:]
    rows = read_openface_rows(tmp_path / "source.csv", min_confidence=0.0)
    deid = read_openface_rows(tmp_path / "deid.csv", min_confidence=0.0)
    assert rows.valid.all() and deid.valid.any() and not deid.valid.all()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metrics", "pixel"], "add expression to --metrics"),
        (["--metrics", "expression", "--frames", "{report}"], "give the per-frame table its own file"),
        (["--metrics", "expression", "--frames", "{source}"], "refusing to overwrite an input"),
        (["--metrics", "expression", "--frames", "/dev/null"], "not a regular file"),
        (["--metrics", "expression", "--frames", "-"], "needs a file"),
    ],
)
def test_replay_frames_output_is_checked_before_the_run(
    extra: list[str], message: str, models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(CARPHONE.read_bytes())
    report = tmp_path / "report.json"
    config = tmp_path / "run.toml"
    config.write_text(f'[models]\ndir = "{models_dir}"\n', encoding="utf-8")
    args = ["-c", str(config), *(a.format(report=report, source=source) for a in extra)]
    if "--frames" not in args:
        args += ["--frames", str(tmp_path / "frames.csv")]
    code = main(["replay", str(source), str(CARPHONE), "--no-log", "--report", str(report), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert not report.exists() and source.read_bytes() == CARPHONE.read_bytes()


def test_replay_frames_need_mesh_aus(models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.toml"
    config.write_text(f'[expression]\nau_source = "openface"\n[models]\ndir = "{models_dir}"\n', encoding="utf-8")
    frames, report = tmp_path / "frames.csv", tmp_path / "report.json"
    code = main(
        [
            "replay", str(CARPHONE), str(CARPHONE), "--metrics", "expression", "--no-log", "--report", str(report),
            "--frames", str(frames), "-c", str(config),
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--frames writes the mesh AUs" in err, err
    assert not frames.exists() and not report.exists()


def test_frame_rows_spill_to_disk_and_come_back_whole(tmp_path: Path) -> None:
    """A long run's --frames table is spooled to a temporary file past a size, not held in memory; what is
    written is the header and every row, in order, either way."""
    from streameval.analysis.expression import ExpressionAnalyser, FrameRows, write_frame_rows
    from streameval.extract import frame_row, header_line
    from streameval.frames import Frame

    class Holder(ExpressionAnalyser):
        def __init__(self, rows: FrameRows) -> None:
            self.rows = rows

    image = np.zeros((4, 4, 3), np.uint8)
    for spool in (1 << 20, 256):  # in memory; spilled after a few rows
        rows = FrameRows(with_blendshapes=False, spool_bytes=spool)
        expected = [header_line(False, ("stream",))]
        for i in range(200):
            frame = Frame(image, i / 30, i, 0.0)
            rows.add("source" if i % 2 == 0 else "deid", frame, None, None)
            row = frame_row(i + 1, i / 30, None, None, with_blendshapes=False)
            expected.append(f"{'source' if i % 2 == 0 else 'deid'}, {row}")
        out = tmp_path / f"frames_{spool}.csv"
        write_frame_rows(str(out), [Holder(rows)])
        assert out.read_text(encoding="utf-8").splitlines() == expected
