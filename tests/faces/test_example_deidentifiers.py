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


def test_swap_leak_and_swap_rates_from_both_recognisers(examples: dict[str, Path], tmp_path: Path) -> None:
    """dlib and faceres side by side on the swap: each one's rates, and the worst case over both, recomputed from
    every pair's distances in the records with each recogniser's own threshold."""
    import json

    from streameval.cli import main

    config = tmp_path / "run.toml"
    config.write_text(f'[identity]\nrecognisers = ["dlib", "faceres"]\nref_b = "{examples["astronaut"]}"\n')
    log, report = tmp_path / "log.jsonl", tmp_path / "report.json"
    args = ["-q", "replay", str(examples["original"]), str(examples["swap"]), "--metrics", "identity"]
    args += ["--rate", "identity=10", "-c", str(config), "--log", str(log), "--report", str(report)]
    assert main(args) == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    pairs = [p for r in records if r["type"] == "metrics" for p in r["deid"]["pairs"]]
    totals = json.loads(report.read_text())["totals"]["deid"]
    assert len(pairs) == totals["analysed_pairs"] >= 30  # every analysed pair once, with both recognisers
    thresholds = {key: totals[key]["threshold"] for key in ("dlib", "faceres")}
    assert thresholds == {"dlib": 0.6, "faceres": 0.35}
    for key, threshold in thresholds.items():
        for name, field in (("leak_rate", "dist_a"), ("swap_rate", "dist_b")):
            values = [p[key][field] for p in pairs if p[key][field] is not None]
            assert totals[key][f"{name}_n"] == len(values) >= 30
            assert totals[key][name] == sum(v <= threshold for v in values) / len(values)
        assert totals[key]["leak_rate"] < 0.2  # the swap hides A from either recogniser
    verdicts = [
        any(p[k]["dist_a"] <= t for k, t in thresholds.items() if p[k]["dist_a"] is not None)
        for p in pairs
        if any(p[k]["dist_a"] is not None for k in thresholds)
    ]
    assert totals["leak_any_n"] == len(verdicts) and totals["leak_any"] == sum(verdicts) / len(verdicts)
    assert totals["leak_any"] >= max(totals[k]["leak_rate"] for k in thresholds)  # the worst case
