"""Thread use: one BLAS/OpenMP/OpenCV thread during an evaluation (restored after), ONNX threads per role."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from streameval.analysis.face_config import model_options
from streameval.config import RunConfig
from streameval.errors import ConfigError
from streameval.evaluation import evaluate
from streameval.threads import numeric_threads, onnx_threads
from tests.videos import CASES, write_video


def _pools() -> dict[str, int]:
    """Threads of every loaded BLAS/OpenMP pool, by library file."""
    return {p["filepath"]: p["num_threads"] for p in threadpool_info()}


@pytest.mark.parametrize(
    ("role", "cores", "want"),
    [("detector", 64, 1), ("mesh", 64, 1), ("embedder", 64, 1), ("i3d", 1, 1), ("i3d", 2, 1), ("i3d", 3, 1),
     ("i3d", 4, 2), ("i3d", 64, 2)],
)  # fmt: skip
def test_onnx_threads_auto(role: Any, cores: int, want: int) -> None:
    assert onnx_threads(role, cores=cores) == want


def test_onnx_threads_configured_wins_and_bad_values_fail() -> None:
    assert onnx_threads("i3d", 3, cores=2) == 3
    assert onnx_threads("mesh", 4) == 4
    with pytest.raises(ValueError, match="unknown onnx role"):
        onnx_threads("resnet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 1"):
        onnx_threads("mesh", 0)


def test_models_threads_key() -> None:
    def opts(table: dict[str, Any]) -> int | None:
        return model_options(RunConfig(options={"models": table})).threads

    assert opts({}) is None  # 'auto'
    assert opts({"threads": "auto"}) is None
    assert opts({"threads": 2}) == 2
    for bad in (0, "two", 1.5, True):
        with pytest.raises(ConfigError, match="threads"):
            opts({"threads": bad})


def test_numeric_threads_limits_and_restores() -> None:
    with threadpool_limits(limits=3):  # a known, distinguishable "previous" setting
        before = _pools()
        with numeric_threads():
            inside = _pools()
        after = _pools()
    assert inside, "numeric_threads must load numpy/scipy so their BLAS pools exist"
    assert set(inside.values()) == {1}
    assert {k: after[k] for k in before} == before


def test_opencv_threads_limited_and_restored() -> None:
    cv2 = pytest.importorskip("cv2")
    cv2.setNumThreads(3)
    try:
        with numeric_threads():
            assert cv2.getNumThreads() == 1
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(-1)  # back to OpenCV's default


def test_evaluation_runs_with_one_numeric_thread(tmp_path: Path) -> None:
    video = write_video(tmp_path / CASES[0].filename, CASES[0])
    seen: list[dict[str, int]] = []
    config = RunConfig(source=str(video), deid=str(video), window=0.4, hop=0.4, log=None, report=None)
    with threadpool_limits(limits=2):
        before = _pools()
        report = asyncio.run(evaluate(config.validate(), on_record=lambda _record: seen.append(_pools())))
        after = _pools()
    assert report["status"] == "complete"
    assert seen
    assert all(set(pools.values()) == {1} for pools in seen)  # every loaded pool, during the whole run
    assert {k: after[k] for k in before} == before
