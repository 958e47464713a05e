"""Data loss (issue 10, cases 1-5 and 14): outputs never replace an input, a device or each other; the report is
written first and still reaches every sink when its own file cannot be written."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
from pathlib import Path
from typing import Any, Self

import pytest

from streameval import outputs
from streameval.cli import EXIT_OK, EXIT_SINK, EXIT_USAGE
from streameval.config import load_config
from streameval.errors import SinkError
from streameval.evaluation import evaluate
from streameval.sinks.base import Record
from tests.faults.helpers import (
    child_env,
    frame_region,
    one_line_error,
    records,
    report,
    run_cli,
    streameval_command,
    video,
)


def _args(tmp_path: Path, *extra: str) -> list[str]:
    good = video(tmp_path)
    return ["replay", str(good), str(good), *frame_region(tmp_path), *extra]


# -- case 1: devices, symlinks to devices, FIFOs, directories ------------------------------------------------------


@pytest.mark.parametrize("option", ["--report", "--log"])
def test_case01_fifo_output_is_refused_before_any_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)  # opening it for writing would block: a refusal decided by stat returns at once
    other = "--log" if option == "--report" else "--report"
    code, _, err = run_cli(_args(tmp_path, option, str(fifo), other, str(tmp_path / "other.json")), capsys)
    assert code == EXIT_USAGE
    assert "is a pipe (FIFO), not a regular file" in one_line_error(err)
    assert not (tmp_path / "other.json").exists()  # refused before anything was written


@pytest.mark.parametrize("option", ["--report", "--log"])
def test_case01_symlink_to_a_device_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str) -> None:
    link = tmp_path / "looks_like_a_file.json"
    link.symlink_to("/dev/null")  # only stat()ed: the refusal comes before any open
    other = "--log" if option == "--report" else "--report"
    code, _, err = run_cli(_args(tmp_path, option, str(link), other, str(tmp_path / "other.json")), capsys)
    assert code == EXIT_USAGE
    assert "is a device, not a regular file" in one_line_error(err)
    assert link.is_symlink() and os.readlink(link) == "/dev/null"


def test_case01_directory_report_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    code, _, err = run_cli(_args(tmp_path, "--report", str(folder), "--no-log"), capsys)
    assert code == EXIT_USAGE
    assert "is a directory" in one_line_error(err)
    assert list(folder.iterdir()) == []


def test_case01_symlink_to_a_regular_file_keeps_the_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "real_report.json"
    target.write_text("{}")
    link = tmp_path / "report_link.json"
    link.symlink_to(target)
    code, _, _ = run_cli(_args(tmp_path, "--report", str(link), "--no-log"), capsys)
    assert code == EXIT_OK
    assert link.is_symlink()  # os.replace on the link itself would have turned it into a plain file
    assert report(target)["status"] == "complete"


def test_case01_atomic_write_uses_a_unique_temp_name_and_never_replaces_a_device(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SinkError, match="not a regular file"):
        outputs.write_file_atomic(fifo, "{}")
    target = tmp_path / "r.json"
    target.write_text("old")
    target.chmod(0o640)
    (tmp_path / ".r.json.tmp").write_text("someone else's temp file")  # the old fixed temp name
    outputs.write_file_atomic(target, '{"new": 1}\n')
    assert target.read_text() == '{"new": 1}\n'
    assert target.stat().st_mode & 0o777 == 0o640
    assert (tmp_path / ".r.json.tmp").read_text() == "someone else's temp file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".r.json.tmp", "fifo", "r.json"]


# -- case 2: an output that is an input --------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--report", "--log"])
def test_case02_output_naming_an_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    good = video(tmp_path)
    before = good.read_bytes()
    alias = tmp_path / "alias.mp4"
    alias.symlink_to(good)  # the same file under another name
    code, _, err = run_cli(
        ["replay", str(good), str(good), *frame_region(tmp_path), option, str(alias)]
        + (["--no-log"] if option == "--report" else ["--report", str(tmp_path / "r.json")]),
        capsys,
    )
    assert code == EXIT_USAGE
    assert "refusing to overwrite an input" in one_line_error(err)
    assert good.read_bytes() == before


def test_case02_report_naming_a_reference_image_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = video(tmp_path)
    ref = tmp_path / "ref.png"
    ref.write_bytes(b"not really a png, never read")
    cfg = tmp_path / "ref.toml"
    cfg.write_text(f'[identity]\nref_a = "{ref}"\n[pixel]\nregion = "frame"\n')
    code, _, err = run_cli(["replay", str(good), str(good), "--config", str(cfg), "--report", str(ref)], capsys)
    assert code == EXIT_USAGE
    assert "[identity] ref_a" in one_line_error(err)
    assert ref.read_bytes() == b"not really a png, never read"


# -- case 3: --log and --report naming one file --------------------------------------------------------------------


def test_case03_log_and_report_on_one_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.json"
    code, _, err = run_cli(_args(tmp_path, "--log", str(out), "--report", str(out)), capsys)
    assert code == EXIT_USAGE
    assert "both name" in one_line_error(err)
    assert not out.exists()


# -- case 4: the report record reaches the sinks when its file cannot be written -----------------------------------


def test_case04_report_record_reaches_the_log_when_the_file_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.tempfile, "mkstemp", full)  # the report's folder is full at the end of the run
    log = tmp_path / "log.jsonl"
    code, _, err = run_cli(_args(tmp_path, "--log", str(log), "--report", str(tmp_path / "r.json")), capsys)
    assert code == EXIT_SINK
    assert "disk full" in one_line_error(err)
    last = records(log)[-1]
    assert last["type"] == "report" and last["status"] == "complete"
    assert last["pairing"]["paired"] == 30
    assert not (tmp_path / "r.json").exists()


class RecordingSink:
    """A sink that keeps what it gets; records with an ``event`` in ``fail_on`` raise SinkError like a broken
    output."""

    def __init__(self, fail_on: frozenset[str] = frozenset()) -> None:
        self.fail_on = fail_on
        self.records: list[Record] = []
        self.closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.closed = True

    async def publish(self, record: Record) -> None:
        if record.get("event") in self.fail_on:
            raise SinkError(f"test sink refuses {record.get('event')} events")
        self.records.append(record)


# -- case 5: end-of-run alert events cannot prevent the report -----------------------------------------------------


def test_case05_failing_alert_publish_does_not_prevent_the_report(tmp_path: Path) -> None:
    good = video(tmp_path)
    cfg = tmp_path / "alerts.toml"
    cfg.write_text(
        '[pixel]\nregion = "frame"\n[[alerts]]\nname = "always"\nwhen = "health.paired > 0"\n'
        'clear = "health.paired < 0"\nfor = "0s"\n'
    )
    config = load_config(cfg, {"source": str(good), "deid": str(good), "log": None, "report": str(tmp_path / "r.json")})
    broken, working = RecordingSink(fail_on=frozenset({"active_at_end"})), RecordingSink()
    with pytest.raises(SinkError, match="refuses active_at_end"):
        asyncio.run(evaluate(config, sinks=[broken, working]))
    data = report(tmp_path / "r.json")
    assert data["status"] == "complete"
    assert data["alerts"]["active_at_end"] and data["alerts"]["active_at_end"][0]["rule"] == "always"
    # the working sink got the end-of-run alert and the report; the broken one still got the report
    assert [r["type"] for r in working.records[-2:]] == ["alert", "report"]
    assert broken.records[-1]["type"] == "report"
    assert broken.closed and working.closed


# -- case 14: the report's sink counts are taken after the sinks close ----------------------------------------------


def test_case14_sink_counts_in_the_report_are_final(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.mqtt_broker import free_port

    port = free_port()  # nothing listens there: every record is abandoned when the sink closes
    sink = f"mqtt://127.0.0.1:{port}/t?flush_timeout=0.3&timeout=0.5"
    code, _, _ = run_cli(_args(tmp_path, "--sink", sink, "--no-log", "--report", str(tmp_path / "r.json")), capsys)
    assert code == EXIT_OK
    (mqtt,) = report(tmp_path / "r.json")["sinks"]
    assert mqtt["type"] == "MqttSink"
    assert mqtt["sent"] == 0 and mqtt["accepted"] > 0
    # every record published (metrics and the report itself) was abandoned at close, none left buffered
    assert mqtt["abandoned"] == mqtt["accepted"] and mqtt["buffered"] == 0


def test_case02_deidentify_onto_its_own_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = video(tmp_path)
    before = good.read_bytes()
    for dst in (good, tmp_path / "." / good.name):
        code, _, err = run_cli(["deidentify", str(good), str(dst), "--method", "blur"], capsys)
        assert code == EXIT_USAGE
        assert "is the input video" in one_line_error(err)
    assert good.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [good.name]


def test_case04_report_record_reaches_every_working_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(outputs.tempfile, "mkstemp", read_only)
    good = video(tmp_path)
    overrides = {"source": str(good), "deid": str(good), "log": None, "report": str(tmp_path / "r.json")}
    config = load_config(None, {**overrides, "pixel": {"region": "frame"}})
    first, second = RecordingSink(), RecordingSink()
    with pytest.raises(SinkError, match="Read-only file system"):
        asyncio.run(evaluate(config, sinks=[first, second]))
    for sink in (first, second):
        assert sink.records[-1]["type"] == "report" and sink.records[-1]["status"] == "complete"
        assert sink.closed


@pytest.mark.parametrize("path", ["/dev/stdout", "/dev/stderr", "/proc/self/fd/1", "/dev/fd/2"])
def test_case01_standard_streams_are_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    code, _, err = run_cli(_args(tmp_path, "--report", path, "--no-log"), capsys)
    assert code == EXIT_USAGE
    assert f"--report {path}: is a standard stream of this process" in one_line_error(err)


def test_case01_report_onto_the_file_stdout_goes_to(tmp_path: Path) -> None:
    """`--report captured.txt > captured.txt`: /dev/stdout by another name, a regular file, found by inode."""
    good = video(tmp_path)
    captured = tmp_path / "captured.txt"
    captured.write_text("what the shell captured\n")
    with captured.open("a") as stdout:
        proc = subprocess.run(
            streameval_command("replay", str(good), str(good), *frame_region(tmp_path), "--report", str(captured)),
            stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120, env=child_env(),
        )  # fmt: skip
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert "is standard output, not a regular file" in one_line_error(proc.stderr)
    assert captured.read_text() == "what the shell captured\n"
