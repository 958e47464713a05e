"""The Ray engine on a local Ray cluster gives the same per-pair reports and the same tables as the local pool."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from batch_helpers import assert_close, write_manifest

from streameval.batch.runner import BatchSettings, run_batch

ray = pytest.importorskip("ray")

CONFIG = """\
metrics = ["identity", "expression", "reality"]
[reality]
clip_every = "2s"
"""


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[float]:
    """A local Ray instance with 2 CPUs; yields its start-up time in seconds."""
    started = time.monotonic()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield time.monotonic() - started
    finally:
        ray.shutdown()


def test_ray_engine_gives_the_local_engines_table(
    examples: dict[str, Path], tmp_path: Path, ray_cluster: float
) -> None:
    cfg = tmp_path / "eval.toml"
    cfg.write_text(CONFIG)
    manifest = write_manifest(examples, tmp_path / "m.csv", ("blur", "swap"), same=False)
    timings: dict[str, float] = {}
    results: dict[str, dict[str, Any]] = {}
    for engine in ("local", "ray"):
        started = time.monotonic()
        result = run_batch(manifest, BatchSettings(out=tmp_path / engine, config=str(cfg), workers=2, engine=engine))
        timings[engine] = time.monotonic() - started
        assert result.all_complete, result.summary["pairs"]
        assert result.summary["engine"] == engine
        results[engine] = result.summary
    local, remote = results["local"], results["ray"]
    assert_close(remote["methods"], local["methods"], "methods")
    assert local["methods"]["swap"]["paper"]["deid"]["FID"] is not None
    for row in local["pairs"]:
        a = json.loads((tmp_path / "local" / "pairs" / row["id"] / "report.json").read_text())
        b = json.loads((tmp_path / "ray" / "pairs" / row["id"] / "report.json").read_text())
        assert_close(b["paper"], a["paper"], row["id"])
    assert (tmp_path / "ray" / "table.csv").read_text() == (tmp_path / "local" / "table.csv").read_text()
    print(f"Ray start-up {ray_cluster:.1f} s; 2 pairs: local {timings['local']:.1f} s, ray {timings['ray']:.1f} s")
