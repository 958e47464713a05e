"""The live terminal view: its lines from a record, the in-place redraw, and a real run on a pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

from streameval.liveview import CSI, LiveView, render
from tests.videos import VideoCase, write_video

RECORD = {
    "type": "metrics",
    "stream_id": "cam-3",
    "seq": 11,
    "window": {"end": 12.0, "length_s": 10.0},
    "deid": {"leak_rate": 0.25, "leak_rate_n": 40, "swap_rate": None, "dist_a_mean": 0.712, "threshold": 0.6},
    "expression": {"pcc_mean": 0.5812, "ccc_mean": 0.5, "rmse_mean": 0.42, "n": 300},
    "pixel": {"psnr_mean": 26.0912, "ssim_mean": 0.764},
    "coverage": {"source": 1.0, "deid": 0.75},
    "health": {
        "paired": 300,
        "dropped": 7,
        "lag_s": 0.21,
        "lag_max_s": 1.5,
        "analysis_rate": {"faces": 29.3, "identity": 5.0},
        "dropped_by_analyser": {"faces": 7, "identity": 0},
    },
}


def test_render_shows_the_record_values() -> None:
    lines = render(RECORD, {}, speed=1.234)
    text = "\n".join(lines)
    assert lines[0] == "streameval  stream cam-3  t=12.00 s  window 10.0 s  records 12  speed 1.23x"
    assert "identity    leak 0.250 (n=40)  swap –  dist A 0.712  src –  threshold 0.60" in text
    assert "expression  PCC 0.581  CCC 0.500  RMSE 0.420 (n=300)" in text
    assert "pixel       PSNR 26.09 dB  SSIM 0.764" in text
    assert "coverage    source 1.00  de-id 0.75" in text
    assert "health      pairs 300  dropped 7  lag 0.21 s (max 1.50 s)" in text
    assert "lanes       faces 29.3/s (7 dropped)  identity 5.0/s" in text
    assert lines[-1] == "alerts      none active"
    assert "reality" not in text  # a family that did not run has no line
    raised = {"leak": {"severity": "critical", "time": 9.0}}
    assert render(RECORD, raised)[-1] == "ALERTS      leak (critical, since 9.0 s)"
    narrow = render(RECORD, {}, width=30)
    assert all(len(line) <= 30 for line in narrow) and narrow[1].endswith("…")


def test_view_redraws_in_place_and_follows_alerts() -> None:
    out = io.StringIO()
    view = LiveView(out)
    view(RECORD)
    first = out.getvalue()
    n = first.count("\n")
    assert not first.startswith(CSI) or first.startswith(f"{CSI}2K")  # the first drawing moves nothing up
    view({"type": "alert", "event": "raise", "rule": "leak", "severity": "critical", "time": 12.0})
    view({**RECORD, "seq": 12, "window": {"end": 13.0, "length_s": 10.0}})
    second = out.getvalue()[len(first) :]
    assert second.startswith(f"{CSI}{n}F")  # back up over the previous drawing, then redraw every line
    assert second.count(f"{CSI}2K") == n and "ALERTS      leak (critical, since 12.0 s)" in second
    view({"type": "alert", "event": "clear", "rule": "leak", "time": 14.0})
    view({**RECORD, "seq": 13})
    assert out.getvalue().rstrip("\n").endswith("alerts      none active")
    # a drawing with fewer lines clears the rest of the previous one and returns to its end
    before = len(out.getvalue())
    view({"type": "metrics", "seq": 14, "window": {"end": 15.0, "length_s": 10.0}, "health": {}})
    tail = out.getvalue()[before:]
    assert tail.startswith(f"{CSI}{n}F") and tail.endswith(f"{CSI}{n - 3}F")


def _run_on_pty(args: list[str]) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout to /dev/null); everything it drew there."""
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "120"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streameval", *args], stdout=subprocess.DEVNULL, stderr=slave, env=env
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=120), b"".join(chunks).decode(errors="replace")


def test_replay_live_view_on_a_terminal_and_plain_lines_off_it(tmp_path: Path) -> None:
    video = write_video(
        tmp_path / "v.mp4",
        VideoCase("h264_3s", ".mp4", "libx264", "yuv420p", Fraction(30), 160, 120, 90, (("preset", "ultrafast"),)),
    )
    args = ["replay", str(video), str(video), "--no-log", "--report", str(tmp_path / "r.json"), "--window", "1s"]
    code, drawn = _run_on_pty([*args, "--live-view"])
    assert code == 0, drawn
    assert drawn.count("streameval  stream default") >= 2 and f"{CSI}2K" in drawn and "pixel       PSNR" in drawn
    assert "alerts      none active" in drawn
    # the same run without a terminal keeps the plain progress lines
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    plain = subprocess.run(
        [sys.executable, "-m", "streameval", *args, "--live-view"], capture_output=True, text=True, env=env, timeout=120
    )
    assert plain.returncode == 0 and "\x1b[" not in plain.stderr and "t=   1.00s" in plain.stderr
    # replay without --live-view on a terminal: the one progress line
    code, drawn = _run_on_pty(args)
    assert code == 0 and "streameval  stream" not in drawn and "t=" in drawn
