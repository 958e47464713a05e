"""The metric families that ``--metrics`` names: ``FAMILIES`` maps each name to a factory.

Each factory reads its option tables (:mod:`streameval.analysis.face_config` for the face families), loads its
models and returns its analysers and metrics. Heavy imports happen inside the factories, so only the families a
run names cost anything.

Faces are found once per frame and stream by the face stage (:func:`face_stage`), which the run builds when any
of its analysers ``needs_faces``; the face families only read its faces. Default sampling rates: ``faces`` (the
stage) and ``expression`` every pair, ``reality`` one clip pair every 4 s of stream (``[reality] clip_every``),
``identity`` 5 pairs per second; override with ``rate.<analyser>``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from streameval.analysis.base import Analyser
from streameval.analysis.face_config import (
    OpenFaceOptions,
    PyFaceAUOptions,
    expression_options,
    face_options,
    identity_options,
    model_options,
    reality_options,
)
from streameval.config import PixelTable, RunConfig
from streameval.errors import ConfigError, InputError, ModelError
from streameval.metrics.base import Metric

if TYPE_CHECKING:
    from streameval.analysis.au.face_aus import BlendshapeModels
    from streameval.analysis.openface_track import AUTrack
    from streameval.faces.stage import FaceStage
    from streameval.faces.tracker import MeshNetwork
    from streameval.faces.types import TrackedFace
    from streameval.models.base import Image
    from streameval.models.face_detector import BlazeFaceDetector
    from streameval.models.face_landmarker import FaceMesh478
    from streameval.models.face_mesh import FaceMeshLandmarker

log = logging.getLogger(__name__)

IDENTITY_RATE = 5.0

Family = tuple[list[Analyser], list[Metric]]
FamilyFactory = Callable[[RunConfig], Family]


def pixel_family(config: RunConfig) -> Family:
    from streameval.analysis.pixel import pixel_analyser
    from streameval.metrics.pixel import PixelMetric

    region = config.table(PixelTable).region
    return [pixel_analyser(region, rate=config.rate.get("pixel"))], [PixelMetric(config.window, region)]


@functools.lru_cache(maxsize=4)
def _face_models(
    models_dir: Path | None, device: str, threads: int | None, min_score: float, tiles: int
) -> tuple[BlazeFaceDetector, FaceMeshLandmarker]:
    """One detector and one mesh session per run, shared by the face stage and the reference images
    (onnxruntime sessions may be run from several threads). :func:`new_run` empties the cache, so every run
    loads (and verifies) its model files afresh."""
    from streameval.models.loaders import load_detector, load_landmarker

    detector = load_detector(models_dir, device, min_score=min_score, tiles=tiles, threads=threads)
    return detector, load_landmarker(models_dir, device, threads=threads)


@functools.cache
def _mesh_478(models_dir: Path | None, device: str, threads: int | None) -> FaceMesh478:
    """One 478-point mesh session per run, shared by the face stage's trackers and the AU estimators."""
    from streameval.models.loaders import load_mesh_478

    return load_mesh_478(models_dir, device, threads=threads)


def new_run() -> None:
    """Forget the models loaded for the previous run (and their record for its report)."""
    from streameval.models.zoo import forget_used_models

    _face_models.cache_clear()
    _mesh_478.cache_clear()
    forget_used_models()


def face_models(config: RunConfig) -> tuple[BlazeFaceDetector, FaceMeshLandmarker]:
    models = model_options(config)
    faces = face_options(config)
    return _face_models(models.dir, models.device, models.threads, faces.min_score, faces.tiles)


def blendshape_models(config: RunConfig) -> BlendshapeModels:
    """The Face Landmarker's 478-point mesh and blendshape sessions, shared by both streams' estimators."""
    from streameval.analysis.au.face_aus import BlendshapeModels
    from streameval.models.loaders import load_blendshapes

    models = model_options(config)
    return BlendshapeModels(
        _mesh_478(models.dir, models.device, models.threads),
        load_blendshapes(models.dir, models.device, threads=models.threads),
    )


def stage_au_model(config: RunConfig) -> str | None:
    """The mesh AU model the run's expression family uses (None: no expression family, or OpenFace AUs)."""
    if "expression" not in config.metrics:
        return None
    opts = expression_options(config)
    return opts.au_model if opts.au_source == "mesh" else None


def stage_meshes(config: RunConfig, au_model: str | None) -> tuple[MeshNetwork, MeshNetwork | None]:
    """The networks the face stage tracks with, for the AU model ``au_model``: (tracking mesh, 468-point mesh
    beside it or None).

    ``blendshapes`` and ``combined`` track with the Face Landmarker's 478-point mesh, whose landmarks the
    blendshape network reads (on MediaPipe's own tracking crop, as its Face Landmarker does on video), so the
    expression lane runs only the blendshape network. ``combined`` also runs the 468-point mesh on the same crop:
    the geometry's AUs from the 478-point network's first 468 points differ from those it was calibrated on
    (docs/action_units.md). Otherwise the 468-point mesh tracks alone (half the cost of the 478-point one)."""
    _, mesh_468 = face_models(config)
    if au_model not in ("blendshapes", "combined"):
        return mesh_468, None
    models = model_options(config)
    return _mesh_478(models.dir, models.device, models.threads), mesh_468 if au_model == "combined" else None


def face_stage(config: RunConfig) -> FaceStage:
    """The face stage of a run (``[faces]`` options; its lane is sampled by ``rate.faces``)."""
    from streameval.faces.stage import FaceStage

    detector, _ = face_models(config)
    tracking, beside = stage_meshes(config, stage_au_model(config))
    return FaceStage(detector, tracking, face_options(config).tracker, rate=config.rate.get("faces"), mesh_468=beside)


def expression_family(config: RunConfig) -> Family:
    from streameval.metrics.expression import ExpressionMetric

    opts = expression_options(config)
    metric = ExpressionMetric(config.window, au_source=opts.au_source)
    if opts.au_source in ("openface", "pyfaceau"):
        from streameval.analysis.expression import OpenFaceAUsAnalyser

        if config.frames is not None:
            raise ConfigError(
                f"--frames writes the mesh AUs (au_source = 'mesh'); {opts.au_source} writes its own CSVs"
            )
        if opts.au_source == "pyfaceau":
            tracks = _pyfaceau_tracks(config, opts.pyfaceau)
        else:
            tracks = _openface_tracks(config, opts.openface)
        return [OpenFaceAUsAnalyser(tracks, rate=config.rate.get("expression"))], [metric]

    from streameval.analysis.au import MeshAUEstimator
    from streameval.analysis.au.face_aus import FaceAUEstimator
    from streameval.analysis.expression import ExpressionAnalyser, FrameRows

    networks = None if opts.au_model == "geometry" else blendshape_models(config)
    rows = None if config.frames is None else FrameRows(with_blendshapes=networks is not None)

    def estimator() -> FaceAUEstimator:
        geometry = MeshAUEstimator(
            adaptive=opts.adaptive_neutral, window=opts.neutral_window, min_frames=opts.neutral_min_frames
        )
        return FaceAUEstimator(opts.au_model, geometry, networks)

    analyser = ExpressionAnalyser((estimator(), estimator()), rate=config.rate.get("expression"), rows=rows)
    return [analyser], [metric]


def _pyfaceau_tracks(config: RunConfig, opts: PyFaceAUOptions) -> tuple[AUTrack, AUTrack]:
    """Each stream's rows from the user's pyfaceau, run on its file before the run (as OpenFace's binary is)."""
    from streameval.analysis.openface_track import AUTrack, is_local_file
    from streameval.analysis.pyfaceau import pyfaceau_rows

    if config.live:
        raise ConfigError(
            "[expression] au_source = 'pyfaceau' needs recorded files, not a live run: pyfaceau reads a whole file "
            "before the run. Use au_source = 'mesh' live, or record the streams and replay them."
        )
    tracks = []
    for side, spec in (("source", config.source), ("deid", config.deid)):
        if spec is None or not is_local_file(spec):
            raise ConfigError(
                f"[expression] au_source = 'pyfaceau': pyfaceau can only run on a local file, and the {side} "
                f"stream is {spec!r}"
            )
        rows = pyfaceau_rows(spec, python=opts.python, timeout_s=opts.timeout)
        label = f"pyfaceau {side} ({spec})"
        if not rows.valid.any():
            log.warning("%s: no frame with a face", label)
        tracks.append(AUTrack(rows, match="frame", label=label))
    return tracks[0], tracks[1]


def _openface_tracks(config: RunConfig, opts: OpenFaceOptions) -> tuple[AUTrack, AUTrack]:
    """Each stream's OpenFace rows, from its CSV or by running FeatureExtraction on its file (before the run)."""
    from streameval.analysis.openface_track import AUTrack, is_local_file, load_rows

    if config.live:
        raise ConfigError(
            "[expression] au_source = 'openface' needs recorded files, not a live run: OpenFace's FeatureExtraction "
            "reads a whole file before the run, and its rows are matched to frames by number or time, which a live "
            "stream's drops and reconnects break. Use au_source = 'mesh' live, or record the streams and replay them."
        )
    tracks = []
    for side, spec, csv_path in (("source", config.source, opts.source_csv), ("deid", config.deid, opts.deid_csv)):
        if csv_path is None and (spec is None or not is_local_file(spec)):
            raise ConfigError(
                f"[expression] au_source = 'openface': OpenFace can only run on a local file, and the {side} "
                f"stream is {spec!r}; give its AUs as openface_{side}_csv"
            )
        rows = load_rows(
            spec or "",
            csv_path,
            binary=opts.binary,
            timeout_s=opts.timeout,
            min_confidence=opts.min_confidence,
        )
        label = f"OpenFace {side} ({csv_path or 'FeatureExtraction on ' + str(spec)})"
        if not rows.valid.any():
            log.warning("%s: no valid row (success and confidence >= %g)", label, opts.min_confidence)
        tracks.append(AUTrack(rows, match=opts.match, label=label))
    return tracks[0], tracks[1]


def identity_family(config: RunConfig) -> Family:
    from streameval.analysis.identity import IdentityAnalyser, Recogniser
    from streameval.metrics.deid import DeidMetric, RecogniserInfo
    from streameval.models.base import Embedder
    from streameval.models.loaders import load_dlib_embedder, load_dlib_onnx_embedder, load_faceres_embedder
    from streameval.models.zoo import resolve_models_dir

    models = model_options(config)
    opts = identity_options(config)
    embedders: list[tuple[str, Embedder, float]] = []
    for key in opts.recognisers:
        if key == "dlib" and opts.dlib_backend == "dlib":
            embedders.append((key, load_dlib_embedder(models.dir, num_jitters=opts.num_jitters), opts.dlib_threshold))
        elif key == "dlib":
            onnx_dlib = load_dlib_onnx_embedder(models.dir, models.device, threads=models.threads)
            embedders.append((key, onnx_dlib, opts.dlib_threshold))
        elif key == "faceres":
            threshold = opts.faceres_threshold
            faceres = load_faceres_embedder(models.dir, models.device, threshold=threshold, threads=models.threads)
            embedders.append((key, faceres, threshold))
        else:
            from streameval.models.insightface_backend import ArcFaceEmbedder
            from streameval.models.zoo import record_user_model

            where = opts.insightface_dir or resolve_models_dir(models.dir) / "insightface" / "buffalo_l"
            path = where / "w600k_r50.onnx"
            if not path.is_file():
                raise ModelError(
                    f"[identity] recognisers includes 'insightface' but {path} does not exist: place "
                    "the buffalo_l files there or set [identity] insightface_dir (docs/insightface.md)"
                )
            record_user_model("insightface_arcface", path)  # nothing pins a user's file: the report names it
            embedders.append(
                (
                    key,
                    ArcFaceEmbedder(
                        path, threshold=opts.insightface_threshold, device=models.device, threads=models.threads
                    ),
                    opts.insightface_threshold,
                )
            )
    refs = {
        label: (None if p is None else _reference_face(config, p))
        for label, p in (("a", opts.ref_a), ("b", opts.ref_b))
    }
    recognisers = []
    infos = []
    for key, embedder, threshold in embedders:
        emb = {
            label: (None if ref is None else embedder.embed(ref[0], ref[1].detection(), ref[1].mesh))
            for label, ref in refs.items()
        }
        recognisers.append(Recogniser(key, embedder, threshold, emb["a"], emb["b"]))
        infos.append(
            RecogniserInfo(
                key=key,
                model=embedder.name,
                runtime=getattr(embedder, "runtime", "onnxruntime"),
                metric=embedder.metric,
                threshold=threshold,
                a_reference=f"ref_a: {opts.ref_a}" if opts.ref_a else "paired source face",
                b_reference=None if opts.ref_b is None else f"ref_b: {opts.ref_b}",
            )
        )
    analyser = IdentityAnalyser(recognisers, rate=config.rate.get("identity", IDENTITY_RATE))
    return [analyser], [DeidMetric(infos, config.window)]


def _reference_face(config: RunConfig, path: Path) -> tuple[Image, TrackedFace]:
    """The primary (largest) face of a reference image, found like the stream's faces (InputError without one)."""
    from streameval.analysis.identity import read_image
    from streameval.faces.tracker import detection_faces

    image = read_image(path)
    found = detection_faces(*face_models(config), image)
    if found.primary is None:
        raise InputError(f"no face found in reference image {path}")
    if found.count > 1:
        log.warning("reference image %s has %d faces; using the largest", path, found.count)
    return image, found.primary


def reality_family(config: RunConfig) -> Family:
    from streameval.analysis.reality import RealityAnalyser
    from streameval.metrics.reality import RealityMetric
    from streameval.models.i3d import ONNX_FILENAME, I3DFeatureExtractor
    from streameval.models.zoo import model_file

    models = model_options(config)
    opts = reality_options(config)
    extractor = I3DFeatureExtractor(
        model_file("i3d", ONNX_FILENAME, models.dir), device=models.device, threads=models.threads
    )
    analyser = RealityAnalyser(
        extractor,
        stride=opts.stride,
        every_s=opts.every_s,
        box_scale=opts.box_scale,
        smoothing=opts.smoothing,
        max_gap=opts.max_gap,
        rate=config.rate.get("reality"),
    )
    return [analyser], [RealityMetric(config.window)]


def needs_face_stage(analysers: list[Analyser]) -> bool:
    return any(getattr(a, "needs_faces", False) for a in analysers)


def shared_metrics(analysers: list[Analyser], config: RunConfig) -> list[Metric]:
    """Metrics that depend on which analysers run, not on one family: face coverage (from the face stage)."""
    from streameval.metrics.coverage import CoverageMetric

    return [CoverageMetric(config.window)] if needs_face_stage(analysers) else []


#: metric families by name (``--metrics``); each builds its analysers and metrics from the config
FAMILIES: dict[str, FamilyFactory] = {
    "pixel": pixel_family,
    "expression": expression_family,
    "identity": identity_family,
    "reality": reality_family,
}
