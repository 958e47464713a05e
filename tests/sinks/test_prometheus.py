"""The Prometheus endpoint: scraped over HTTP during real runs and parsed with prometheus-client's own parser."""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streameval.config import load_config
from streameval.errors import ConfigError, UsageError
from streameval.evaluation import evaluate
from streameval.sinks.base import Record
from streameval.sinks.prometheus import (
    PrometheusSettings,
    PrometheusSink,
    families_from_metrics,
    parse_metrics_port,
    parse_prometheus_url,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> tuple[Samples, dict[str, str]]:
    """Every sample of the endpoint by (name, labels), and each family's type, via prometheus-client's parser."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, types


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def key(name: str, stream: str = "default", **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset({"stream_id": stream, **labels}.items())


RECORD: dict[str, Any] = {
    "type": "metrics",
    "window": {"start": 0.0, "end": 12.5},
    "deid": {
        "recogniser": "dlib_resnet_v1",
        "leak_rate": 0.25,
        "dlib": {"leak_rate": 0.25, "swap_rate": None, "dist_a_mean": 0.7},
        "insightface": {"leak_rate": 0.5, "swap_rate": 0.1, "dist_a_mean": float("nan")},
    },
    "expression": {"pcc_mean": 0.62, "ccc_mean": None, "rmse_mean": 0.49},
    "reality": {"fid": 2.75},
    "pixel": {"psnr_mean": 26.7, "ssim_mean": 0.93},
    "coverage": {"source": 1.0, "deid": 0.8},
    "health": {
        "paired": 300,
        "unpaired_source": 2,
        "unpaired_deid": 0,
        "dropped_by_analyser": {"faces": 3, "identity": 0},
        "analysis_rate": {"faces": 30.0, "identity": 5.0},
        "lag_s": 0.2,
        "lag_max_s": 1.5,
        "lag_p99_s": 1.2,
        "source_stream": {"decoded": 616, "dropped": 1},
        "deid_stream": {"decoded": 617, "dropped": 0},
    },
}


def test_families_from_a_hand_made_record() -> None:
    fams = {f.name: f for f in families_from_metrics(RECORD)}
    values = {(name, tuple(sorted(labels.items()))): v for name, f in fams.items() for labels, v in f.samples}
    assert values[("streameval_leak_rate_ratio", (("recogniser", "dlib"),))] == 0.25
    assert values[("streameval_leak_rate_ratio", (("recogniser", "insightface"),))] == 0.5
    assert values[("streameval_lag_p99_seconds", ())] == 1.2 and values[("streameval_lag_max_seconds", ())] == 1.5
    # null and NaN are left out, not exported as NaN
    assert ("streameval_swap_rate_ratio", (("recogniser", "dlib"),)) not in values
    assert ("streameval_distance_to_a_mean", (("recogniser", "insightface"),)) not in values
    assert "streameval_au_ccc_mean" not in fams
    assert values[("streameval_au_pcc_mean", ())] == 0.62
    assert values[("streameval_fid", ())] == 2.75
    assert values[("streameval_face_coverage_ratio", (("side", "deid"),))] == 0.8
    assert values[("streameval_window_dropped_pairs", (("lane", "faces"),))] == 3
    assert values[("streameval_analyses_per_second", (("lane", "identity"),))] == 5.0
    assert values[("streameval_frames_decoded_total", (("side", "deid"),))] == 617
    assert fams["streameval_frames_decoded_total"].kind == "counter"
    assert values[("streameval_stream_time_seconds", ())] == 12.5
    # a record with one recogniser at the top level of its deid block
    single = families_from_metrics({"type": "metrics", "deid": {"recogniser": "arcface", "leak_rate": 0.0}})
    expected = [("streameval_leak_rate_ratio", (({"recogniser": "arcface"}, 0.0),))]
    assert [(f.name, f.samples) for f in single] == expected


def test_endpoint_urls_and_ports() -> None:
    assert parse_metrics_port("9200") == PrometheusSettings("127.0.0.1", 9200)
    assert parse_metrics_port("0.0.0.0:9200") == PrometheusSettings("0.0.0.0", 9200)
    assert parse_metrics_port("[::1]:9200") == PrometheusSettings("::1", 9200)
    assert parse_prometheus_url("prometheus://:9300") == PrometheusSettings("127.0.0.1", 9300)
    for bad in ("http://x:1", "prometheus://host", "prometheus://u:p@host:1", "prometheus://h:1/path"):
        with pytest.raises(UsageError):
            parse_prometheus_url(bad)
    for bad_port in ("abc", "70000", "host:"):
        with pytest.raises(UsageError):
            parse_metrics_port(bad_port)
    with pytest.raises(ConfigError, match="metrics_port"):
        load_config(None, {"metrics_port": "nope"})
    assert load_config(None, {"metrics_port": 9109}).metrics_port == "9109"


def test_scraped_values_equal_each_record_during_a_replay(tmp_path: Path, examples: dict[str, Path]) -> None:
    """Scrape after every record of a real run (models on): each scrape equals that record's values."""
    sink = PrometheusSink(PrometheusSettings("127.0.0.1", 0), stream_id="cam-7")
    config = load_config(
        None,
        {
            "source": str(examples["original"]),
            "deid": str(examples["swap"]),
            "metrics": ["identity", "expression", "pixel"],
            "stream_id": "cam-7",
            "log": None,
            "report": str(tmp_path / "report.json"),
            "window": 2.0,
            "hop": 1.0,
            # an alert that raises on this pair (the swap keeps expressions): its state must show up
            "alerts": [{"name": "expr_ok", "when": "expression.pcc_mean > 0", "severity": "info"}],
        },
    )
    checked: list[float] = []

    def check(record: Record) -> None:
        if record.get("type") not in ("metrics", "alert"):
            return
        samples, types = scrape(sink.port)
        assert samples[key("streameval_records_total", "cam-7", type="metrics")] >= 1
        if record["type"] == "alert":
            expected = 1.0 if record["event"] == "raise" else 0.0
            assert samples[key("streameval_alert_active", "cam-7", rule="expr_ok", severity="info")] == expected
            return
        expected_values = {
            key("streameval_leak_rate_ratio", "cam-7", recogniser="dlib"): record["deid"]["dlib"]["leak_rate"],
            key("streameval_au_pcc_mean", "cam-7"): record["expression"]["pcc_mean"],
            key("streameval_pixel_ssim", "cam-7"): record["pixel"]["ssim_mean"],
            key("streameval_face_coverage_ratio", "cam-7", side="source"): record["coverage"]["source"],
            key("streameval_lag_seconds", "cam-7"): record["health"]["lag_s"],
            key("streameval_window_pairs", "cam-7", kind="paired"): record["health"]["paired"],
            key("streameval_analyses_per_second", "cam-7", lane="identity"): record["health"]["analysis_rate"][
                "identity"
            ],
            key("streameval_window_dropped_pairs", "cam-7", lane="faces"): record["health"]["dropped_by_analyser"][
                "faces"
            ],
            key("streameval_frames_decoded_total", "cam-7", side="deid"): record["health"]["deid_stream"]["decoded"],
            key("streameval_stream_time_seconds", "cam-7"): record["window"]["end"],
        }
        for k, want in expected_values.items():
            if want is None:
                assert k not in samples, k
            else:
                assert math.isclose(samples[k], float(want), rel_tol=1e-12), (k, samples[k], want)
        assert types["streameval_frames_decoded"] == "counter" and types["streameval_lag_seconds"] == "gauge"
        checked.append(float(record["window"]["end"]))

    report = asyncio.run(evaluate(config, sinks=[sink], on_record=check))
    assert report["status"] == "complete"
    assert len(checked) >= 3
    with pytest.raises(OSError):  # the endpoint closes with the run
        scrape(sink.port)


def test_cli_serves_during_a_live_paced_replay(tmp_path: Path, examples: dict[str, Path]) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [
        sys.executable, "-m", "streameval", "replay", str(examples["original"]), str(examples["blur"]),
        "--realtime", "--no-log", "--report", str(tmp_path / "r.json"), "--metrics-port", str(port),
        "--stream-id", "door", "--window", "2s",
    ]  # fmt: skip
    with subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) as proc:
        samples: Samples = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                samples, types = scrape(port)
            except OSError:
                time.sleep(0.2)
                continue
            if key("streameval_pixel_ssim", "door") in samples:
                break
            time.sleep(0.2)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert 0 < samples[key("streameval_pixel_ssim", "door")] <= 1
    assert samples[key("streameval_face_coverage_ratio", "door", side="source")] > 0.9
    assert types["streameval_records"] == "counter"
    report = json.loads((tmp_path / "r.json").read_text())
    (listed,) = [s for s in report["sinks"] if s["type"] == "PrometheusSink"]
    assert listed["endpoint"] == f"http://127.0.0.1:{port}/metrics" and listed["written"] >= 3


def test_port_in_use_is_a_usage_error(tmp_path: Path, examples: dict[str, Path]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        cmd = [
            sys.executable, "-m", "streameval", "replay", str(examples["original"]), str(examples["blur"]),
            "--no-log", "--report", str(tmp_path / "r.json"), "--metrics-port", str(port),
        ]  # fmt: skip
        proc = subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2, proc.stderr
    assert f"cannot serve Prometheus metrics on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
