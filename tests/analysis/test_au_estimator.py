"""Validation of the geometric AU estimator against independent references.

References: raw pixel distances measured directly on the MediaPipe meshes (no alignment), human labels of the
carphone frames (inspected by eye: brows visibly raised in frames 68 and 111-115 and calm in 0-5; the
astronaut smiles broadly, the carphone man never smiles), known synthetic deformations of real meshes, and
rigid transforms. Meshes come from the official MediaPipe runtime (tools/au_make_fixtures.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from scipy.stats import pearsonr

from streameval.analysis.au import (
    AU_NAMES,
    MeshAUEstimator,
    NeutralTracker,
    estimate_aus,
    estimate_aus_batch,
    features_to_aus,
    landmarks_to_features,
)
from streameval.analysis.au.canonical import CANONICAL
from streameval.analysis.au.estimator import neutral_from_history
from streameval.analysis.au.features import FEATURE_NAMES, mesh_features
from streameval.analysis.au.geometry import align
from streameval.errors import InputError, UsageError

DATA = Path(__file__).resolve().parents[1] / "data"
BROWS_RAISED = [68, 111, 112, 113, 114, 115]
CALM = [0, 1, 2, 3, 4, 5]
NEUTRAL_FRAME = 10
# Eyelid contours, upper[i] above lower[i] (subject's right eye, then left eye).
LID_UPPER = [246, 161, 160, 159, 158, 157, 173, 466, 388, 387, 386, 385, 384, 398]
LID_LOWER = [7, 163, 144, 145, 153, 154, 155, 249, 390, 373, 374, 380, 381, 382]
INNER_UPPER = [191, 80, 81, 82, 13, 312, 311, 310, 415]
INNER_LOWER = [95, 88, 178, 87, 14, 317, 402, 318, 324]


def au(name: str) -> int:
    return AU_NAMES.index(name)


@pytest.fixture(scope="module")
def carphone() -> np.ndarray:
    return np.load(DATA / "mesh_carphone_pristine.npz")["landmarks"].astype(np.float64)


@pytest.fixture(scope="module")
def carphone_aus(carphone: np.ndarray) -> np.ndarray:
    return estimate_aus_batch(carphone)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.load(DATA / "mesh_astronaut.npz")["landmarks"][0].astype(np.float64)


def dist(mesh: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(mesh[..., a, :2] - mesh[..., b, :2], axis=-1)


def test_au_order_is_openface() -> None:
    openface = "AU01_r AU02_r AU04_r AU05_r AU06_r AU07_r AU09_r AU10_r AU12_r AU14_r AU15_r AU17_r AU20_r AU23_r"
    assert " ".join(AU_NAMES) == openface + " AU25_r AU26_r AU45_r"


def test_single_and_batch_agree_and_stay_in_range(carphone: np.ndarray, carphone_aus: np.ndarray) -> None:
    assert carphone_aus.shape == (120, 17)
    assert carphone_aus.min() >= 0.0 and carphone_aus.max() <= 5.0
    np.testing.assert_allclose(estimate_aus(carphone[42]), carphone_aus[42], atol=1e-12)


def test_mouth_opening_follows_raw_lip_gap(carphone: np.ndarray, carphone_aus: np.ndarray) -> None:
    iod = dist(carphone, 33, 263)
    lip_gap = dist(carphone, 13, 14) / iod  # raw pixels, no pose normalisation
    nose_chin = dist(carphone, 1, 152) / iod
    assert pearsonr(lip_gap, carphone_aus[:, au("AU25_r")])[0] > 0.95  # measured 0.995
    assert pearsonr(lip_gap, carphone_aus[:, au("AU26_r")])[0] > 0.75  # measured 0.86
    assert pearsonr(nose_chin, carphone_aus[:, au("AU26_r")])[0] > 0.6  # measured 0.72
    # The widest-open frames (60, 110) read as near-maximal lip parting.
    assert carphone_aus[[60, 110], au("AU25_r")].min() > 4.0


def test_brow_raise_matches_human_labels(carphone_aus: np.ndarray) -> None:
    for name in ("AU01_r", "AU02_r"):
        raised = carphone_aus[BROWS_RAISED, au(name)].mean()
        calm = carphone_aus[CALM, au(name)].mean()
        assert raised > calm + 1.0, (name, raised, calm)
    assert carphone_aus[BROWS_RAISED, au("AU01_r")].mean() > 2.0  # measured 2.8
    assert carphone_aus[CALM, au("AU01_r")].max() < 0.5  # measured 0.0
    # Raising brows is not lowering them.
    assert carphone_aus[BROWS_RAISED, au("AU04_r")].max() < 0.5


def test_eye_closure(carphone: np.ndarray, carphone_aus: np.ndarray) -> None:
    # The clip has no full blink; the natural narrowing of the eyes must still show in AU45.
    ear = 0.5 * (
        dist(carphone, 159, 145) / dist(carphone, 33, 133) + dist(carphone, 386, 374) / dist(carphone, 263, 362)
    )
    assert pearsonr(ear, carphone_aus[:, au("AU45_r")])[0] < -0.6  # measured -0.72
    # Synthetic blink: slide the upper lids onto the lower lids of a neutral frame.
    mesh = carphone[NEUTRAL_FRAME]
    values = []
    for t in np.linspace(0.0, 1.0, 6):
        closed = mesh.copy()
        closed[LID_UPPER] += t * (mesh[LID_LOWER] - mesh[LID_UPPER])
        values.append(estimate_aus(closed)[au("AU45_r")])
    assert np.all(np.diff(values) > 0.3), values
    assert values[0] < 0.5 and values[-1] > 4.5, values


def test_synthetic_lip_parting_raises_au25_only(carphone: np.ndarray) -> None:
    mesh = carphone[NEUTRAL_FRAME]
    iod_px = float(dist(mesh, 33, 263))
    # The face's own vertical axis in the image (forehead → chin), to part the lips along it.
    down = mesh[152, :2] - mesh[10, :2]
    down /= np.linalg.norm(down)
    base = estimate_aus(mesh)
    previous = base
    for k_px in (1.0, 2.0, 3.0, 4.0):
        parted = mesh.copy()
        parted[INNER_UPPER, :2] -= 0.5 * k_px * down
        parted[INNER_LOWER, :2] += 0.5 * k_px * down
        now = estimate_aus(parted)
        assert now[au("AU25_r")] > previous[au("AU25_r")]
        for brow in ("AU01_r", "AU02_r", "AU04_r", "AU05_r", "AU45_r"):
            assert now[au(brow)] == pytest.approx(base[au(brow)], abs=1e-9)
        previous = now
    # Known amount: the gap grew by 4 px = 4/iod_px IOD; the calibrated span is 0.35 IOD per 5 levels.
    expected = 5.0 * (4.0 / iod_px) / 0.35
    assert previous[au("AU25_r")] - base[au("AU25_r")] == pytest.approx(expected, rel=0.2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rigid_transform_invariance(carphone: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rot = Rotation.from_euler("xyz", rng.uniform(-30, 30, size=3), degrees=True).as_matrix()
    scale = rng.uniform(0.5, 3.0)
    shift = rng.uniform(-200, 200, size=3)
    for frame in (NEUTRAL_FRAME, 60, 113):
        mesh = carphone[frame]
        centre = mesh.mean(axis=0)
        moved = scale * (mesh - centre) @ rot.T + centre + shift
        # Tolerance: the alignment is exact up to floating-point rounding.
        np.testing.assert_allclose(estimate_aus(moved), estimate_aus(mesh), atol=1e-6)


def test_smile_on_another_person(astronaut: np.ndarray, carphone_aus: np.ndarray) -> None:
    smile = estimate_aus(astronaut)
    assert smile[au("AU12_r")] > 3.0  # measured 4.35
    assert smile[au("AU12_r")] > carphone_aus[:, au("AU12_r")].max() + 2.0
    assert smile[au("AU06_r")] > carphone_aus[:, au("AU06_r")].max() + 1.0
    assert smile[au("AU15_r")] < 0.5  # corners up, not down


@pytest.mark.parametrize("frame", [60, 113, 85])
def test_expression_transfer_between_identities(carphone: np.ndarray, astronaut: np.ndarray, frame: int) -> None:
    # Transfer carphone's expression displacement (canonical frame) onto the astronaut's face; with each
    # subject's own neutral, both must read the same AUs.
    canonical = np.asarray(CANONICAL)
    src_neutral = align(carphone[NEUTRAL_FRAME], canonical)
    displacement = align(carphone[frame], canonical) - src_neutral
    target = align(astronaut, canonical)
    source_aus = features_to_aus(mesh_features(src_neutral + displacement), mesh_features(src_neutral))
    target_aus = features_to_aus(mesh_features(target + displacement), mesh_features(target))
    assert source_aus.max() > 1.0  # a real expression, not a trivial zero
    np.testing.assert_allclose(target_aus, source_aus, atol=0.25)  # measured max 0.12


def test_neutral_tracker_matches_numpy_quantiles(carphone: np.ndarray) -> None:
    feats = landmarks_to_features(carphone)
    tracker = NeutralTracker(window=50, min_frames=10)
    for i, f in enumerate(feats[:60]):
        tracker.update(f)
        got = tracker.get()
        if i + 1 < 10:
            assert got is None
            continue
        window = feats[max(0, i + 1 - 50) : i + 1]
        expected = np.median(window, axis=0)
        gap = FEATURE_NAMES.index("lip_gap")
        expected[gap] = np.quantile(window[:, gap], 0.1)
        jaw = FEATURE_NAMES.index("jaw_drop")
        expected[jaw] = np.quantile(window[:, jaw], 0.2)
        assert got is not None
        np.testing.assert_allclose(got, expected, atol=1e-12)


def test_adaptive_estimator_uses_the_stream_neutral(carphone: np.ndarray) -> None:
    est = MeshAUEstimator(adaptive=True, window=40, min_frames=5)
    feats = landmarks_to_features(carphone)
    for i in range(30):
        out = est.estimate(carphone[i])
        neutral = None if i + 1 < 5 else neutral_from_history(feats[: i + 1])
        np.testing.assert_allclose(out, features_to_aus(feats[i], neutral), atol=1e-5)
    assert out.dtype == np.float32


def test_bad_input_is_rejected() -> None:
    with pytest.raises(InputError):
        estimate_aus(np.zeros((68, 2)))
    bad = np.ones((468, 3))
    bad[5, 0] = np.nan
    with pytest.raises(InputError):
        estimate_aus(bad)
    with pytest.raises(InputError):
        estimate_aus(np.zeros((468, 3)))  # all points coincide
    with pytest.raises(UsageError):
        estimate_aus_batch(np.zeros((468, 3)))
    with pytest.raises(UsageError):
        NeutralTracker(window=5, min_frames=6)
