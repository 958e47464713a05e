"""OpenFace as the expression family's AU source, end to end through the public API.

The tests write OpenFace-like CSVs (OpenFace 2.2's header style: ", "-separated, extra columns) with known AU
series for the two carphone clips (120 frames at 29.97 fps each, paired frame i with frame i), run the expression
family and compare its per-AU PCC / RMSE / CCC with numpy/scipy computed directly from the CSV series.
"""

from __future__ import annotations

import asyncio
import stat
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from streameval import evaluation
from streameval.analysis.au import AU_NAMES
from streameval.analysis.face_config import expression_options
from streameval.api import get_attribute_preservation_metrics
from streameval.config import RunConfig, load_config
from streameval.errors import ConfigError, InputError, ModelError
from streameval.metrics.expression import AU_KEYS

N, FPS = 120, 30000 / 1001
Array = npt.NDArray[np.float64]


def openface_csv(
    aus: Array,
    *,
    success: npt.NDArray[np.int_] | None = None,
    confidence: Array | None = None,
    times: Array | None = None,
    frame_column: bool = True,
    au_columns: bool = True,
) -> str:
    """One row per frame, laid out like OpenFace 2.2's FeatureExtraction output."""
    n = len(aus)
    success = np.ones(n, int) if success is None else success
    confidence = np.full(n, 0.98) if confidence is None else confidence
    times = np.arange(n) / FPS if times is None else times
    au_names = list(AU_NAMES) if au_columns else []
    header = [*(["frame"] if frame_column else []), "face_id", "timestamp", "confidence", "success"]
    header += ["gaze_0_x", "pose_Rx", *au_names, "AU01_c", "AU45_c"]
    lines = [", ".join(header)]
    for i in range(n):
        cells = [*([str(i + 1)] if frame_column else []), "0", f"{times[i]:.3f}", f"{confidence[i]:.2f}"]
        cells += [str(int(success[i])), "0.1", "-0.05"]
        cells += [f"{v:.2f}" for v in aus[i]] if au_columns else []
        cells += ["1", "0"]
        lines.append(", ".join(cells))
    return "\n".join(lines) + "\n"


def series(seed: int) -> tuple[Array, Array]:
    """Source AUs and deid = 0.8 * source + noise, both on OpenFace's 2-decimal grid within 0..5."""
    rng = np.random.default_rng(seed)
    src = np.round(rng.uniform(0, 5, (N, 17)), 2)
    deid = np.round(np.clip(0.8 * src + rng.normal(0, 0.6, (N, 17)), 0, 5), 2)
    return src, deid


def reference(src: Array, deid: Array) -> dict[str, tuple[float, float, float]]:
    """Per AU (PCC, RMSE, Lin's CCC) computed directly."""
    out = {}
    for j, key in enumerate(AU_KEYS):
        x, y = src[:, j], deid[:, j]
        ccc = 2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
        out[key] = (float(stats.pearsonr(x, y)[0]), float(np.sqrt(np.mean((x - y) ** 2))), float(ccc))
    return out


def check(result: dict[str, Any], src: Array, deid: Array) -> None:
    totals = result["totals"]
    assert totals["n"] == len(src)
    for key, (pcc, rmse, ccc) in reference(src, deid).items():
        got_pcc, got_rmse = result[key]
        # the CSV values are kept as float32 (OpenFace prints 2 decimals): ~1e-7 from the float64 reference
        assert got_pcc == pytest.approx(pcc, rel=1e-6, abs=1e-6), key
        assert got_rmse == pytest.approx(rmse, rel=1e-6, abs=1e-6), key
        assert totals[f"{key}_ccc"] == pytest.approx(ccc, rel=1e-6, abs=1e-6), key


def options(**expression: Any) -> dict[str, dict[str, Any]]:
    return {"expression": {"au_source": "openface", **expression}, "models": {"device": "cpu"}}


def test_csv_aus_give_the_direct_statistics(zoo_ready: Path, pristine: Path, distorted: Path, tmp_path: Path) -> None:
    src, deid = series(1)
    s_ok, d_ok = np.ones(N, int), np.ones(N, int)
    s_conf, d_conf = np.full(N, 0.98), np.full(N, 0.98)
    s_ok[10:15] = 0  # OpenFace lost the face
    d_conf[50:55] = 0.5  # below the 0.75 default
    s_ok[70] = d_ok[70] = 0  # both sides
    (tmp_path / "s.csv").write_text(openface_csv(src, success=s_ok, confidence=s_conf))
    (tmp_path / "d.csv").write_text(openface_csv(deid, success=d_ok, confidence=d_conf))
    result = get_attribute_preservation_metrics(
        pristine,
        distorted,
        options=options(openface_source_csv=str(tmp_path / "s.csv"), openface_deid_csv=str(tmp_path / "d.csv")),
    )
    both = (s_ok == 1) & (d_ok == 1) & (d_conf >= 0.75)
    assert int(both.sum()) == N - 11
    check(result, src[both], deid[both])
    totals = result["totals"]
    assert totals["pairs_without_face"] == {"source": 6, "deid": 6}
    assert totals["openface_unmatched"] == {"source": 0, "deid": 0}
    assert totals["au_source"] == "openface"

    # a lower threshold lets the low-confidence rows back in
    relaxed = get_attribute_preservation_metrics(
        pristine,
        distorted,
        options=options(
            openface_source_csv=str(tmp_path / "s.csv"),
            openface_deid_csv=str(tmp_path / "d.csv"),
            openface_min_confidence=0.4,
        ),
    )
    both = (s_ok == 1) & (d_ok == 1)
    check(relaxed, src[both], deid[both])
    assert relaxed["totals"]["pairs_without_face"] == {"source": 6, "deid": 1}


def test_time_matching_uses_timestamps(zoo_ready: Path, pristine: Path, distorted: Path, tmp_path: Path) -> None:
    """Without a frame column rows are matched by timestamp; a CSV shifted by one frame shifts the series."""
    src, deid = series(2)
    (tmp_path / "s.csv").write_text(openface_csv(src, frame_column=False))
    # deid row k holds frame k + 1's AUs and claims its time (k + 1) / fps: frame 0 has no row, frame i gets
    # row i - 1, so the series agree again (matching by position would pair frame i with deid[i + 1])
    rows = np.roll(deid, -1, axis=0)
    (tmp_path / "d.csv").write_text(openface_csv(rows, frame_column=False, times=(np.arange(N) + 1) / FPS))
    result = get_attribute_preservation_metrics(
        pristine,
        distorted,
        options=options(openface_source_csv=str(tmp_path / "s.csv"), openface_deid_csv=str(tmp_path / "d.csv")),
    )
    check(result, src[1:], deid[1:])
    assert result["totals"]["pcc_mean"] > 0.8
    assert result["totals"]["openface_unmatched"] == {"source": 0, "deid": 1}
    assert result["totals"]["pairs_without_face"] == {"source": 0, "deid": 1}


FAKE_OPENFACE = """#!{python}
# Fake FeatureExtraction: writes the CSV of the video's stem into -out_dir.
import os, sys, time
args = sys.argv[1:]
if os.environ.get("FAKE_OPENFACE_FAIL"):
    sys.stderr.write("could not open video\\n")
    sys.exit(3)
if os.environ.get("FAKE_OPENFACE_SLOW"):
    time.sleep(10)
video, out_dir = args[args.index("-f") + 1], args[args.index("-out_dir") + 1]
stem = os.path.splitext(os.path.basename(video))[0]
with open(os.path.join(out_dir, stem + ".csv"), "w") as f:
    f.write({csvs!r}[stem])
"""


def fake_binary(where: Path, csvs: dict[str, str]) -> Path:
    exe = where / "FeatureExtraction"
    exe.write_text(FAKE_OPENFACE.format(python=sys.executable, csvs=csvs))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_binary_runs_on_each_file(
    zoo_ready: Path, pristine: Path, distorted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, deid = series(3)
    exe = fake_binary(tmp_path, {pristine.stem: openface_csv(src), distorted.stem: openface_csv(deid)})
    result = get_attribute_preservation_metrics(pristine, distorted, options=options(openface_binary=str(exe)))
    check(result, src, deid)
    assert result["totals"]["pairs_without_face"] == {"source": 0, "deid": 0}

    # found through $STREAMEVAL_OPENFACE; the source from a CSV, only the de-identified file run
    other = np.round(np.clip(deid[::-1] + 0.3, 0, 5), 2)
    (tmp_path / "s.csv").write_text(openface_csv(src))
    exe = fake_binary(tmp_path, {distorted.stem: openface_csv(other)})
    monkeypatch.setenv("STREAMEVAL_OPENFACE", str(exe))
    check(
        get_attribute_preservation_metrics(
            pristine, distorted, options=options(openface_source_csv=str(tmp_path / "s.csv"))
        ),
        src,
        other,
    )


def test_binary_failures_are_model_errors(
    pristine: Path, distorted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, _ = series(4)
    exe = fake_binary(tmp_path, {pristine.stem: openface_csv(src), distorted.stem: openface_csv(src)})
    with pytest.raises(ModelError, match="not found"):
        get_attribute_preservation_metrics(
            pristine, distorted, options=options(openface_binary=str(tmp_path / "nowhere" / "FeatureExtraction"))
        )
    monkeypatch.setenv("FAKE_OPENFACE_SLOW", "1")
    with pytest.raises(ModelError, match="did not finish"):
        get_attribute_preservation_metrics(
            pristine, distorted, options=options(openface_binary=str(exe), openface_timeout="300ms")
        )
    monkeypatch.setenv("FAKE_OPENFACE_FAIL", "1")
    with pytest.raises(ModelError, match=r"status 3.*could not open video"):
        get_attribute_preservation_metrics(pristine, distorted, options=options(openface_binary=str(exe)))


def test_bad_csvs(pristine: Path, distorted: Path, tmp_path: Path) -> None:
    src, _ = series(5)
    good = tmp_path / "good.csv"
    good.write_text(openface_csv(src))
    with pytest.raises(ConfigError, match="does not exist"):
        get_attribute_preservation_metrics(
            pristine,
            distorted,
            options=options(openface_source_csv=str(good), openface_deid_csv=str(tmp_path / "absent.csv")),
        )
    no_aus = tmp_path / "no_aus.csv"
    no_aus.write_text(openface_csv(src, au_columns=False))
    with pytest.raises(InputError, match="AU01_r"):
        get_attribute_preservation_metrics(
            pristine, distorted, options=options(openface_source_csv=str(no_aus), openface_deid_csv=str(good))
        )
    with pytest.raises(InputError, match="'frame' column"):
        get_attribute_preservation_metrics(
            pristine,
            distorted,
            options=options(
                openface_source_csv=str(good),
                openface_deid_csv=str(_write(tmp_path / "noframe.csv", openface_csv(src, frame_column=False))),
                openface_match="frame",
            ),
        )


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"au_source": "openface", "openface_csv": "x.csv"}, "unknown key"),
        ({"au_source": "dlib"}, "au_source"),
        ({"openface_binary": "FeatureExtraction"}, "only used with au_source = 'openface'"),
        ({"au_source": "openface", "adaptive_neutral": False}, "only used with au_source = 'mesh'"),
        ({"au_source": "openface", "openface_match": "nearest"}, "openface_match"),
        ({"au_source": "openface", "openface_timeout": 0}, "openface_timeout"),
        ({"au_source": "openface", "openface_min_confidence": 1.5}, "openface_min_confidence"),
        ({"au_source": "openface", "openface_binary": ""}, "openface_binary"),
    ],
)
def test_bad_options(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        expression_options(RunConfig(options={"expression": table}))


def test_live_and_non_file_inputs_are_config_errors(pristine: Path, tmp_path: Path) -> None:
    csv_path = _write(tmp_path / "a.csv", openface_csv(series(6)[0]))
    table = {"au_source": "openface", "openface_source_csv": str(csv_path), "openface_deid_csv": str(csv_path)}

    def evaluate(**fields: Any) -> None:
        config = RunConfig(metrics=["expression"], log=None, report=None, options={"expression": table}, **fields)
        asyncio.run(evaluation.evaluate(config.validate()))

    with pytest.raises(ConfigError, match="live"):
        evaluate(source="rtsp://127.0.0.1:9/a", deid="rtsp://127.0.0.1:9/b", live=True)
    del table["openface_deid_csv"]
    with pytest.raises(ConfigError, match=r"deid stream is 'rtsp://127\.0\.0\.1:9/b'.*openface_deid_csv"):
        evaluate(source=str(pristine), deid="rtsp://127.0.0.1:9/b")


def test_csv_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "aus").mkdir()
    csv_path = _write(tmp_path / "aus" / "src.csv", openface_csv(series(7)[0]))
    toml = tmp_path / "run.toml"
    toml.write_text('[expression]\nau_source = "openface"\nopenface_source_csv = "aus/src.csv"\n')
    config = load_config(toml)
    assert expression_options(config).openface.source_csv == csv_path
