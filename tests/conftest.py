"""Fixtures shared across test folders: the built model zoo and the bundled example set (made once).

Tests use the zoo built by ``streameval models build`` (the test command runs it before pytest). When it is
missing or does not verify, the tests that need it fail with that instruction instead of skipping silently.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streameval.models import zoo


@pytest.fixture(scope="session")
def models_dir() -> Path:
    target = zoo.resolve_models_dir()
    bad = [s for s in zoo.verify(target) if not s.ok]  # every model: CI builds the whole zoo first
    if bad:
        detail = "; ".join(f"{s.name}: {', '.join(s.problems)}" for s in bad)
        pytest.fail(
            f"model zoo in {target} is not built ({detail}): run `streameval models build` before the tests",
            pytrace=False,
        )
    return target


@pytest.fixture(scope="session")
def examples(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``make_examples`` into a fresh directory: all four carphone videos (about 15 s on 2 cores)."""
    from streameval.deidentify.examples import make_examples

    return make_examples(tmp_path_factory.mktemp("example_out"))
