"""Options of the face metric families, read from the free-form TOML tables of a RunConfig.

Tables and keys (all optional):

* ``[models]``: ``dir`` (models directory; default: the zoo's lookup), ``device`` ('auto' | 'cpu' | 'cuda'),
  ``threads`` (onnxruntime intra-op threads per model; default 'auto': ``streameval.threads.onnx_threads``).
* ``[faces]`` (the face stage, :mod:`streameval.faces`): ``min_score`` (detector confidence, default 0.6),
  ``tiles`` (extra tiled pass for small faces, default 1 = off), ``tracking`` (follow faces with the mesh and
  detect only when needed, default true; false detects on every frame), ``redetect_every`` (scheduled detector
  run while tracking, a duration, default 1 s), ``min_presence`` (mesh face-presence below which a track is
  lost, 0.5), ``max_faces`` (faces tracked per stream, 4), ``cut_threshold`` (shot-change sensitivity, 0.08).
* ``[identity]``: ``ref_a``, ``ref_b`` (image paths), ``recognisers`` (list of 'dlib', 'insightface'; default
  ['dlib']; the first is the primary one whose values are also at the top of the record), ``dlib_backend``
  ('onnx', default: dlib's network on onnxruntime with its alignment in numpy/OpenCV | 'dlib': dlib itself, the
  reference, CPU only, ~13x slower), ``dlib_threshold``
  (0.6), ``insightface_dir`` (holds ``w600k_r50.onnx``; default ``<models dir>/insightface/buffalo_l``),
  ``insightface_threshold`` (0.6, cosine distance), ``num_jitters`` (dlib, 1).
* ``[expression]``: ``au_source`` ('mesh', default: AUs from the face-mesh geometry | 'openface'). With 'mesh':
  ``adaptive_neutral`` (per-stream running neutral face, default true), ``neutral_window`` (frames, 300),
  ``neutral_min_frames`` (30). With 'openface': ``openface_source_csv``, ``openface_deid_csv`` (precomputed
  CSVs; a stream without one gets FeatureExtraction run on its file), ``openface_binary`` (default
  $STREAMEVAL_OPENFACE, else ``FeatureExtraction`` on PATH), ``openface_min_confidence`` (0.75),
  ``openface_timeout`` (per run, a duration; default none), ``openface_match`` ('auto' | 'frame' | 'time').
* ``[reality]``: ``clip_every`` (stream time between clip starts, a duration, default 4 s), or instead
  ``stride`` (frames between clip starts; 16 = back to back), ``box_scale`` (crop side / longer face-box side,
  1.3), ``smoothing`` (weight of the previous crop box, 0.8), ``max_gap`` (frames
  without a face before a clip restarts, 4).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streameval.analysis.openface_track import MATCH_MODES, MatchMode
from streameval.config import RunConfig, parse_duration
from streameval.errors import ConfigError
from streameval.faces.tracker import TrackerOptions

RECOGNISERS = ("dlib", "insightface")
DLIB_BACKENDS = ("onnx", "dlib")


def _table(config: RunConfig, name: str, allowed: set[str]) -> Mapping[str, Any]:
    table = config.options.get(name, {})
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"[{name}]: unknown key(s) {unknown}; valid keys: {', '.join(sorted(allowed))}")
    return table


def _number(
    table: Mapping[str, Any], section: str, key: str, default: float, *, lo: float, hi: float, integer: bool = False
) -> Any:
    value = table.get(key, default)
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or not (lo <= value <= hi) or not math.isfinite(value):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"[{section}] {key}: must be {kind} in [{lo:g}, {hi:g}], got {value!r}")
    return value


def _path(table: Mapping[str, Any], section: str, key: str) -> Path | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"[{section}] {key}: must be a file path, got {value!r}")
    return Path(value).expanduser()


@dataclass(frozen=True, slots=True)
class ModelOptions:
    dir: Path | None = None
    device: str = "auto"
    threads: int | None = None  # None: 'auto', decided per model by streameval.threads.onnx_threads


@dataclass(frozen=True, slots=True)
class FaceOptions:
    min_score: float = 0.6
    tiles: int = 1
    tracker: TrackerOptions = field(default_factory=TrackerOptions)


@dataclass(frozen=True, slots=True)
class IdentityOptions:
    ref_a: Path | None = None
    ref_b: Path | None = None
    recognisers: tuple[str, ...] = ("dlib",)
    dlib_backend: str = "onnx"
    dlib_threshold: float = 0.6
    insightface_dir: Path | None = None
    insightface_threshold: float = 0.6
    num_jitters: int = 1


@dataclass(frozen=True, slots=True)
class OpenFaceOptions:
    source_csv: Path | None = None
    deid_csv: Path | None = None
    binary: str | None = None
    min_confidence: float = 0.75
    timeout: float | None = None
    match: MatchMode = "auto"


@dataclass(frozen=True, slots=True)
class ExpressionOptions:
    adaptive_neutral: bool = True
    neutral_window: int = 300
    neutral_min_frames: int = 30
    au_source: str = "mesh"
    openface: OpenFaceOptions = OpenFaceOptions()


# I3D costs ~1.1 CPU-s per clip on this class of CPU (2.2 s a clip pair): every 4 s it takes ~0.55 of a core,
# while a 10 s window still holds 2-3 clips per side for its FID
CLIP_EVERY_S = 4.0


@dataclass(frozen=True, slots=True)
class RealityOptions:
    stride: int = 16
    every_s: float | None = CLIP_EVERY_S  # None: clips spaced by ``stride`` frames
    box_scale: float = 1.3
    smoothing: float = 0.8
    max_gap: int = 4


def model_options(config: RunConfig) -> ModelOptions:
    t = _table(config, "models", {"dir", "device", "threads"})
    device = t.get("device", "auto")
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"[models] device: must be 'auto', 'cpu' or 'cuda', got {device!r}")
    threads = t.get("threads", "auto")
    if threads != "auto":
        threads = _number(t, "models", "threads", 1, lo=1, hi=256, integer=True)
    return ModelOptions(_path(t, "models", "dir"), device, None if threads == "auto" else threads)


def _bool(table: Mapping[str, Any], section: str, key: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"[{section}] {key}: must be true or false, got {value!r}")
    return value


def _positive_duration(table: Mapping[str, Any], section: str, key: str, default: float) -> float:
    value = parse_duration(table.get(key, default), f"[{section}] {key}")
    if not value > 0:
        raise ConfigError(f"[{section}] {key}: must be a positive duration, got {table.get(key)!r}")
    return value


def face_options(config: RunConfig) -> FaceOptions:
    keys = {"min_score", "tiles", "tracking", "redetect_every", "min_presence", "max_faces", "cut_threshold"}
    t = _table(config, "faces", keys)
    base = TrackerOptions()
    tracker = TrackerOptions(
        tracking=_bool(t, "faces", "tracking", base.tracking),
        redetect_every=_positive_duration(t, "faces", "redetect_every", base.redetect_every),
        min_presence=float(_number(t, "faces", "min_presence", base.min_presence, lo=0.0, hi=1.0)),
        max_faces=_number(t, "faces", "max_faces", base.max_faces, lo=1, hi=64, integer=True),
        match_iou=base.match_iou,
        cut_threshold=float(_number(t, "faces", "cut_threshold", base.cut_threshold, lo=0.0, hi=1.0)),
    )
    return FaceOptions(
        float(_number(t, "faces", "min_score", 0.6, lo=0.0, hi=1.0)),
        _number(t, "faces", "tiles", 1, lo=1, hi=8, integer=True),
        tracker,
    )


def identity_options(config: RunConfig) -> IdentityOptions:
    keys = {
        "ref_a",
        "ref_b",
        "recognisers",
        "dlib_backend",
        "dlib_threshold",
        "insightface_dir",
        "insightface_threshold",
        "num_jitters",
    }
    t = _table(config, "identity", keys)
    recs = t.get("recognisers", ["dlib"])
    if isinstance(recs, str):
        recs = [r.strip() for r in recs.split(",") if r.strip()]
    if not isinstance(recs, list) or not recs or len(set(recs)) != len(recs) or any(r not in RECOGNISERS for r in recs):
        raise ConfigError(
            f"[identity] recognisers: a non-empty list of distinct names from {list(RECOGNISERS)}, got {recs!r}"
        )
    backend = t.get("dlib_backend", "onnx")
    if backend not in DLIB_BACKENDS:
        raise ConfigError(f"[identity] dlib_backend: must be 'onnx' or 'dlib', got {backend!r}")
    num_jitters = _number(t, "identity", "num_jitters", 1, lo=1, hi=100, integer=True)
    if num_jitters > 1 and backend != "dlib":
        raise ConfigError("[identity] num_jitters > 1 needs dlib_backend = 'dlib' (dlib's own random jitter)")
    for key in ("ref_a", "ref_b"):
        p = _path(t, "identity", key)
        if p is not None and p.is_dir():
            raise ConfigError(f"[identity] {key}: reference image {p} is a directory, not an image file")
        if p is not None and not p.is_file():
            raise ConfigError(f"[identity] {key}: reference image {p} does not exist")
    return IdentityOptions(
        ref_a=_path(t, "identity", "ref_a"),
        ref_b=_path(t, "identity", "ref_b"),
        recognisers=tuple(recs),
        dlib_backend=backend,
        dlib_threshold=float(_number(t, "identity", "dlib_threshold", 0.6, lo=1e-6, hi=10.0)),
        insightface_dir=_path(t, "identity", "insightface_dir"),
        insightface_threshold=float(_number(t, "identity", "insightface_threshold", 0.6, lo=1e-6, hi=1.999)),
        num_jitters=num_jitters,
    )


MESH_KEYS = {"adaptive_neutral", "neutral_window", "neutral_min_frames"}
OPENFACE_KEYS = {
    "openface_source_csv",
    "openface_deid_csv",
    "openface_binary",
    "openface_min_confidence",
    "openface_timeout",
    "openface_match",
}
AU_SOURCES = ("mesh", "openface")


def expression_options(config: RunConfig) -> ExpressionOptions:
    t = _table(config, "expression", {"au_source"} | MESH_KEYS | OPENFACE_KEYS)
    au_source = t.get("au_source", "mesh")
    if au_source not in AU_SOURCES:
        raise ConfigError(f"[expression] au_source: must be 'mesh' or 'openface', got {au_source!r}")
    # options of the other source would be silently ignored: say so instead
    foreign = sorted(set(t) & (OPENFACE_KEYS if au_source == "mesh" else MESH_KEYS))
    if foreign:
        other = "openface" if au_source == "mesh" else "mesh"
        raise ConfigError(f"[expression] {foreign}: only used with au_source = '{other}' (au_source is '{au_source}')")
    adaptive = _bool(t, "expression", "adaptive_neutral", True)
    window = _number(t, "expression", "neutral_window", 300, lo=1, hi=10**6, integer=True)
    min_frames = _number(t, "expression", "neutral_min_frames", 30, lo=1, hi=window, integer=True)
    return ExpressionOptions(adaptive, window, min_frames, au_source, _openface_options(t))


def _openface_options(t: Mapping[str, Any]) -> OpenFaceOptions:
    csvs = {}
    for key in ("openface_source_csv", "openface_deid_csv"):
        path = _path(t, "expression", key)
        if path is not None and not path.is_file():
            raise ConfigError(f"[expression] {key}: OpenFace CSV {path} does not exist")
        csvs[key] = path
    binary = t.get("openface_binary")
    if binary is not None and (not isinstance(binary, str) or not binary):
        raise ConfigError(f"[expression] openface_binary: must be a path or command name, got {binary!r}")
    timeout = t.get("openface_timeout")
    if timeout is not None:
        timeout = parse_duration(timeout, "[expression] openface_timeout")
        if not timeout > 0:
            raise ConfigError(f"[expression] openface_timeout: must be positive, got {timeout!r} s")
    match = t.get("openface_match", "auto")
    if match not in MATCH_MODES:
        raise ConfigError(f"[expression] openface_match: must be one of {list(MATCH_MODES)}, got {match!r}")
    return OpenFaceOptions(
        source_csv=csvs["openface_source_csv"],
        deid_csv=csvs["openface_deid_csv"],
        binary=None if binary is None else os.path.expanduser(binary),
        min_confidence=float(_number(t, "expression", "openface_min_confidence", 0.75, lo=0.0, hi=1.0)),
        timeout=timeout,
        match=match,
    )


def reality_options(config: RunConfig) -> RealityOptions:
    t = _table(config, "reality", {"clip_every", "stride", "box_scale", "smoothing", "max_gap"})
    if "clip_every" in t and "stride" in t:
        raise ConfigError("[reality] clip_every and stride: give one of them (time or frames between clip starts)")
    return RealityOptions(
        stride=_number(t, "reality", "stride", 16, lo=1, hi=10**6, integer=True),
        every_s=None if "stride" in t else _positive_duration(t, "reality", "clip_every", CLIP_EVERY_S),
        box_scale=float(_number(t, "reality", "box_scale", 1.3, lo=0.5, hi=4.0)),
        smoothing=float(_number(t, "reality", "smoothing", 0.8, lo=0.0, hi=0.99)),
        max_gap=_number(t, "reality", "max_gap", 4, lo=0, hi=10**6, integer=True),
    )
