"""Colour transfer statistics and the mesh measures, against numpy and hand cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streameval.deidentify.colour import match_colour, rgb_to_ycbcr, ycbcr_to_rgb
from streameval.deidentify.mesh_topology import INNER_LIPS, interocular, mouth_opening

DATA = Path(__file__).resolve().parents[1] / "data"


def test_ycbcr_round_trip_and_known_values() -> None:
    rgb = np.random.default_rng(0).uniform(0, 255, (100, 3))
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-9)
    # JPEG's definition: white has Y 255 and no chroma, pure red has Cr 127.5
    np.testing.assert_allclose(rgb_to_ycbcr([255, 255, 255]), [255, 0, 0], atol=1e-3)
    np.testing.assert_allclose(rgb_to_ycbcr([255, 0, 0]), [76.245, -43.027, 127.5], atol=1e-3)


def test_match_colour_transfers_mean_and_std() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.normal([120, 100, 90], [20, 15, 10], (5000, 3))
    reference = rng.normal([180, 140, 120], [25, 20, 15], (3000, 3))
    out = rgb_to_ycbcr(match_colour(pixels, reference))
    ref = rgb_to_ycbcr(reference)
    np.testing.assert_allclose(out.mean(axis=0), ref.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(out.std(axis=0), ref.std(axis=0), rtol=1e-9)
    # gains are clipped: a flat patch is not stretched into noise
    flat = np.full((100, 3), 100.0) + rng.normal(0, 0.01, (100, 3))
    assert rgb_to_ycbcr(match_colour(flat, reference)).std(axis=0).max() < 0.1


def test_mouth_opening_by_hand() -> None:
    pts = np.zeros((468, 3))
    pts[33, :2] = (10, 50)
    pts[263, :2] = (50, 50)
    pts[13, :2] = (30, 80)
    pts[14, :2] = (30, 92)
    assert interocular(pts) == pytest.approx(40.0)
    assert mouth_opening(pts) == pytest.approx(12 / 40)
    with pytest.raises(ValueError, match="468"):
        mouth_opening(np.zeros((68, 2)))
    assert len(set(INNER_LIPS)) == 20


def test_mouth_opening_on_the_real_clip_separates_open_from_closed() -> None:
    """The carphone speaker opens his mouth wide around frame 60 and keeps it nearly closed at the start."""
    meshes = np.load(DATA / "mesh_carphone_pristine.npz")["landmarks"]
    opening = np.array([mouth_opening(m) for m in meshes])
    assert opening[:10].max() < 0.1
    assert opening[55:65].max() > 0.3
