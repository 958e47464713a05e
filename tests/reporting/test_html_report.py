"""The HTML report: what it draws from which data, bad input, and the page in a real headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from streameval.reporting.figures import alert_spans
from streameval.reporting.html import render
from streameval.reporting.inputs import RunRecords

CHROMIUM_NAMES = ("chromium-headless-shell", "chromium", "chromium-browser")


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-m", "streameval", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _svgs(page: str) -> list[str]:
    return [base64.b64decode(m).decode() for m in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)]


# -- a real run (session-wide: one evaluation of the example pair with every family and a firing alert) --------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, examples: dict[str, Path]) -> Path:
    out = tmp_path_factory.mktemp("html_run")
    (out / "alerts.toml").write_text(
        '[[alerts]]\nname = "expressions_kept"\nwhen = "expression.pcc_mean > 0.3"\nseverity = "info"\n'
        '[[alerts]]\nname = "low_ssim"\nwhen = "pixel.ssim_mean < 0.99"\nclear = "pixel.ssim_mean > 0.995"\n'
    )
    proc = _cli(
        "-q", "replay", str(examples["original"]), str(examples["swap"]),
        "--metrics", "identity,expression,reality,pixel",
        "-c", str(out / "alerts.toml"), "--window", "2s", "--log", str(out / "log.jsonl"),
        "--report", str(out / "report.json"), "--html", str(out / "run.html"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out


def test_replay_html_and_report_command_draw_every_figure(run_dir: Path) -> None:
    page = (run_dir / "run.html").read_text()
    report = json.loads((run_dir / "report.json").read_text())
    svgs = _svgs(page)
    assert len(svgs) == 4  # time series, AU map, distance histograms, coverage and health
    assert all(s.count("<path") > 50 for s in svgs)
    assert "<script" not in page.lower() and "http://" not in page.replace("http://www.w3.org", "")
    # the paper block's numbers are on the page as the report has them
    assert f"{report['paper']['deid']['A_mean']:.4g}" in page
    assert report["alerts"]["events"] and "expressions_kept" in page
    # the command draws the same page from the files, and the PNGs
    proc = _cli("report", str(run_dir / "report.json"), str(run_dir / "log.jsonl"), "-o", str(run_dir / "cmd.html"),
                "--png", str(run_dir / "png"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _svgs((run_dir / "cmd.html").read_text()) == svgs
    assert sorted(p.name for p in (run_dir / "png").iterdir()) == [
        "au_map.png", "distances.png", "health.png", "timeseries.png",
    ]  # fmt: skip


def test_report_without_log_or_families_draws_what_it_can(run_dir: Path) -> None:
    report = json.loads((run_dir / "report.json").read_text())
    page, figures = render(RunRecords(report))  # no log: no time series
    assert [p.name for p in figures] == ["au_map", "distances"]
    assert "No JSON Lines log was given" in page
    del report["totals"]["expression"]
    report["paper"] = {}
    page, figures = render(RunRecords(report))
    assert [p.name for p in figures] == ["distances"]
    assert "Families not in this report: expression" in page


def test_alert_spans_by_hand() -> None:
    events = [
        {"event": "raise", "rule": "a", "time": 2.0},
        {"event": "clear", "rule": "a", "time": 5.0},
        {"event": "raise", "rule": "b", "time": 4.0},
        {"event": "clear", "rule": "c", "time": 1.0},  # a clear without a raise draws nothing
        {"event": "raise", "rule": "a", "time": 7.0},
    ]
    assert alert_spans(events, end=9.0) == [("a", 2.0, 5.0), ("b", 4.0, 9.0), ("a", 7.0, 9.0)]


def test_text_from_the_report_is_escaped(run_dir: Path) -> None:
    report = json.loads((run_dir / "report.json").read_text())
    report["stream_id"] = '<script>alert("id")</script>'
    report["inputs"]["source"]["spec"] = '/videos/"><img src=http://evil.example/x>.mp4'
    page, _ = render(RunRecords(report))
    assert "<script>" not in page and "<img src=http://evil" not in page
    assert "&lt;script&gt;alert(&quot;id&quot;)&lt;/script&gt;" in page


def test_bad_inputs(tmp_path: Path, run_dir: Path) -> None:
    foreign = tmp_path / "package.json"
    foreign.write_text('{"name": "left-pad", "version": "1.3.0"}')
    proc = _cli("report", str(foreign), "-o", str(tmp_path / "x.html"))
    assert proc.returncode == 3 and "is not a streameval report" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.html").exists()
    binary = tmp_path / "video.mp4"
    binary.write_bytes(bytes(range(256)) * 4)
    assert _cli("report", str(binary), "-o", str(tmp_path / "x.html")).returncode == 3
    # a log cut in the middle of its last line: drawn up to there, and the page says a line was skipped
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:-3]) + "\n" + lines[-3][: len(lines[-3]) // 2])
    proc = _cli("report", str(run_dir / "report.json"), str(cut), "-o", str(tmp_path / "cut.html"))
    assert proc.returncode == 0, proc.stderr
    assert "1 line(s) of the log could not be read" in (tmp_path / "cut.html").read_text()
    # outputs that would destroy something are refused before anything is drawn
    report_copy = tmp_path / "report.json"
    shutil.copyfile(run_dir / "report.json", report_copy)
    before = report_copy.read_bytes()
    for target in (report_copy, tmp_path):
        proc = _cli("report", str(report_copy), "-o", str(target))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert report_copy.read_bytes() == before
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = _cli("report", str(report_copy), "-o", str(fifo))
    assert proc.returncode == 2 and "not a regular file" in proc.stderr


# -- a real headless Chromium ------------------------------------------------------------------------------------
def _chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    found = _chromium()
    if found is None:
        if os.environ.get("STREAMEVAL_REQUIRE_CHROMIUM") == "1":
            pytest.fail("headless Chromium is required here (apt-get install chromium-headless-shell)")
        pytest.skip("no headless Chromium (apt-get install chromium-headless-shell)")
    return found


class _Listener:
    """A TCP port that counts connections: the browser's proxy, so any request leaving the page is seen."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def proxy() -> Iterator[_Listener]:
    listener = _Listener()
    yield listener
    listener.close()


def _browse(chromium: str, page: Path, shot: Path, proxy: _Listener) -> str:
    """Load ``page`` headless, take a screenshot; returns Chromium's log (console messages included)."""
    proc = subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--proxy-server=http://127.0.0.1:{proxy.port}", "--proxy-bypass-list=<-loopback>",
            "--enable-logging=stderr", "--v=0", "--window-size=1000,2400", "--virtual-time-budget=5000",
            f"--user-data-dir={shot.parent / 'profile'}", f"--screenshot={shot}", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shot.is_file(), proc.stderr[-2000:]
    return proc.stderr


def _console_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if "CONSOLE" in line or "Refused to" in line]


def _ink(shot: Path) -> float:
    """Share of the screenshot's pixels that are not white (the page is not blank)."""
    import av

    with av.open(str(shot)) as container:
        image = next(container.decode(video=0)).to_ndarray(format="rgb24")
    return float((image.min(axis=2) < 235).mean())


@pytest.mark.parametrize("page_name", ["run.html", "cmd.html"])
def test_page_in_headless_chromium(
    chromium: str, proxy: _Listener, run_dir: Path, tmp_path: Path, page_name: str
) -> None:
    page = run_dir / page_name
    if not page.exists():  # cmd.html comes from the command test; draw it here when run alone
        assert _cli("report", str(run_dir / "report.json"), str(run_dir / "log.jsonl"), "-o", str(page)).returncode == 0
    shot = tmp_path / "shot.png"
    log = _browse(chromium, page, shot, proxy)
    assert _console_errors(log) == []
    assert proxy.connections == 0  # no request left the file
    assert _ink(shot) > 0.05  # figures and tables drawn, not a blank page


def test_the_network_check_can_fail(chromium: str, proxy: _Listener, tmp_path: Path) -> None:
    """Control: a page that does fetch something is caught by the proxy, so the zero above means something."""
    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://example.invalid/pixel.png"></body></html>')
    _browse(chromium, page, tmp_path / "shot.png", proxy)
    assert proxy.connections >= 1


# -- the batch page -----------------------------------------------------------------------------------------------
BATCH_SUMMARY = Path(__file__).resolve().parents[1] / "data" / "batch_summary.json"  # a real 3-pair batch


def test_batch_summary_page(tmp_path: Path, chromium: str, proxy: _Listener) -> None:
    summary = json.loads(BATCH_SUMMARY.read_text())
    out = tmp_path / "batch.html"
    proc = _cli("report", str(BATCH_SUMMARY), "-o", str(out), "--png", str(tmp_path / "png"))
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert len(_svgs(page)) == 3 and sorted(p.name for p in (tmp_path / "png").iterdir()) == [
        "batch_au_pcc.png", "batch_fid.png", "batch_rates.png",
    ]  # fmt: skip
    # every method's pooled numbers as the summary has them
    for method, group in summary["methods"].items():
        row = re.search(rf'<tr><td class="k">{method}</td>(.*?)</tr>', page)
        assert row is not None, method
        cells = re.findall(r"<td>(.*?)</td>", row.group(1))
        assert cells[0] == str(group["pairs"])
        assert cells[1] == f"{group['paper']['deid']['A_mean']:.4g}"
        assert cells[4] == f"{group['leak_rate']['rate']:.4g}"
    assert "3 pairs complete" in page.replace("\n", " ").replace("  ", " ")
    log = _browse(chromium, out, tmp_path / "shot.png", proxy)
    assert _console_errors(log) == [] and proxy.connections == 0 and _ink(tmp_path / "shot.png") > 0.05
    # a log next to a batch summary is a usage error
    bad = _cli("report", str(BATCH_SUMMARY), str(BATCH_SUMMARY), "-o", str(tmp_path / "x.html"))
    assert bad.returncode == 2 and "a batch summary has no log" in bad.stderr


def test_html_output_never_replaces_the_run_s_inputs_or_outputs(tmp_path: Path, examples: dict[str, Path]) -> None:
    video = examples["original"]
    report, log = tmp_path / "r.json", tmp_path / "l.jsonl"
    cases = [(report, "is also the --report file"), (log, "is also the --log file"), (video, "is the source")]
    for target, message in cases:
        proc = _cli("replay", str(video), str(video), "--report", str(report), "--log", str(log), "--html", str(target))
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert not report.exists() and not log.exists()  # refused before the run
