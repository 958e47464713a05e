"""Acceptance on the bundled example: the reference de-identifiers evaluated against the real clip.

Thresholds are the issue's: the swap hides identity A (dlib distance above its 0.6 threshold) and carries B
(closer to the astronaut than to A); blur and pixelation lose clearly more expression than the clip against
itself (which gives PCC 1, see test_face_families.test_source_against_itself).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streameval.api import calculate_face_recognition_distances, get_attribute_preservation_metrics

pytestmark = pytest.mark.slow


def test_swap_onto_the_astronaut_hides_a_and_shows_b(examples: dict[str, Path]) -> None:
    d = calculate_face_recognition_distances(
        examples["original"], examples["swap"], ref_b=examples["astronaut"], rate=10.0
    )
    assert d["coverage"]["deid"] == 1.0 and d["coverage"]["deid_n"] >= 30
    assert d["deid"]["A_mean"] > 0.6  # A (the paired source face) is no longer verified on average
    assert d["deid"]["B_mean"] < d["deid"]["A_mean"]  # and the face is closer to the astronaut than to A
    assert d["source"]["B_mean"] > 0.6  # sanity: the original person is not the astronaut
    assert d["deid_totals"]["leak_rate"] < 0.2


@pytest.mark.parametrize("method", ["blur", "pixelate"])
def test_blur_and_pixelation_lose_expression(examples: dict[str, Path], method: str) -> None:
    itself = get_attribute_preservation_metrics(examples["original"], examples["original"])["totals"]
    other = get_attribute_preservation_metrics(examples["original"], examples[method])["totals"]
    assert itself["pcc_mean"] == pytest.approx(1.0)
    # Where the face is still found at all, the AU series no longer follow the original's.
    assert other["pcc_mean"] is not None and other["pcc_mean"] < 0.5
    assert other["rmse_mean"] > itself["rmse_mean"] + 0.5
    # ... and often it is not found: those pairs are counted, not silently dropped.
    assert other["pairs_without_face"]["deid"] > 0


def test_mask_leaves_no_face_to_measure(examples: dict[str, Path]) -> None:
    aus = get_attribute_preservation_metrics(examples["original"], examples["mask"])
    totals = aus["totals"]
    assert totals["pairs_without_face"] == {"source": 0, "deid": 120}
    assert totals["pcc_mean"] is None and totals["null_reasons"]["pcc_mean"]
    assert aus["AU12"] == [None, None]
