"""``streameval batch`` over the example set: each pair equals its single replay, pooled values equal numpy over
every video's observations, a killed batch resumes with only the missing pairs, bad rows do not stop the rest."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from batch_helpers import assert_close, write_manifest

from streameval import windows
from streameval.analysis.base import Observation
from streameval.batch.runner import BatchSettings, run_batch
from streameval.cli import main
from streameval.metrics.expression import AU_KEYS

FAMILIES = ("deid", "expression", "reality", "coverage")
CONFIG = """\
metrics = ["identity", "expression", "reality"]
[reality]
clip_every = "2s"  # 2 clips per 4 s pair: each pair has an FID of its own, at half the I3D cost of 1s
"""


def frechet_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """Fréchet distance of the Gaussians fitted to x and y, in plain numpy: Tr((S1 S2)^½) is the nuclear norm of
    A Bᵀ with S1 = AᵀA, S2 = BᵀB (exact also for n < d, where sqrtm of the singular product is not)."""
    a = (x - x.mean(axis=0)) / math.sqrt(len(x) - 1)
    b = (y - y.mean(axis=0)) / math.sqrt(len(y) - 1)
    diff = x.mean(axis=0) - y.mean(axis=0)
    nuclear = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2.0 * nuclear)


def test_batch_equals_single_replays_and_pools_exactly(
    examples: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "eval.toml"
    cfg.write_text(CONFIG)
    manifest = write_manifest(examples, tmp_path / "m.csv")
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_batch(manifest, BatchSettings(out=out, config=str(cfg), workers=2))
    batch_s = time.monotonic() - started
    summary = result.summary
    assert result.all_complete, summary["pairs"]
    assert summary["counts"] == {"rows": 5, "complete": 5, "failed": 0, "invalid": 0, "not_run": 0}
    assert json.loads((out / "summary.json").read_text())["methods"].keys() == summary["methods"].keys()

    # Each pair again as a plain `streameval replay`, in this process, keeping every observation.
    seen: list[Observation] = []
    apply = windows.update_all

    def keep(metrics: Any, obs: Observation) -> None:
        seen.append(obs)
        apply(metrics, obs)

    monkeypatch.setattr(windows, "update_all", keep)
    observed: dict[str, list[Observation]] = {}
    started = time.monotonic()
    for row in summary["pairs"]:
        pair_cfg = cfg
        if row["method"] == "swap":
            pair_cfg = tmp_path / "eval_swap.toml"
            pair_cfg.write_text(CONFIG + f'[identity]\nref_b = "{examples["astronaut"]}"\n')
        report_path = tmp_path / f"replay_{row['id']}.json"
        seen.clear()
        argv = ["-q", "replay", row["source"], row["deid"], "--config", str(pair_cfg), "--no-log"]
        assert main([*argv, "--report", str(report_path)]) == 0
        observed[row["method"]] = list(seen)
        replay = json.loads(report_path.read_text())
        stored = json.loads((out / "pairs" / row["id"] / "report.json").read_text())
        assert stored["status"] == replay["status"] == "complete"
        assert_close(stored["paper"], replay["paper"], f"{row['id']}.paper")
        for family in FAMILIES:
            assert_close(stored["totals"][family], replay["totals"][family], f"{row['id']}.totals.{family}")
        assert_close(stored["pairing"], replay["pairing"], f"{row['id']}.pairing")
        assert (out / "pairs" / row["id"] / "records.jsonl").read_text().count("\n") == replay["stream"]["records"] + 1

    replays_s = time.monotonic() - started
    print(f"batch of 5 pairs, 2 workers: {batch_s:.1f} s; the same 5 replays one after another: {replays_s:.1f} s")
    # Pooled values against numpy over every video's observations.
    methods = summary["methods"]
    assert set(methods) == {"blur", "pixelate", "mask", "swap", "none", "overall"}
    for method, group in methods.items():
        obs = [o for m, lst in observed.items() if method in (m, "overall") for o in lst]
        clips = [o.values for o in obs if o.analyser == "reality" and "source_pool" in o.values]
        src = np.array([c["source_pool"] for c in clips], np.float64)
        deid = np.array([c["deid_pool"] for c in clips], np.float64)
        fid = group["reality"]["fid"]
        assert fid["clips_source"] == fid["clips_deid"] == len(clips) >= 2
        reference = frechet_numpy(src, deid)
        if method == "none":
            assert fid["value"] == 0.0 and abs(reference) < 1e-6 * np.trace(np.cov(src, rowvar=False))
        else:
            assert fid["value"] == pytest.approx(reference, rel=1e-6)
        assert group["paper"]["deid"]["FID"] == fid["value"]

        ident = [next(iter(o.values["distances"].values())) for o in obs if o.analyser == "identity"]
        dist_a = np.array([d["deid_a"] for d in ident if d.get("deid_a") is not None])
        assert group["leak_rate"]["n"] == group["paper"]["deid"]["A_n"] == len(dist_a)
        if len(dist_a) == 0:  # the mask leaves no face to recognise
            assert group["paper"]["deid"]["A_mean"] is None and group["leak_rate"]["rate"] is None
        else:
            assert group["paper"]["deid"]["A_mean"] == pytest.approx(dist_a.mean(), rel=1e-9)
            assert group["paper"]["deid"]["A_std"] == pytest.approx(dist_a.std(), rel=1e-6, abs=1e-9)
            assert group["leak_rate"]["rate"] == pytest.approx(float(np.mean(dist_a <= 0.6)), abs=1e-12)

        aus = [o.values for o in obs if o.analyser == "expression"]
        both = [
            (v["source_aus"], v["deid_aus"]) for v in aus if v["source_aus"] is not None and v["deid_aus"] is not None
        ]
        if not both:  # the mask leaves no face whose AUs could be compared
            assert all(group["paper"]["deid"][key] == [None, None] for key in AU_KEYS)
            continue
        a = np.array([s for s, _ in both], np.float64)
        b = np.array([d for _, d in both], np.float64)
        for j, key in enumerate(AU_KEYS):
            pcc, rmse = group["paper"]["deid"][key]
            assert rmse == pytest.approx(float(np.sqrt(np.mean((a[:, j] - b[:, j]) ** 2))), rel=1e-9)
            if method != "none" and np.std(a[:, j]) > 0 and np.std(b[:, j]) > 0:
                assert pcc == pytest.approx(float(np.corrcoef(a[:, j], b[:, j])[0, 1]), rel=1e-7, abs=1e-9)
    table = (out / "table.csv").read_text().splitlines()
    assert len(table) == 1 + 2 * 6


def _batch_cmd(manifest: Path, out: Path, cfg: Path) -> list[str]:
    return [sys.executable, "-m", "streameval.cli", "batch", str(manifest), "--out", str(out), "--config", str(cfg)]


def _complete(out: Path) -> set[str]:
    done = set()
    for meta in out.glob("pairs/*/pair.json"):
        if json.loads(meta.read_text())["status"] == "complete":
            done.add(meta.parent.name)
    return done


def _run_until(cmd: list[str], out: Path, n_done: int, sig: int) -> tuple[int, str]:
    """Start the batch in its own process group and send ``sig`` to the whole group once ``n_done`` pairs are
    complete (as Ctrl-C, or a kill, reaches the driver and its workers)."""
    proc = subprocess.Popen([*cmd, "--workers", "1"], stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and len(_complete(out)) < n_done:
        time.sleep(0.05)
    assert proc.poll() is None, "the batch ended before it could be interrupted"
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_killed_batch_resumes_with_only_the_missing_pairs(
    examples: dict[str, Path], tmp_path: Path, frame_pixel_config: Path
) -> None:
    manifest = write_manifest(examples, tmp_path / "m.csv")
    out = tmp_path / "out"
    cmd = _batch_cmd(manifest, out, frame_pixel_config)

    # A hard kill of the driver and its workers: the finished pair stays, nothing half-written counts as done.
    code, _ = _run_until(cmd, out, 1, signal.SIGKILL)
    assert code == -signal.SIGKILL
    first = _complete(out)
    assert 1 <= len(first) < 5
    mtimes = {p: (out / "pairs" / p / "report.json").stat().st_mtime_ns for p in first}

    # Ctrl-C: the workers stop, the summary is written with the pairs finished so far, exit code 130.
    code, err = _run_until(cmd, out, len(first) + 1, signal.SIGINT)
    assert code == 130, err
    second = _complete(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["counts"]["complete"] == len(second) < 5
    assert summary["run"]["skipped"] == len(first)
    assert summary["methods"]["overall"]["pairs"] == len(second)

    # The rerun replays exactly the pairs still missing and leaves the finished ones untouched.
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"] == {**summary["run"], "replays": 5 - len(second), "skipped": len(second)}
    assert summary["status"] == "complete" and summary["counts"]["complete"] == 5
    assert {p: (out / "pairs" / p / "report.json").stat().st_mtime_ns for p in first} == mtimes
    assert "ETA" in proc.stderr and "5/5 pairs complete" in proc.stderr

    # Nothing left: a further run replays nothing.
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0
    assert json.loads((out / "summary.json").read_text())["run"]["replays"] == 0


def test_bad_rows_are_reported_and_the_rest_run(
    examples: dict[str, Path], tmp_path: Path, frame_pixel_config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = {"source": str(examples["original"]), "deid": str(examples["blur"]), "method": "blur"}
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(examples["mask"].read_bytes()[:5000])
    rows = [
        json.dumps(good),
        json.dumps({**good, "deid": str(tmp_path / "missing.mp4")}),
        "{bad json",
        json.dumps({**good, "method": "mask", "notes": "x"}),
        json.dumps(good),
        json.dumps({**good, "method": "pixelate", "options": {"windw": "2s"}}),
        json.dumps({**good, "deid": str(truncated), "method": "mask"}),
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    code = main(["batch", str(manifest), "--out", str(out), "--config", str(frame_pixel_config), "--retries", "1"])
    assert code == 3
    summary = json.loads((out / "summary.json").read_text())
    by_row = {r["row"]: r for r in summary["pairs"]}
    assert by_row[1]["status"] == "complete"
    assert "no such file" in by_row[2]["error"] and by_row[2]["status"] == "invalid"
    assert "not valid JSON" in by_row[3]["error"]
    assert "unknown column(s) notes" in by_row[4]["error"]
    assert "duplicate of the pair on line 1" in by_row[5]["error"]
    assert "options: unknown key 'windw'" in by_row[6]["error"]
    assert by_row[7]["status"] == "failed" and by_row[7]["attempts"] == 2 and "InputError" in by_row[7]["error"]
    assert summary["counts"] == {"rows": 7, "complete": 1, "failed": 1, "invalid": 5, "not_run": 0}
    assert "manifest line 4: unknown column(s) notes" in caplog.text
    pairs_csv = (out / "pairs.csv").read_text().splitlines()
    assert len(pairs_csv) == 8 and pairs_csv[0].startswith("row,id,method,status")
