"""Shared helpers of the fault suite: run the CLI in-process or as a child, read what it left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streameval.cli import main
from tests.videos import CASES, write_video

H264 = CASES[0]  # 30 frames at 25 fps, 160x120
REPO = Path(__file__).resolve().parents[2]


def video(tmp_path: Path, name: str = "good.mp4") -> Path:
    path = tmp_path / name
    return path if path.exists() else write_video(path, H264)


def frame_region(folder: Path) -> list[str]:
    """Compare whole frames: these videos hold no face, so no model is loaded."""
    cfg = folder / "frame_region.toml"
    cfg.write_text('[pixel]\nregion = "frame"\n')
    return ["--config", str(cfg)]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``streameval -q ARGS`` in this process: (exit code, stdout, stderr)."""
    code = main(["-q", *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    """The single stderr line of a failed run, after checking there is exactly one and no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert lines[0].startswith("streameval: error: "), err
    return lines[0]


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def child_env() -> dict[str, str]:
    """The environment of a child streameval: this worktree first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def streameval_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "streameval.cli", *args]


def run_child(args: list[str], timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        streameval_command(*args), capture_output=True, text=True, timeout=timeout, env=child_env(), **kwargs
    )
