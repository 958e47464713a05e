"""Options of the face metric families, built from the checked tables of a RunConfig.

The keys, their types, bounds and defaults are declared once, in :mod:`streameval.config` (``ModelsTable``,
``FacesTable``, ``IdentityTable``, ``ExpressionTable``, ``RealityTable``; reference: docs/config.md), and checked
when the configuration is loaded. What is left here is what needs the file system (reference images and OpenFace
CSVs must exist) and the translation into the option objects the families use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from streameval.analysis.openface_track import MatchMode
from streameval.config import ExpressionTable, FacesTable, IdentityTable, ModelsTable, RealityTable, RunConfig
from streameval.errors import ConfigError
from streameval.faces.tracker import TrackerOptions

# The option objects carry no defaults of their own: those are the config schema's (streameval.config).


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelOptions:
    dir: Path | None
    device: str
    threads: int | None  # None: 'auto', decided per model by streameval.threads.onnx_threads


@dataclass(frozen=True, slots=True, kw_only=True)
class FaceOptions:
    min_score: float
    tiles: int
    tracker: TrackerOptions


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityOptions:
    ref_a: Path | None
    ref_b: Path | None
    recognisers: tuple[str, ...]  # the first is the primary one, whose values are also at the top of the record
    dlib_backend: str
    dlib_threshold: float
    insightface_dir: Path | None
    insightface_threshold: float
    faceres_threshold: float
    num_jitters: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenFaceOptions:
    source_csv: Path | None
    deid_csv: Path | None
    binary: str | None
    min_confidence: float
    timeout: float | None
    match: MatchMode


@dataclass(frozen=True, slots=True, kw_only=True)
class PyFaceAUOptions:
    python: str | None  # None: the Python running streameval
    timeout: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpressionOptions:
    au_model: Literal["geometry", "blendshapes", "combined"]
    adaptive_neutral: bool
    neutral_window: int
    neutral_min_frames: int
    au_source: str
    openface: OpenFaceOptions
    pyfaceau: PyFaceAUOptions


CLIP_FRAMES = 16  # frames in an I3D clip; `stride` 16 puts clips back to back


@dataclass(frozen=True, slots=True, kw_only=True)
class RealityOptions:
    stride: int
    every_s: float | None  # None: clips spaced by ``stride`` frames
    box_scale: float
    smoothing: float
    max_gap: int


def model_options(config: RunConfig) -> ModelOptions:
    t = config.table(ModelsTable)
    return ModelOptions(dir=_path(t.dir), device=t.device, threads=None if t.threads == "auto" else t.threads)


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value).expanduser()


def face_options(config: RunConfig) -> FaceOptions:
    t = config.table(FacesTable)
    tracker = TrackerOptions(
        tracking=t.tracking,
        redetect_every=t.redetect_every,
        min_presence=t.min_presence,
        max_faces=t.max_faces,
        cut_threshold=t.cut_threshold,
    )
    return FaceOptions(min_score=t.min_score, tiles=t.tiles, tracker=tracker)


def identity_options(config: RunConfig) -> IdentityOptions:
    t = config.table(IdentityTable)
    refs = {"ref_a": _path(t.ref_a), "ref_b": _path(t.ref_b)}
    for key, path in refs.items():
        if path is not None and path.is_dir():
            raise ConfigError(f"[identity] {key}: reference image {path} is a directory, not an image file")
        if path is not None and not path.is_file():
            raise ConfigError(f"[identity] {key}: reference image {path} does not exist")
    return IdentityOptions(
        ref_a=refs["ref_a"],
        ref_b=refs["ref_b"],
        recognisers=tuple(t.recognisers),
        dlib_backend=t.dlib_backend,
        dlib_threshold=t.dlib_threshold,
        insightface_dir=_path(t.insightface_dir),
        insightface_threshold=t.insightface_threshold,
        faceres_threshold=t.faceres_threshold,
        num_jitters=t.num_jitters,
    )


def expression_options(config: RunConfig) -> ExpressionOptions:
    t = config.table(ExpressionTable)
    return ExpressionOptions(
        au_model=t.au_model,
        adaptive_neutral=t.adaptive_neutral,
        neutral_window=t.neutral_window,
        neutral_min_frames=t.neutral_min_frames,
        au_source=t.au_source,
        openface=_openface_options(t),
        pyfaceau=PyFaceAUOptions(
            python=None if t.pyfaceau_python is None else os.path.expanduser(t.pyfaceau_python),
            timeout=t.pyfaceau_timeout,
        ),
    )


def _openface_options(t: ExpressionTable) -> OpenFaceOptions:
    csvs = {"openface_source_csv": _path(t.openface_source_csv), "openface_deid_csv": _path(t.openface_deid_csv)}
    for key, path in csvs.items():
        if path is not None and not path.is_file():
            raise ConfigError(f"[expression] {key}: OpenFace CSV {path} does not exist")
    return OpenFaceOptions(
        source_csv=csvs["openface_source_csv"],
        deid_csv=csvs["openface_deid_csv"],
        binary=None if t.openface_binary is None else os.path.expanduser(t.openface_binary),
        min_confidence=t.openface_min_confidence,
        timeout=t.openface_timeout,
        match=t.openface_match,
    )


def reality_options(config: RunConfig) -> RealityOptions:
    t = config.table(RealityTable)
    return RealityOptions(
        stride=CLIP_FRAMES if t.stride is None else t.stride,
        every_s=None if t.stride is not None else t.clip_every,
        box_scale=t.box_scale,
        smoothing=t.smoothing,
        max_gap=t.max_gap,
    )
