"""Fixtures of the batch tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def frame_pixel_config(tmp_path: Path) -> Path:
    """PSNR/SSIM over whole frames: no model, the cheapest evaluation (for tests of the batch machinery)."""
    cfg = tmp_path / "frame_pixel.toml"
    cfg.write_text('metrics = ["pixel"]\n[pixel]\nregion = "frame"\n')
    return cfg
