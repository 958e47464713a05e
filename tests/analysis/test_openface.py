"""OpenFace CSV reader and FeatureExtraction runner, with CSVs and a fake executable the tests write."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from streameval.analysis.au import AU_NAMES
from streameval.analysis.openface import BINARY_ENV, openface_aus, read_openface_csv, run_feature_extraction
from streameval.errors import InputError, ModelError, UsageError

AU_C = ["AU01_c", "AU02_c", "AU04_c", "AU05_c", "AU06_c", "AU07_c", "AU09_c", "AU10_c", "AU12_c", "AU14_c"]


def openface_text(rows: list[dict[str, float]], *, shuffle_aus: bool = False, drop: str | None = None) -> str:
    """A CSV laid out like OpenFace 2.2 (", "-separated header, extra pose/gaze and AUxx_c columns)."""
    aus = list(reversed(AU_NAMES)) if shuffle_aus else list(AU_NAMES)
    header = ["frame", "face_id", "timestamp", "confidence", "success", "gaze_0_x", "pose_Rx", *aus, *AU_C]
    header = [h for h in header if h != drop]
    lines = [", ".join(header)]
    for row in rows:
        lines.append(", ".join(f"{row.get(h, 0.0):g}" for h in header))
    return "\n".join(lines) + "\n"


def make_rows(n: int, seed: int = 0) -> tuple[list[dict[str, float]], np.ndarray]:
    rng = np.random.default_rng(seed)
    aus = np.round(rng.uniform(0, 5, size=(n, 17)), 2)
    rows = []
    for i in range(n):
        row: dict[str, float] = {"frame": i + 1, "face_id": 0, "timestamp": 0.04 * i, "confidence": 0.98, "success": 1}
        row.update({name: aus[i, j] for j, name in enumerate(AU_NAMES)})
        rows.append(row)
    return rows, aus


def test_reads_values_in_au_order_whatever_the_column_order(tmp_path: Path) -> None:
    rows, aus = make_rows(6)
    path = tmp_path / "clip.csv"
    path.write_text(openface_text(rows, shuffle_aus=True))
    times, got, valid = read_openface_csv(path)
    np.testing.assert_allclose(times, 0.04 * np.arange(6))
    np.testing.assert_allclose(got, aus, atol=1e-6)
    assert valid.all()


def test_success_and_confidence_decide_validity(tmp_path: Path) -> None:
    rows, _ = make_rows(5)
    rows[1]["success"] = 0
    rows[2]["confidence"] = 0.6
    rows[3]["confidence"] = 0.8
    path = tmp_path / "clip.csv"
    path.write_text(openface_text(rows))
    assert read_openface_csv(path).valid.tolist() == [True, False, False, True, True]
    assert read_openface_csv(path, min_confidence=0.9).valid.tolist() == [True, False, False, False, True]
    assert read_openface_csv(path, min_confidence=0.0).valid.tolist() == [True, False, True, True, True]


def test_frame_numbers_give_times_without_timestamp(tmp_path: Path) -> None:
    rows, _ = make_rows(4)
    path = tmp_path / "clip.csv"
    path.write_text(openface_text(rows, drop="timestamp"))
    np.testing.assert_allclose(read_openface_csv(path, fps=25.0).timestamps, [0.0, 0.04, 0.08, 0.12])
    with pytest.raises(InputError, match="timestamp"):
        read_openface_csv(path)


def test_only_the_chosen_face_is_kept(tmp_path: Path) -> None:
    rows, aus = make_rows(4)
    rows[1]["face_id"] = 1
    rows[3]["face_id"] = 1
    path = tmp_path / "multi.csv"
    path.write_text(openface_text(rows))
    np.testing.assert_allclose(read_openface_csv(path).aus, aus[[0, 2]], atol=1e-6)
    np.testing.assert_allclose(read_openface_csv(path, face_id=1).aus, aus[[1, 3]], atol=1e-6)
    assert len(read_openface_csv(path, face_id=None).aus) == 4


def test_missing_or_bad_columns_are_clear_errors(tmp_path: Path) -> None:
    rows, _ = make_rows(3)
    path = tmp_path / "bad.csv"
    path.write_text(openface_text(rows, drop="AU17_r"))
    with pytest.raises(InputError, match="AU17_r"):
        read_openface_csv(path)
    path.write_text(openface_text(rows).replace("0.98", "high", 1))
    with pytest.raises(InputError, match="confidence"):
        read_openface_csv(path)
    path.write_text("")
    with pytest.raises(InputError, match="empty"):
        read_openface_csv(path)
    with pytest.raises(InputError, match="cannot read"):
        read_openface_csv(tmp_path / "absent.csv")
    with pytest.raises(UsageError):
        read_openface_csv(path, min_confidence=1.5)


FAKE_OPENFACE = """#!{python}
# Fake OpenFace FeatureExtraction: checks its argument list and writes <out_dir>/<video stem>.csv.
import os, sys
args = sys.argv[1:]
if os.environ.get("FAKE_OPENFACE_FAIL"):
    sys.stderr.write("could not open video\\n")
    sys.exit(3)
video = args[args.index("-f") + 1]
out_dir = args[args.index("-out_dir") + 1]
assert "-aus" in args, args
with open(os.path.join(out_dir, "args.txt"), "w") as f:
    f.write("\\n".join(args))
stem = os.path.splitext(os.path.basename(video))[0]
with open(os.path.join(out_dir, stem + ".csv"), "w") as f:
    f.write({csv!r})
"""


@pytest.fixture
def fake_binary(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rows, aus = make_rows(5, seed=3)
    exe = tmp_path / "bin" / "FeatureExtraction"
    exe.parent.mkdir()
    exe.write_text(FAKE_OPENFACE.format(python=sys.executable, csv=openface_text(rows)))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe, aus


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "my clip.mp4"  # a space: the argument list must not go through a shell
    path.write_bytes(b"not really a video; the fake binary does not read it")
    return path


def test_runner_passes_arguments_and_parses_the_csv(
    fake_binary: tuple[Path, np.ndarray], video: Path, tmp_path: Path
) -> None:
    exe, aus = fake_binary
    out = tmp_path / "out"
    csv_path = run_feature_extraction(video, out, binary=exe, extra_args=["-q"])
    assert csv_path == out / "my clip.csv"
    assert (out / "args.txt").read_text().split("\n") == ["-f", str(video), "-out_dir", str(out), "-aus", "-q"]
    result = openface_aus(video, binary=exe)
    np.testing.assert_allclose(result.aus, aus, atol=1e-6)
    assert result.valid.all()


def test_runner_finds_the_binary_through_the_environment(
    fake_binary: tuple[Path, np.ndarray], video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe, aus = fake_binary
    monkeypatch.setenv(BINARY_ENV, str(exe))
    np.testing.assert_allclose(openface_aus(video).aus, aus, atol=1e-6)


def test_runner_errors(
    fake_binary: tuple[Path, np.ndarray], video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe, _ = fake_binary
    with pytest.raises(ModelError, match="not found"):
        openface_aus(video, binary=tmp_path / "nowhere" / "FeatureExtraction")
    monkeypatch.delenv(BINARY_ENV, raising=False)
    monkeypatch.setenv("PATH", os.fspath(tmp_path / "empty"))
    with pytest.raises(ModelError, match="not found"):
        openface_aus(video)
    with pytest.raises(InputError, match="does not exist"):
        openface_aus(tmp_path / "missing.mp4", binary=exe)
    monkeypatch.setenv("FAKE_OPENFACE_FAIL", "1")
    with pytest.raises(ModelError, match=r"status 3.*could not open video"):
        openface_aus(video, binary=exe)
