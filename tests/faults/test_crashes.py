"""Crashes (issue 10, case 9): each of these ended with exit 70 and a traceback; each now has its documented exit
code and one line on stderr."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from streameval import outputs
from streameval.cli import EXIT_OK, EXIT_SINK, EXIT_USAGE
from streameval.sinks.jsonl import JsonLinesSink
from tests.faults.helpers import child_env, frame_region, one_line_error, report, run_cli, streameval_command, video


class FullFile(io.TextIOBase):
    """What a file on a full disk (or /dev/full) does: every write that reaches the device fails with ENOSPC."""

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_case09_log_on_dev_full_is_refused_as_a_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = video(tmp_path)
    assert os.path.exists("/dev/full")  # stat()ed only: the refusal comes before any open
    code, _, err = run_cli(
        [
            "replay",
            str(good),
            str(good),
            *frame_region(tmp_path),
            "--log",
            "/dev/full",
            "--report",
            str(tmp_path / "r"),
        ],
        capsys,
    )
    assert code == EXIT_USAGE
    assert "/dev/full: is a device" in one_line_error(err)
    assert not (tmp_path / "r").exists()


def test_case09_log_on_a_full_disk_is_an_output_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(JsonLinesSink, "_open_file", staticmethod(lambda path: FullFile()))
    good = video(tmp_path)
    code, _, err = run_cli(
        ["replay", str(good), str(good), *frame_region(tmp_path), "--log", str(tmp_path / "log.jsonl"),
         "--report", str(tmp_path / "r.json")],
        capsys,
    )  # fmt: skip
    assert code == EXIT_SINK
    assert "disk full" in one_line_error(err)
    data = report(tmp_path / "r.json")  # the report still says what happened
    assert data["status"] == "failed" and "disk full" in data["error"]


def test_case09_report_in_a_new_folder_on_a_read_only_file_system(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root ignores permission bits, so the read-only mount is emulated where the kernel would report it:
    # access(2) says EROFS for every caller on a read-only mount, and mkdir(2) fails with EROFS.
    readonly = tmp_path / "ro"
    readonly.mkdir()
    real_access = os.access

    def access(path: Any, mode: int, **kwargs: Any) -> bool:
        return False if Path(path) == readonly and mode & os.W_OK else real_access(path, mode, **kwargs)

    monkeypatch.setattr(outputs.os, "access", access)
    good = video(tmp_path)
    target = readonly / "new" / "r.json"
    code, _, err = run_cli(
        ["replay", str(good), str(good), *frame_region(tmp_path), "--no-log", "--report", str(target)], capsys
    )
    assert code == EXIT_SINK
    assert f"cannot write in {readonly}" in one_line_error(err)


def test_case09_report_folder_that_fails_at_the_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file system turns read-only during the run: mkdir fails at the end, the log still gets the report."""
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.name == "new":
            raise OSError(errno.EROFS, "Read-only file system")
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    good = video(tmp_path)
    log = tmp_path / "log.jsonl"
    code, _, err = run_cli(
        ["replay", str(good), str(good), *frame_region(tmp_path), "--log", str(log),
         "--report", str(tmp_path / "new" / "r.json")],
        capsys,
    )  # fmt: skip
    assert code == EXIT_SINK
    assert "Read-only file system" in one_line_error(err)
    assert json.loads(log.read_text().splitlines()[-1])["type"] == "report"


def test_case09_config_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes('stream_id = "caméra"\n'.encode("latin-1"))
    code, _, err = run_cli(["replay", "--config", str(cfg)], capsys)
    assert code == EXIT_USAGE
    assert "is not valid UTF-8 (byte 16" in one_line_error(err)


def test_case09_metrics_list_of_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = video(tmp_path)
    cfg = tmp_path / "nested.toml"
    cfg.write_text(f'source = "{good}"\ndeid = "{good}"\nmetrics = [["pixel"]]\n')
    code, _, err = run_cli(["replay", "--config", str(cfg)], capsys)
    assert code == EXIT_USAGE
    assert "metrics: expected family names" in one_line_error(err)


def test_case09_stdout_closed(tmp_path: Path) -> None:
    good = video(tmp_path)
    args = ["replay", str(good), str(good), *frame_region(tmp_path), "--report", str(tmp_path / "r.json")]
    command = " ".join(f"'{a}'" for a in streameval_command(*args))
    proc = subprocess.run(["bash", "-c", f"exec {command} >&-"], capture_output=True, text=True, env=child_env())
    assert proc.returncode == EXIT_SINK, proc.stderr
    assert "standard output is closed" in one_line_error(proc.stderr)
    # with a log file the closed stdout does not matter
    log = ["--log", str(tmp_path / "log.jsonl")]
    command = " ".join(f"'{a}'" for a in streameval_command("-q", *args, *log))
    proc = subprocess.run(["bash", "-c", f"exec {command} >&-"], capture_output=True, text=True, env=child_env())
    assert proc.returncode == EXIT_OK, proc.stderr
    assert report(tmp_path / "r.json")["status"] == "complete"


def test_case09_stream_id_longer_than_an_mqtt_topic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = video(tmp_path)
    code, _, err = run_cli(
        ["replay", str(good), str(good), "--stream-id", "x" * 65_536, "--sink", "mqtt://127.0.0.1:1/p"], capsys
    )
    assert code == EXIT_USAGE
    line = one_line_error(err)
    assert "stream_id: 65536 bytes long" in line and len(line) < 300
