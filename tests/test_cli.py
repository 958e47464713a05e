"""The command line end to end: the issue's acceptance run on real video, bad input, signals, config files."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from streameval.cli import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main, summary
from streameval.datasets import example_video
from tests.videos import CASES, write_audio_only, write_video, write_zero_frames

H264 = CASES[0]


def run_cli(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, Any]], str]:
    log = tmp_path / "records.jsonl"
    code = main(["-q", *args, "--log", str(log), "--report", str(tmp_path / "report.json")])
    err = capsys.readouterr().err
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return code, records, err


def frame_region(folder: Path) -> list[str]:
    """CLI arguments for PSNR/SSIM over whole frames (the default region is the source face)."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "frame_region.toml"
    cfg.write_text('[pixel]\nregion = "frame"\n')
    return ["--config", str(cfg)]


def decode(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]


def test_carphone_replay_matches_scikit_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pristine, distorted = example_video("carphone_pristine"), example_video("carphone_distorted")
    code, records, _ = run_cli(
        ["replay", str(pristine), str(distorted), "--window", "1s", "--hop", "1s", *frame_region(tmp_path)],
        tmp_path,
        capsys,
    )
    assert code == EXIT_OK
    metrics = [r for r in records if r["type"] == "metrics"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert records[-1]["type"] == "report" and report["status"] == "complete"

    # Independent reference: decode both files with PyAV, pair by frame, score with scikit-image.
    a, b = decode(pristine), decode(distorted)
    assert len(a) == len(b) == 120
    t0 = a[0][0]
    times = np.array([t - t0 for t, _ in a])
    luma = np.array([0.299, 0.587, 0.114])
    psnr = np.array([peak_signal_noise_ratio(x, y, data_range=255) for (_, x), (_, y) in zip(a, b, strict=True)])
    ssim = np.array(
        [
            structural_similarity(
                x @ luma, y @ luma, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
            )
            for (_, x), (_, y) in zip(a, b, strict=True)
        ]
    )
    # One record per second of stream (120 frames at 29.97 fps = 4.0 s: ends 1, 2, 3, then the final tail).
    ends = [r["window"]["end"] for r in metrics]
    assert ends[:3] == [1.0, 2.0, 3.0] and metrics[-1]["window"]["final"]
    assert len(metrics) == 4
    for rec in metrics:
        end = rec["window"]["end"]
        sel = (times > end - 1.0 + 1e-9) & (times <= end + 1e-9)
        assert rec["pixel"]["psnr_n"] == sel.sum() == rec["health"]["paired"]
        assert rec["pixel"]["region"] == "frame"
        # Tolerance: the same definitions. PSNR is exact (only summation order differs); our SSIM runs in
        # float32 (OpenCV), within 3e-6 of scikit-image's float64 per frame (measured 1.0e-6 on this clip).
        assert rec["pixel"]["psnr_mean"] == pytest.approx(psnr[sel].mean(), rel=1e-9)
        assert rec["pixel"]["ssim_mean"] == pytest.approx(ssim[sel].mean(), abs=3e-6)
    totals = report["totals"]["pixel"]
    assert totals["psnr_mean"] == pytest.approx(psnr.mean(), rel=1e-9)
    assert totals["ssim_mean"] == pytest.approx(ssim.mean(), abs=3e-6)
    assert totals["psnr_std"] == pytest.approx(psnr.std(), rel=1e-6)
    assert report["pairing"]["paired"] == 120 and report["pairing"]["unpaired_source"] == 0


def test_config_file_is_equivalent_to_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = write_video(tmp_path / "v.mp4", H264)
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        'source = "v.mp4"\ndeid = "v.mp4"\nwindow = "500ms"\nhop = 0.5\nrate = { pixel = 10 }\n'
        '[pixel]\nregion = "frame"\n'
    )
    code, from_file, _ = run_cli(["replay", "--config", str(cfg)], tmp_path / "a", capsys)
    assert code == EXIT_OK
    flags = ["--window", "0.5s", "--hop", "500ms", "--rate", "pixel=10", *frame_region(tmp_path / "b")]
    code, from_flags, _ = run_cli(["replay", str(video), str(video), *flags], tmp_path / "b", capsys)
    assert code == EXIT_OK

    def values(records: list[dict[str, Any]]) -> list[Any]:
        return [(r["window"], r["pixel"], r["health"]["paired"]) for r in records if r["type"] == "metrics"]

    assert values(from_file) == values(from_flags)
    assert from_file[0]["pixel"]["ssim_mean"] == pytest.approx(1.0)  # the same video on both sides
    assert from_file[0]["pixel"]["null_reasons"]["psnr_mean"].startswith("identical frames")


def test_different_resolutions_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small = write_video(tmp_path / "small.mp4", H264)
    big = write_video(tmp_path / "big.mp4", replace(H264, name="big", width=320, height=240))
    code, records, _ = run_cli(["replay", str(small), str(big), *frame_region(tmp_path)], tmp_path, capsys)
    assert code == EXIT_OK
    report = records[-1]
    assert report["pairing"]["paired"] == H264.frames
    assert report["inputs"]["deid"]["rescaled_to"] == [H264.width, H264.height]  # at decode, not per pair
    assert report["totals"]["pixel"]["ssim_mean"] > 0.5  # same content after resizing


def one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: (d / "junk.mp4").write_bytes(random.Random(0).randbytes(5000)) and d / "junk.mp4", "not a readable"),
        (lambda d: write_audio_only(d / "audio.wav"), "no video stream"),
        (lambda d: write_zero_frames(d / "empty.avi"), "no video frames"),
    ],
    ids=["missing", "corrupt", "audio-only", "zero-frames"],
)
def test_bad_input_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, message: str) -> None:
    good = write_video(tmp_path / "good.mp4", H264)
    bad = make(tmp_path)
    code, _, err = run_cli(["replay", str(good), str(bad)], tmp_path, capsys)
    assert code == EXIT_INPUT
    line = one_line_error(err)
    assert line.startswith("streameval: error:") and message in line


def test_truncated_input_reports_what_was_measured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full = write_video(tmp_path / "fs.mp4", H264, container_options={"movflags": "+faststart"})
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    code, records, err = run_cli(["replay", str(full), str(cut)], tmp_path, capsys)
    assert code == EXIT_INPUT
    assert "truncated" in one_line_error(err)
    report = json.loads((tmp_path / "report.json").read_text())
    assert 0 < report["pairing"]["paired"] < H264.frames
    assert report["pairing"]["unpaired_source"] == H264.frames - report["pairing"]["paired"]
    assert report["inputs"]["deid"]["stats"]["end_reason"] == "truncated"
    assert records[-1]["type"] == "report"


def test_unreachable_url_in_replay_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_video(tmp_path / "good.mp4", H264)
    code, _, err = run_cli(["replay", str(good), "tcp://127.0.0.1:9", "--read-timeout", "2s"], tmp_path, capsys)
    assert code == EXIT_INPUT
    assert "127.0.0.1:9" in one_line_error(err)


@pytest.mark.parametrize(
    "args",
    [
        ["--window", "0s"],
        ["--window", "1s", "--hop", "2s"],
        ["--hop", "soon"],
        ["--offset", "1 fortnight"],
        ["--pair", "nearest"],
        ["--metrics", "telepathy"],
        ["--rate", "pixel"],
        ["--rate", "ghost=5"],
        ["--sink", "kafka://x"],
    ],
)
def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    good = write_video(tmp_path / "good.mp4", H264)
    code, _, err = run_cli(["replay", str(good), str(good), *args], tmp_path, capsys)
    assert code == EXIT_USAGE
    assert "Traceback" not in err and "error" in err


def test_both_streams_from_stdin_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["replay", "-", "-"], tmp_path, capsys)
    assert code == EXIT_USAGE
    assert "standard input" in one_line_error(err)


def test_unknown_config_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('source = "a.mp4"\ndeid = "b.mp4"\nwindw = "10s"\n')
    code, _, err = run_cli(["replay", "--config", str(cfg)], tmp_path, capsys)
    assert code == EXIT_USAGE
    assert "unknown key 'windw'" in one_line_error(err)


def test_sigint_writes_the_report(tmp_path: Path) -> None:
    pristine = example_video("carphone_pristine")
    report = tmp_path / "report.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streameval.cli", "-q", "replay", str(pristine), str(pristine), "--realtime",
         "--log", str(tmp_path / "log.jsonl"), "--report", str(report), "--hop", "0.5s", *frame_region(tmp_path)],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    # the 4 s clip is paced at its frame rate: interrupt once two records (1 s of stream) are out, however long
    # start-up took on a loaded machine
    log_file = tmp_path / "log.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if log_file.exists() and log_file.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_INTERRUPTED, err
    data = json.loads(report.read_text())
    assert data["status"] == "interrupted"
    assert 10 < data["pairing"]["paired"] < 120
    # Pairs still queued for analysis when the signal came are not waited for (at most the queue plus one).
    analysed = data["totals"]["pixel"]["ssim_n"]
    assert data["pairing"]["paired"] - (4 + 1) <= analysed <= data["pairing"]["paired"]
    assert data["totals"]["health"]["analysed"]["pixel"] == analysed
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["type"] == "report"


def test_summary_shows_the_whole_stream_values() -> None:
    report = {
        "status": "complete",
        "pairing": {"paired": 120, "unpaired_source": 1, "unpaired_deid": 2},
        "totals": {
            "deid": {"recogniser": "dlib", "threshold": 0.6, "leak_rate": 0.025, "swap_rate": None,
                     "dist_a_mean": 0.748, "dist_b_mean": None},
            "reality": {"fid": 4.5725, "clips": 7, "fid_low_n": True},
            "pixel": {"psnr_mean": 32.541, "ssim_mean": 0.9512},
        },
        "alerts": {"events": [{"event": "raise"}], "active_at_end": []},
        "report_path": "r.json",
    }  # fmt: skip
    lines = summary(report).splitlines()
    assert lines[0] == "status: complete  pairs: 120  unpaired: 1 source / 2 de-identified"
    assert lines[1] == ("identity (dlib, threshold 0.6): leak rate 0.025, swap rate n/a, distance to A 0.748, to B n/a")
    assert lines[2].startswith("reality: FID 4.57 over 7 clip pairs (few clips")
    assert lines[3] == "pixel: PSNR 32.54 dB, SSIM 0.951"
    assert lines[4:] == ["alerts: 1 events, 0 active at end", "report: r.json"]
    # the face region says so, and pairs it could not compare are counted with the way out
    report["totals"] = {"pixel": {"region": "face", "psnr_mean": None, "ssim_mean": None, "no_face_pairs": 250}}
    assert summary(report).splitlines()[1] == (
        "pixel (face region): PSNR n/a dB, SSIM n/a; 250 pairs without a source face not compared "
        "([pixel] region = 'frame': whole frames)"
    )
