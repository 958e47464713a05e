"""Options of the face metric families, read from the free-form TOML tables of a RunConfig.

Tables and keys (all optional):

* ``[models]``: ``dir`` (models directory; default: the zoo's lookup), ``device`` ('auto' | 'cpu' | 'cuda'),
  ``threads`` (onnxruntime intra-op threads per model; default 'auto': ``streameval.threads.onnx_threads``).
* ``[faces]``: ``min_score`` (detector confidence, default 0.6), ``tiles`` (extra tiled pass for small faces,
  default 1 = off).
* ``[identity]``: ``ref_a``, ``ref_b`` (image paths), ``recognisers`` (list of 'dlib', 'insightface'; default
  ['dlib']; the first is the primary one whose values are also at the top of the record), ``dlib_threshold``
  (0.6), ``insightface_dir`` (holds ``w600k_r50.onnx``; default ``<models dir>/insightface/buffalo_l``),
  ``insightface_threshold`` (0.6, cosine distance), ``num_jitters`` (dlib, 1).
* ``[expression]``: ``au_source`` ('mesh', default: AUs from the face-mesh geometry | 'openface'). With 'mesh':
  ``adaptive_neutral`` (per-stream running neutral face, default true), ``neutral_window`` (frames, 300),
  ``neutral_min_frames`` (30). With 'openface': ``openface_source_csv``, ``openface_deid_csv`` (precomputed
  CSVs; a stream without one gets FeatureExtraction run on its file), ``openface_binary`` (default
  $STREAMEVAL_OPENFACE, else ``FeatureExtraction`` on PATH), ``openface_min_confidence`` (0.75),
  ``openface_timeout`` (per run, a duration; default none), ``openface_match`` ('auto' | 'frame' | 'time').
* ``[reality]``: ``stride`` (frames between clip starts, default 16 = back to back), ``box_scale`` (crop side
  / longer detection side, 1.3), ``smoothing`` (weight of the previous crop box, 0.8), ``max_gap`` (frames
  without a face before a clip restarts, 4).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streameval.analysis.openface_track import MATCH_MODES, MatchMode
from streameval.config import RunConfig, parse_duration
from streameval.errors import ConfigError

RECOGNISERS = ("dlib", "insightface")


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


@dataclass(frozen=True, slots=True)
class IdentityOptions:
    ref_a: Path | None = None
    ref_b: Path | None = None
    recognisers: tuple[str, ...] = ("dlib",)
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


@dataclass(frozen=True, slots=True)
class RealityOptions:
    stride: int = 16
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


def face_options(config: RunConfig) -> FaceOptions:
    t = _table(config, "faces", {"min_score", "tiles"})
    return FaceOptions(
        float(_number(t, "faces", "min_score", 0.6, lo=0.0, hi=1.0)),
        _number(t, "faces", "tiles", 1, lo=1, hi=8, integer=True),
    )


def identity_options(config: RunConfig) -> IdentityOptions:
    keys = {
        "ref_a",
        "ref_b",
        "recognisers",
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
    for key in ("ref_a", "ref_b"):
        p = _path(t, "identity", key)
        if p is not None and not p.is_file():
            raise ConfigError(f"[identity] {key}: reference image {p} does not exist")
    return IdentityOptions(
        ref_a=_path(t, "identity", "ref_a"),
        ref_b=_path(t, "identity", "ref_b"),
        recognisers=tuple(recs),
        dlib_threshold=float(_number(t, "identity", "dlib_threshold", 0.6, lo=1e-6, hi=10.0)),
        insightface_dir=_path(t, "identity", "insightface_dir"),
        insightface_threshold=float(_number(t, "identity", "insightface_threshold", 0.6, lo=1e-6, hi=1.999)),
        num_jitters=_number(t, "identity", "num_jitters", 1, lo=1, hi=100, integer=True),
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
    adaptive = t.get("adaptive_neutral", True)
    if not isinstance(adaptive, bool):
        raise ConfigError(f"[expression] adaptive_neutral: must be true or false, got {adaptive!r}")
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
    t = _table(config, "reality", {"stride", "box_scale", "smoothing", "max_gap"})
    return RealityOptions(
        stride=_number(t, "reality", "stride", 16, lo=1, hi=10**6, integer=True),
        box_scale=float(_number(t, "reality", "box_scale", 1.3, lo=0.5, hi=4.0)),
        smoothing=float(_number(t, "reality", "smoothing", 0.8, lo=0.0, hi=0.99)),
        max_gap=_number(t, "reality", "max_gap", 4, lo=0, hi=10**6, integer=True),
    )
