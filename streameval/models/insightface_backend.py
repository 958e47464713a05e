"""insightface ``buffalo_l`` backend: SCRFD face detector and ArcFace identity embedder (extra ``insightface``).

The user places the model files themselves (``det_10g.onnx``, ``w600k_r50.onnx``; non-commercial licence,
nothing here downloads them). Sessions come from ``streameval.models.runtime.create_session`` so device and
thread settings are ours; decoding, NMS and alignment are insightface's own model classes
(``insightface.model_zoo.SCRFD``, ``ArcFaceONNX``, ``insightface.utils.face_align.norm_crop``). Their
signatures are checked first, so a wrong file fails with a message that names what was expected.

insightface works on BGR images; our images are RGB, converted at this boundary.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from streameval.errors import InputError, MissingExtraError, ModelError
from streameval.models.base import Detection, FloatArray, Image
from streameval.models.runtime import create_session

log = logging.getLogger(__name__)

DEFAULT_COSINE_THRESHOLD = 0.6  # distance 1 - cos; i.e. cosine similarity >= 0.4 counts as the same person
DETECTOR_FILE = "det_10g.onnx"
EMBEDDER_FILE = "w600k_r50.onnx"
_SCRFD_OUTPUT_COUNTS = (6, 9, 10, 15)  # 3 or 5 strides x (scores, boxes[, keypoints])

# MediaPipe face-mesh indices giving ArcFace's five points, in its template order (image-left first for a
# frontal face): subject's right eye (corner mean), left eye, nose tip, right mouth corner, left mouth corner.
_MESH_FIVE_POINTS: tuple[tuple[int, ...], ...] = ((33, 133), (362, 263), (1,), (61,), (291,))


def _insightface() -> Any:
    try:
        import insightface.model_zoo as model_zoo
        from insightface.utils import face_align
    except ImportError as exc:
        raise MissingExtraError("insightface", "insightface", "the insightface buffalo_l backend") from exc
    return model_zoo, face_align


def _describe(session: Any) -> str:
    ins = [(i.name, i.shape) for i in session.get_inputs()]
    outs = [(o.name, o.shape) for o in session.get_outputs()]
    return f"inputs {ins}, {len(outs)} outputs {outs}"


def _check_detector(session: Any, path: Path) -> None:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    shape = inputs[0].shape if len(inputs) == 1 else []
    if len(inputs) != 1 or len(shape) != 4 or shape[1] != 3 or len(outputs) not in _SCRFD_OUTPUT_COUNTS:
        raise ModelError(
            f"{path} is not an SCRFD face detector (like buffalo_l {DETECTOR_FILE}): expected one input "
            f"(1, 3, H, W) and 6, 9, 10 or 15 outputs (scores, boxes, keypoints per stride); got {_describe(session)}"
        )


def _check_embedder(session: Any, path: Path) -> int:
    """The square input size of an ArcFace model, after checking its signature."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    shape = inputs[0].shape if len(inputs) == 1 else []
    size = shape[2] if len(shape) == 4 else None
    ok = (
        len(inputs) == 1
        and len(shape) == 4
        and shape[1] == 3
        and isinstance(size, int)
        and size == shape[3]
        and (size % 112 == 0 or size % 128 == 0)  # the crop sizes face_align.norm_crop supports
        and len(outputs) == 1
        and len(outputs[0].shape) == 2
    )
    if not ok or not isinstance(size, int):
        raise ModelError(
            f"{path} is not an ArcFace embedder (like buffalo_l {EMBEDDER_FILE}): expected one input "
            f"(N, 3, 112, 112) and one output (N, 512); got {_describe(session)}"
        )
    return size


def _bgr(image: Image) -> Image:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image[:, :, ::-1])


def five_points(detection: Detection, landmarks: FloatArray | None) -> FloatArray:
    """ArcFace's five alignment points: the detector's keypoints if it gave five (SCRFD does), else derived
    from a MediaPipe face mesh (468 or 478 points)."""
    if detection.keypoints.shape == (5, 2):
        return detection.keypoints.astype(np.float32)
    if landmarks is not None and landmarks.ndim == 2 and landmarks.shape[0] >= 468 and landmarks.shape[1] >= 2:
        return np.array([landmarks[list(idx), :2].mean(axis=0) for idx in _MESH_FIVE_POINTS], np.float32)
    raise InputError(
        "ArcFace alignment needs five keypoints (an SCRFD detection) or a 468-point face mesh; got keypoints "
        f"{detection.keypoints.shape} and landmarks {None if landmarks is None else landmarks.shape}"
    )


def cosine_distance(a: FloatArray, b: FloatArray) -> float:
    """``1 - cos(a, b)`` in float64, in [0, 2]."""
    x, y = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    norms = float(np.linalg.norm(x) * np.linalg.norm(y))
    if x.shape != y.shape or norms == 0.0:
        raise InputError(f"cosine distance needs two non-zero vectors of equal length, got {x.shape}, {y.shape}")
    return 1.0 - float(x @ y) / norms


class InsightFaceDetector:
    """FaceDetector on an SCRFD model (buffalo_l ``det_10g.onnx``): boxes, scores and five keypoints."""

    name = "insightface_scrfd"

    def __init__(
        self,
        model_path: Path,
        *,
        det_size: tuple[int, int] = (640, 640),
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        device: str = "auto",
        threads: int | None = None,
    ) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise ModelError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if min(det_size) < 32 or any(s % 32 for s in det_size):
            raise ModelError(f"det_size must be positive multiples of 32 (width, height), got {det_size}")
        model_zoo, _ = _insightface()
        self.model_path = Path(model_path)
        self.det_size = det_size
        session = create_session(self.model_path, device=device, threads=threads, role="detector")
        _check_detector(session, self.model_path)
        try:
            self._model = model_zoo.SCRFD(model_file=str(self.model_path), session=session)
            # ctx_id 0: keep our session's providers (-1 would make insightface reset them to CPU)
            self._model.prepare(
                0,
                input_size=det_size,
                det_thresh=score_threshold,
                nms_thresh=nms_threshold,
            )
        except Exception as exc:  # insightface asserts and raises RuntimeError on unexpected graphs
            raise ModelError(f"insightface cannot use {self.model_path} as SCRFD: {exc}") from exc

    def detect(self, image: Image) -> list[Detection]:
        bgr = _bgr(image)
        try:
            boxes, keypoints = self._model.detect(bgr, input_size=self.det_size)
        except Exception as exc:
            raise ModelError(f"SCRFD inference failed on {self.model_path}: {exc}") from exc
        detections = [
            Detection(
                box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                score=float(b[4]),
                keypoints=(keypoints[i].astype(np.float32) if keypoints is not None else np.zeros((0, 2), np.float32)),
            )
            for i, b in enumerate(boxes)
        ]
        return sorted(detections, key=lambda d: -d.score)


class ArcFaceEmbedder:
    """Embedder on an ArcFace model (buffalo_l ``w600k_r50.onnx``); metric 'cosine' (``1 - cos``).

    The face is aligned to ArcFace's five-point template with insightface's ``norm_crop``. The embedding is
    the raw network output (not normalised; the cosine distance does not care).
    """

    name = "insightface_arcface"
    metric = "cosine"

    def __init__(
        self,
        model_path: Path,
        *,
        threshold: float = DEFAULT_COSINE_THRESHOLD,
        device: str = "auto",
        threads: int | None = None,
    ) -> None:
        if not 0.0 < threshold < 2.0:
            raise ModelError(f"threshold is a cosine distance in (0, 2), got {threshold}")
        model_zoo, self._face_align = _insightface()
        self.model_path = Path(model_path)
        self.threshold = threshold
        session = create_session(self.model_path, device=device, threads=threads, role="embedder")
        self.input_size = _check_embedder(session, self.model_path)
        try:
            self._model = model_zoo.ArcFaceONNX(model_file=str(self.model_path), session=session)
        except Exception as exc:
            raise ModelError(f"insightface cannot use {self.model_path} as ArcFace: {exc}") from exc

    def aligned_face(self, image: Image, detection: Detection, landmarks: FloatArray | None = None) -> Image:
        """The RGB face crop the network sees (input_size x input_size)."""
        bgr = _bgr(image)
        points = five_points(detection, landmarks)
        try:
            crop = self._face_align.norm_crop(bgr, landmark=points, image_size=self.input_size)
        except Exception as exc:  # skimage / cv2 errors on degenerate point sets
            raise InputError(f"cannot align the face to the ArcFace template: {exc}") from exc
        return np.ascontiguousarray(crop[:, :, ::-1])

    def embed(self, image: Image, detection: Detection, landmarks: FloatArray | None) -> FloatArray:
        crop_bgr = np.ascontiguousarray(self.aligned_face(image, detection, landmarks)[:, :, ::-1])
        try:
            feature = self._model.get_feat(crop_bgr)
        except Exception as exc:
            raise ModelError(f"ArcFace inference failed on {self.model_path}: {exc}") from exc
        return np.asarray(feature, np.float32).reshape(-1)

    def distance(self, a: FloatArray, b: FloatArray) -> float:
        return cosine_distance(a, b)
