"""pyfaceau as the AU source, with a stand-in package (pyfaceau itself is not installed here: CC BY-NC 4.0 code,
OpenFace's non-commercial model files).

The stand-in mimics pyfaceau's command line (``python -m pyfaceau VIDEO -o CSV``, exit 1 when no frame has a
face) and its CSV (``frame`` from 0, ``timestamp``, ``success`` as True/False, the 17 ``AUxx_r``, empty where
``success`` is false). Its AUs follow a formula of the frame number and the file name, which the tests
recompute, so every value can be traced from the stand-in's row to the run's statistics.
"""

from __future__ import annotations

import json
import os
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from streameval.analysis.au import AU_NAMES
from streameval.analysis.openface_track import AUTrack, RowStatus
from streameval.analysis.pyfaceau import pyfaceau_rows, read_pyfaceau_rows
from streameval.cli import main
from streameval.config import load_config
from streameval.datasets import example_video
from streameval.errors import ConfigError, InputError, ModelError
from streameval.frames import Frame

CARPHONE = example_video("carphone_pristine")
FRAMES = 120

_MAIN = """
import argparse, sys, zlib
from pathlib import Path

import av

AUS = {aus!r}
parser = argparse.ArgumentParser(prog="pyfaceau")
parser.add_argument("video")
parser.add_argument("-o", "--output")
args = parser.parse_args()
with av.open(args.video) as container:
    stream = container.streams.video[0]
    fps = float(stream.average_rate)
    count = sum(1 for _ in container.decode(stream))
seed = zlib.crc32(Path(args.video).name.encode()) % 97
lines = [",".join(["frame", "timestamp", "success", *AUS])]
found = 0
for i in range(count):
    if i % 7 == 3 or "noface" in args.video:
        lines.append(f"{{i}},{{i / fps}},False," + ",".join("" for _ in AUS))
        continue
    found += 1
    lines.append(f"{{i}},{{i / fps}},True," + ",".join(str(((i * (k + 1) + seed) % 50) / 10) for k in range(len(AUS))))
Path(args.output).write_text("\\n".join(lines) + "\\n")
if not found:
    print(f"No face was found in {{args.video}}.", file=sys.stderr)
sys.exit(0 if found else 1)
"""


def expected_aus(name: str, frame: int) -> np.ndarray:
    """The stand-in's AUs of 0-based ``frame`` of the file ``name``."""
    seed = zlib.crc32(name.encode()) % 97
    return np.array([((frame * (k + 1) + seed) % 50) / 10 for k in range(len(AU_NAMES))], np.float32)


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "site" / "pyfaceau"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "stand-in"\n', encoding="utf-8")
    (package / "__main__.py").write_text(_MAIN.format(aus=AU_NAMES), encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(package.parent), os.environ.get("PYTHONPATH", "")]))
    return package


def test_reader_counts_frames_as_openface_and_trusts_only_successful_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    aus = ",".join(AU_NAMES)
    values = ",".join(str(k / 10) for k in range(17))
    path.write_text(
        f"frame,timestamp,success,{aus}\n0,0.0,True,{values}\n1,0.04,False,{',' * 16}\n2,0.08,True,{values}\n",
        encoding="utf-8",
    )
    rows = read_pyfaceau_rows(path)
    assert rows.frames is not None and rows.timestamps is not None
    assert rows.frames.tolist() == [1, 2, 3]  # OpenFace's 1-based count
    assert rows.valid.tolist() == [True, False, True]
    np.testing.assert_allclose(rows.timestamps, [0.0, 0.04, 0.08])
    np.testing.assert_allclose(rows.aus[0], np.arange(17) / 10, rtol=1e-6)
    path.write_text(f"frame,timestamp,success,{aus}\n0,0.0,maybe,{values}\n", encoding="utf-8")
    with pytest.raises(InputError, match="is not True or False"):
        read_pyfaceau_rows(path)
    path.write_text("frame,timestamp,success,AU01_r\n0,0.0,True,1.0\n", encoding="utf-8")
    with pytest.raises(InputError, match="lacks columns"):
        read_pyfaceau_rows(path)


def test_rows_reach_the_decoded_frames_they_belong_to(stand_in: Path) -> None:
    rows = pyfaceau_rows(str(CARPHONE), python=None, timeout_s=120)
    track = AUTrack(rows, match="frame", label="pyfaceau")
    image = np.zeros((2, 2, 3), np.uint8)
    for index in range(FRAMES):
        aus, status = track.lookup(Frame(image=image, pts=index / 29.97, index=index, arrival=0.0))
        if index % 7 == 3:
            assert aus is None and status is RowStatus.INVALID
        else:
            assert status is RowStatus.OK and aus is not None
            np.testing.assert_array_equal(aus, expected_aus(CARPHONE.name, index))
    beyond = Frame(image=image, pts=FRAMES / 29.97, index=FRAMES, arrival=0.0)
    assert track.lookup(beyond) == (None, RowStatus.UNMATCHED)


def test_missing_package_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))  # no stand-in
    with pytest.raises(ModelError, match=r"needs the pyfaceau package.*pip install pyfaceau.*pyfaceau-download-models"):
        pyfaceau_rows(str(CARPHONE), python=sys.executable, timeout_s=60)
    with pytest.raises(ModelError, match="no such Python"):
        pyfaceau_rows(str(CARPHONE), python="/nonexistent/python3", timeout_s=60)


def test_no_face_anywhere_is_a_result_not_a_failure(stand_in: Path, tmp_path: Path) -> None:
    video = tmp_path / "noface.mp4"
    video.write_bytes(CARPHONE.read_bytes())
    rows = pyfaceau_rows(str(video), python=None, timeout_s=120)
    assert len(rows.valid) == FRAMES and not rows.valid.any()


def test_replay_with_pyfaceau_aus(
    stand_in: Path, models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deid = tmp_path / "deid.mp4"
    deid.write_bytes(CARPHONE.read_bytes())  # the same frames, another name: the stand-in's AUs differ
    config = tmp_path / "run.toml"
    config.write_text(
        f'[expression]\nau_source = "pyfaceau"\npyfaceau_python = "{sys.executable}"\npyfaceau_timeout = "2m"\n'
        f'[models]\ndir = "{models_dir}"\n',
        encoding="utf-8",
    )
    report = tmp_path / "report.json"
    code = main(
        ["replay", str(CARPHONE), str(deid), "--metrics", "expression", "--no-log", "--report", str(report),
         "-c", str(config)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    totals = json.loads(report.read_text(encoding="utf-8"))["totals"]["expression"]
    assert totals["au_source"] == "pyfaceau"
    failed = sum(1 for i in range(FRAMES) if i % 7 == 3)
    assert totals["pairs_without_face"] == {"source": failed, "deid": failed}
    assert totals["openface_unmatched"] == {"source": 0, "deid": 0}
    both = [i for i in range(FRAMES) if i % 7 != 3]
    src = np.stack([expected_aus(CARPHONE.name, i) for i in both]).astype(np.float64)
    out = np.stack([expected_aus(deid.name, i) for i in both]).astype(np.float64)
    for k, name in enumerate(AU_NAMES):
        pcc = np.corrcoef(src[:, k], out[:, k])[0, 1]
        rmse = np.sqrt(np.mean((src[:, k] - out[:, k]) ** 2))
        key = name.removesuffix("_r")
        assert totals[f"{key}_pcc"] == pytest.approx(pcc, abs=1e-6)
        assert totals[f"{key}_rmse"] == pytest.approx(rmse, abs=1e-5)


def test_pyfaceau_keys_belong_to_its_source(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[expression]\npyfaceau_python = "python3"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="only used with au_source = 'pyfaceau'"):
        load_config(path)
    path.write_text('[expression]\nau_source = "pyfaceau"\nau_model = "combined"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="only used with au_source = 'mesh'"):
        load_config(path)
    path.write_text('[expression]\nau_source = "pyfaceau"\nopenface_binary = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="only used with au_source = 'openface'"):
        load_config(path)
