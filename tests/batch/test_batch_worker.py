"""The worker refuses a pair when its model zoo differs from the driver's, and reports instead of raising."""

from __future__ import annotations

from pathlib import Path

from streameval.batch.worker import PairTask, models_digest, run_pair
from streameval.config import RunConfig


def test_a_worker_with_other_models_refuses_the_pair(models_dir: Path, tmp_path: Path) -> None:
    config = {**RunConfig(source="a.mp4", deid="b.mp4").__dict__, "options": {"models": {"dir": str(models_dir)}}}
    mine = models_digest(config)
    assert mine is not None and len(mine) == 64
    outcome = run_pair(PairTask("p", "m", config, models_digest="0" * 64))
    assert outcome.status == "failed"
    assert outcome.error is not None and "differs from the driver's" in outcome.error
    # the same zoo passes the check and the pair then fails on its own terms (no such video)
    outcome = run_pair(PairTask("p", "m", {**config, "source": str(tmp_path / "none.mp4")}, models_digest=mine))
    assert outcome.status == "failed" and outcome.error is not None and "InputError" in outcome.error
