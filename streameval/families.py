"""The metric families that ``--metrics`` names: ``FAMILIES`` maps each name to a factory.

Each factory reads its option tables (:mod:`streameval.analysis.face_config` for the face families), loads its
models and returns its analysers and metrics. Heavy imports happen inside the factories, so only the families a
run names cost anything.

Models are loaded per analyser: every analysis lane runs in its own thread, and
onnxruntime sessions are cheap next to the work they do. Default sampling rates: ``faces`` (expression) and
``reality`` every pair, ``identity`` 5 pairs per second (dlib ~135 ms per face on one CPU core); override with
``rate.<analyser>``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from streameval.analysis.base import Analyser
from streameval.analysis.face_config import (
    ModelOptions,
    OpenFaceOptions,
    expression_options,
    face_options,
    identity_options,
    model_options,
    reality_options,
)
from streameval.config import RunConfig
from streameval.errors import ConfigError, ModelError
from streameval.metrics.base import Metric
from streameval.models.base import FaceDetector

if TYPE_CHECKING:
    from streameval.analysis.openface_track import AUTrack

log = logging.getLogger(__name__)

IDENTITY_RATE = 5.0

Family = tuple[list[Analyser], list[Metric]]
FamilyFactory = Callable[[RunConfig], Family]


def pixel_family(config: RunConfig) -> Family:
    from streameval.analysis.pixel import REGIONS, pixel_analyser
    from streameval.metrics.pixel import PixelMetric

    table = dict(config.options.get("pixel", {}))
    region = table.pop("region", "face")
    if table:
        raise ConfigError(f"[pixel]: unknown keys {sorted(table)}; the pixel family has one option, region")
    if region not in REGIONS:
        raise ConfigError(f"[pixel] region = {region!r}: must be one of {', '.join(map(repr, REGIONS))}")
    return [pixel_analyser(region, rate=config.rate.get("pixel"))], [PixelMetric(config.window, region)]


def _detector(config: RunConfig, models: ModelOptions) -> FaceDetector:
    from streameval.models.loaders import load_detector

    faces = face_options(config)
    return load_detector(
        models.dir, models.device, min_score=faces.min_score, tiles=faces.tiles, threads=models.threads
    )


def expression_family(config: RunConfig) -> Family:
    from streameval.metrics.expression import ExpressionMetric

    models = model_options(config)
    opts = expression_options(config)
    metric = ExpressionMetric(config.window, au_source=opts.au_source)
    if opts.au_source == "openface":
        from streameval.analysis.expression import OpenFaceAUsAnalyser

        tracks = _openface_tracks(config, opts.openface)
        return [OpenFaceAUsAnalyser(_detector(config, models), tracks, rate=config.rate.get("faces"))], [metric]

    from streameval.analysis.au import MeshAUEstimator
    from streameval.analysis.expression import FacesAnalyser
    from streameval.models.loaders import load_landmarker

    def estimator() -> MeshAUEstimator:
        return MeshAUEstimator(
            adaptive=opts.adaptive_neutral, window=opts.neutral_window, min_frames=opts.neutral_min_frames
        )

    analyser = FacesAnalyser(
        _detector(config, models),
        load_landmarker(models.dir, models.device, threads=models.threads),
        (estimator(), estimator()),
        rate=config.rate.get("faces"),
    )
    return [analyser], [metric]


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
    from streameval.analysis.identity import IdentityAnalyser, Recogniser, reference_face
    from streameval.metrics.deid import DeidMetric, RecogniserInfo
    from streameval.models.base import Embedder
    from streameval.models.loaders import load_dlib_embedder, load_landmarker
    from streameval.models.zoo import resolve_models_dir

    models = model_options(config)
    opts = identity_options(config)
    detector = _detector(config, models)
    # ArcFace aligns on five points; BlazeFace gives six others, so the mesh supplies them.
    landmarker = (
        load_landmarker(models.dir, models.device, threads=models.threads)
        if "insightface" in opts.recognisers
        else None
    )
    embedders: list[tuple[str, Embedder, float]] = []
    for key in opts.recognisers:
        if key == "dlib":
            embedders.append((key, load_dlib_embedder(models.dir, num_jitters=opts.num_jitters), opts.dlib_threshold))
        else:
            from streameval.models.insightface_backend import ArcFaceEmbedder

            where = opts.insightface_dir or resolve_models_dir(models.dir) / "insightface" / "buffalo_l"
            path = where / "w600k_r50.onnx"
            if not path.is_file():
                raise ModelError(
                    f"[identity] recognisers includes 'insightface' but {path} does not exist: place "
                    "the buffalo_l files there or set [identity] insightface_dir (docs/insightface.md)"
                )
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
        label: (None if p is None else reference_face(p, detector, landmarker))
        for label, p in (("a", opts.ref_a), ("b", opts.ref_b))
    }
    recognisers = []
    infos = []
    for key, embedder, threshold in embedders:
        emb = {label: (None if ref is None else embedder.embed(*ref)) for label, ref in refs.items()}
        recognisers.append(Recogniser(key, embedder, threshold, emb["a"], emb["b"]))
        infos.append(
            RecogniserInfo(
                key=key,
                model=embedder.name,
                metric=embedder.metric,
                threshold=threshold,
                a_reference=f"ref_a: {opts.ref_a}" if opts.ref_a else "paired source face",
                b_reference=None if opts.ref_b is None else f"ref_b: {opts.ref_b}",
            )
        )
    analyser = IdentityAnalyser(
        detector, recognisers, landmarker=landmarker, rate=config.rate.get("identity", IDENTITY_RATE)
    )
    return [analyser], [DeidMetric(infos, config.window)]


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
        _detector(config, models),
        extractor,
        stride=opts.stride,
        box_scale=opts.box_scale,
        smoothing=opts.smoothing,
        max_gap=opts.max_gap,
        rate=config.rate.get("reality"),
    )
    return [analyser], [RealityMetric(config.window)]


def shared_metrics(analysers: list[Analyser], config: RunConfig) -> list[Metric]:
    """Metrics that depend on which analysers run, not on one family: face coverage."""
    from streameval.metrics.coverage import FACE_ANALYSERS, CoverageMetric

    names = [a.name for a in analysers]
    if not any(n in FACE_ANALYSERS for n in names):
        return []
    return [CoverageMetric(names, config.window)]


#: metric families by name (``--metrics``); each builds its analysers and metrics from the config
FAMILIES: dict[str, FamilyFactory] = {
    "pixel": pixel_family,
    "expression": expression_family,
    "identity": identity_family,
    "reality": reality_family,
}
