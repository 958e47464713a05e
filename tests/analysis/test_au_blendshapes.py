"""AUs from MediaPipe's blendshapes, and the combined model, against references the project can check itself.

References: the mapping's own definition (synthetic coefficients), the geometric estimator where FACS says both
signals measure the same movement, raw inner-lip distances measured on the mesh, the human labels of the carphone
frames (brows visibly raised in 68 and 111-115, calm in 0-5; the astronaut smiles broadly, the carphone man never
smiles) and rigid changes of the landmarks. Thresholds sit below the values measured when the mapping was written
(docs/action_units.md); nothing was tuned to them. No OpenFace ground truth is available here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy.stats import pearsonr

from streameval.analysis.au import AU_NAMES, MeshAUEstimator
from streameval.analysis.au.blendshapes import COMBINED_SOURCE, MAPPING, blendshapes_to_aus, combine_aus
from streameval.analysis.au.face_aus import BlendshapeModels, FaceAUEstimator
from streameval.config import ExpressionTable, load_config
from streameval.datasets import astronaut, example_video
from streameval.errors import ConfigError, UsageError
from streameval.faces.tracker import FaceTracker, detection_faces
from streameval.faces.types import TrackedFace
from streameval.models.face_landmarker import BLENDSHAPE_NAMES, FaceMesh478
from streameval.models.face_mesh import FaceMeshLandmarker, crop_for_detection
from streameval.models.loaders import load_blendshapes, load_detector, load_landmarker, load_mesh_478
from tests.videos import decode_rgb

F64 = npt.NDArray[np.float64]
BROWS_RAISED = [68, 111, 112, 113, 114, 115]
CALM = [0, 1, 2, 3, 4, 5]
INNER_UPPER = [191, 80, 81, 82, 13, 312, 311, 310, 415]
INNER_LOWER = [95, 88, 178, 87, 14, 317, 402, 318, 324]


def au(name: str) -> int:
    return AU_NAMES.index(name)


def scores(**named: float) -> F64:
    s = np.zeros(len(BLENDSHAPE_NAMES))
    for name, value in named.items():
        s[BLENDSHAPE_NAMES.index(name)] = value
    return s


# -- the mapping itself ---------------------------------------------------------------------------------------


def test_mapping_covers_every_au_in_order_with_known_blendshapes() -> None:
    assert tuple(m.au for m in MAPPING) == AU_NAMES == tuple(COMBINED_SOURCE)
    for entry in MAPPING:
        assert all(name in BLENDSHAPE_NAMES and name != "_neutral" for name, _ in entry.terms)
        # a shape at its full extent (1) reads as the AU's maximum, 5
        assert sum(w for _, w in entry.terms if w > 0) == pytest.approx(1.0), entry.au


def test_full_shapes_read_as_five_and_nothing_else_moves() -> None:
    aus = blendshapes_to_aus(scores(browInnerUp=1.0))
    assert aus[au("AU01_r")] == 5.0 and np.count_nonzero(aus) == 1
    aus = blendshapes_to_aus(scores(mouthSmileLeft=1.0, mouthSmileRight=0.4))
    assert aus[au("AU12_r")] == pytest.approx(3.5) and np.count_nonzero(aus) == 1
    assert not blendshapes_to_aus(np.zeros(52)).any()


def test_lips_part_with_the_jaw_unless_held_closed() -> None:
    open_jaw = blendshapes_to_aus(scores(jawOpen=0.6))
    assert open_jaw[au("AU26_r")] == pytest.approx(3.0) and open_jaw[au("AU25_r")] == pytest.approx(3.0)
    held = blendshapes_to_aus(scores(jawOpen=0.6, mouthClose=0.5))
    assert held[au("AU26_r")] == pytest.approx(3.0) and held[au("AU25_r")] == pytest.approx(0.5)
    assert blendshapes_to_aus(scores(mouthClose=1.0))[au("AU25_r")] == 0.0  # clipped at 0


def test_combined_takes_each_au_from_its_documented_source() -> None:
    geo, learned = np.full(17, 4.0), np.full(17, 1.0)
    both = combine_aus(geo, learned)
    for k, name in enumerate(AU_NAMES):
        expected = {"geometry": 4.0, "blendshapes": 1.0, "mean": 2.5}[COMBINED_SOURCE[name]]
        assert both[k] == expected, name
    batch = combine_aus(np.stack([geo, learned]), np.stack([learned, geo]))
    assert batch.shape == (2, 17)
    with pytest.raises(UsageError):
        combine_aus(geo, learned[:16])
    with pytest.raises(UsageError):
        blendshapes_to_aus(np.zeros(51))


def test_estimator_needs_what_its_model_reads() -> None:
    with pytest.raises(UsageError, match="au_model must be one of"):
        FaceAUEstimator("learned")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="needs the Face Landmarker"):
        FaceAUEstimator("combined", MeshAUEstimator())
    with pytest.raises(UsageError, match="needs the geometry"):
        FaceAUEstimator("geometry")


def test_au_model_is_a_mesh_key(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[expression]\nau_model = "combined"\n', encoding="utf-8")
    assert load_config(path).table(ExpressionTable).au_model == "combined"
    path.write_text('[expression]\nau_model = "learned"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="au_model"):
        load_config(path)
    path.write_text('[expression]\nau_source = "openface"\nau_model = "combined"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="only used with au_source = 'mesh'"):
        load_config(path)


# -- on real faces ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    geometry: F64  # (N, 17) the geometric estimator's AUs
    learned: F64  # (N, 17) the blendshapes' AUs
    combined: F64  # (N, 17)
    scores: F64  # (N, 52)
    meshes: F64  # (N, 468, 3)


@pytest.fixture(scope="module")
def networks(models_dir: Path) -> BlendshapeModels:
    return BlendshapeModels(load_mesh_478(models_dir, device="cpu"), load_blendshapes(models_dir, device="cpu"))


@pytest.fixture(scope="module")
def face_models(models_dir: Path) -> tuple[object, object]:
    return load_detector(models_dir, device="cpu"), load_landmarker(models_dir, device="cpu")


@pytest.fixture(scope="module")
def clip(face_models: tuple[object, object], networks: BlendshapeModels) -> Clip:
    detector, landmarker = face_models
    # as a run with au_model = "combined" tracks: the 478-point mesh, the 468-point one beside it for the geometry
    tracker = FaceTracker(detector, networks.mesh, mesh_468=landmarker)  # type: ignore[arg-type]
    est = FaceAUEstimator("combined", MeshAUEstimator(), networks)
    rows = []
    for i, frame in enumerate(decode_rgb(example_video("carphone_pristine"))):
        face = tracker.process(frame, i / 30).primary
        assert face is not None
        r = est.estimate(frame, face)
        assert r.geometry is not None and r.blendshapes is not None and face.landmarks_478 is not None
        rows.append((r.geometry, blendshapes_to_aus(r.blendshapes), r.aus, r.blendshapes, face.mesh))
    return Clip(*(np.stack([row[k] for row in rows]).astype(np.float64) for k in range(5)))


@pytest.fixture(scope="module")
def astronaut_face(face_models: tuple[object, object]) -> TrackedFace:
    detector, landmarker = face_models
    face = detection_faces(detector, landmarker, astronaut()).primary  # type: ignore[arg-type]
    assert face is not None
    return face


def test_combined_is_the_documented_mix_of_the_two_signals(clip: Clip) -> None:
    np.testing.assert_allclose(clip.combined, combine_aus(clip.geometry, clip.learned), atol=1e-5)


@pytest.mark.parametrize(("name", "minimum"), [("AU01_r", 0.8), ("AU02_r", 0.8), ("AU25_r", 0.8), ("AU26_r", 0.8)])
def test_both_signals_agree_where_they_measure_the_same_movement(clip: Clip, name: str, minimum: float) -> None:
    # measured on the stage's tracked 478-point landmarks: AU01 0.93, AU02 0.93, AU25 0.94, AU26 0.93 (AU45 0.76,
    # but the clip has no blink); on the detection crop the 478-point mesh got before: 0.78, 0.76, 0.69, 0.67
    r = pearsonr(clip.geometry[:, au(name)], clip.learned[:, au(name)])[0]
    assert r > minimum


def test_jaw_and_lips_follow_the_measured_lip_gap(clip: Clip) -> None:
    m = clip.meshes
    iod = np.linalg.norm(m[:, 263, :2] - m[:, 33, :2], axis=1)
    gap = (m[:, INNER_LOWER, 1] - m[:, INNER_UPPER, 1]).mean(axis=1) / iod
    assert pearsonr(clip.learned[:, au("AU25_r")], gap)[0] > 0.85  # measured 0.96 (detection crop: 0.69)
    assert pearsonr(clip.learned[:, au("AU26_r")], gap)[0] > 0.85  # measured 0.95 (detection crop: 0.69)


def test_brows_on_labelled_frames(clip: Clip) -> None:
    raised, calm = clip.learned[BROWS_RAISED], clip.learned[CALM]
    assert raised[:, au("AU01_r")].mean() > 2.0 > 0.5 > calm[:, au("AU01_r")].mean()  # measured 4.06 vs 0.08
    assert raised[:, au("AU02_r")].mean() > calm[:, au("AU02_r")].mean() + 1.0  # 3.16 vs 0.39
    assert raised[:, au("AU04_r")].max() < 0.5  # brows up is not a frown
    assert clip.combined[BROWS_RAISED, au("AU01_r")].mean() > 2.0


def test_smile_on_the_astronaut_not_on_carphone(
    clip: Clip, astronaut_face: TrackedFace, networks: BlendshapeModels
) -> None:
    smile = blendshapes_to_aus(networks.scores(astronaut(), astronaut_face))
    assert smile[au("AU12_r")] > 3.5 and clip.learned[:, au("AU12_r")].max() < 1.0  # 4.54 vs 0.78


def test_cheek_and_nose_shapes_do_not_move(clip: Clip, astronaut_face: TrackedFace, networks: BlendshapeModels) -> None:
    """Why combined reads AU06 and AU09 from the geometry: MediaPipe's cheekSquint and noseSneer stay at 0 even on
    a broad smile (where the cheeks visibly rise)."""
    dead = [BLENDSHAPE_NAMES.index(n) for n in ("cheekSquintLeft", "cheekSquintRight", "noseSneerLeft")]
    assert clip.scores[:, dead].max() < 0.01
    assert networks.scores(astronaut(), astronaut_face)[dead].max() < 0.01
    assert COMBINED_SOURCE["AU06_r"] == COMBINED_SOURCE["AU09_r"] == "geometry"


def test_blendshapes_ignore_where_and_how_large_the_face_is(
    astronaut_face: TrackedFace, networks: BlendshapeModels
) -> None:
    landmarks, _ = networks.mesh.on_crop(astronaut(), crop_for_detection(astronaut_face.detection()))
    base = networks.blendshapes.scores(landmarks)
    for scale, shift in ((2.0, 0.0), (0.5, 0.0), (1.0, 300.0), (3.0, -50.0)):
        moved = landmarks.copy()
        moved[:, :2] = moved[:, :2] * scale + shift
        assert np.abs(networks.blendshapes.scores(moved) - base).max() < 1e-4  # measured <= 1.5e-5


@pytest.mark.parametrize("model", ["geometry", "blendshapes", "combined"])
def test_the_run_tracks_with_the_mesh_its_au_model_reads(model: str, models_dir: Path) -> None:
    """One 478-point mesh per face serves the tracker and the blendshapes (no second run in the expression lane);
    combined also runs the 468-point mesh, which the geometry was calibrated on."""
    from streameval.families import expression_family, face_stage, new_run

    new_run()
    config = load_config(
        None,
        {"metrics": ["expression"], "expression": {"au_model": model}, "models": {"dir": str(models_dir)}},
    )
    stage = face_stage(config)
    try:
        tracker = stage.trackers["source"]
        analyser = expression_family(config)[0][0]
        estimator = analyser.estimators["source"]  # type: ignore[attr-defined]
        if model == "geometry":
            assert isinstance(tracker.landmarker, FaceMeshLandmarker) and tracker.mesh_468 is None
            assert estimator.networks is None
        else:
            assert isinstance(tracker.landmarker, FaceMesh478)
            assert estimator.networks.mesh is tracker.landmarker  # one session, shared
            expected = FaceMeshLandmarker if model == "combined" else type(None)
            assert isinstance(tracker.mesh_468, expected)
        config_without = load_config(
            None, {"metrics": ["pixel"], "expression": {"au_model": model}, "models": {"dir": str(models_dir)}}
        )
        other = face_stage(config_without)
        other.close()
        assert isinstance(other.trackers["deid"].landmarker, FaceMeshLandmarker)
    finally:
        stage.close()
        new_run()
