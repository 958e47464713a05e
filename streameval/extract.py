"""``streameval extract VIDEO --out aus.csv``: per-frame action units in OpenFace's CSV layout.

One row per decoded frame, for the primary face (OpenFace's FeatureExtraction follows one face, ``face_id`` 0):
``frame`` (1-based, as OpenFace counts), ``face_id``, ``timestamp`` (seconds from the first frame),
``confidence`` (the mesh network's face-presence probability), ``success`` (1 when a face was found),
``pose_Rx``/``pose_Ry``/``pose_Rz`` (radians, OpenFace's convention; :mod:`~streameval.analysis.au.pose`), the
17 ``AUxx_r`` intensities (0-5) of ``[expression] au_model``, and with the ``blendshapes`` or ``combined`` model
MediaPipe's 52 blendshape coefficients under their own names. A frame without a face is a row with ``success``
0 and zeros, as OpenFace writes it. The header has OpenFace's ", " separators, so tools made for OpenFace CSVs
(and :func:`streameval.analysis.openface.read_openface_csv`) read it.

The faces come from the face stage's tracker with the run's ``[faces]`` settings, and the AUs from the same
estimator as the ``expression`` family, so a replay and an extract of one file agree frame by frame. The file is
checked like every output before anything is decoded and written atomically at the end.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from streameval.analysis.au.face_aus import FaceAUs
    from streameval.config import RunConfig
    from streameval.faces.types import TrackedFace

log = logging.getLogger(__name__)

BASE_COLUMNS = ("frame", "face_id", "timestamp", "confidence", "success", "pose_Rx", "pose_Ry", "pose_Rz")
AU_MODEL_CHOICES = ("geometry", "blendshapes", "combined")


@dataclass(frozen=True, slots=True)
class ExtractSummary:
    frames: int
    with_face: int
    columns: tuple[str, ...]
    au_model: str


def columns(with_blendshapes: bool) -> tuple[str, ...]:
    from streameval.analysis.au import AU_NAMES
    from streameval.models.face_landmarker import BLENDSHAPE_NAMES

    return BASE_COLUMNS + AU_NAMES + (BLENDSHAPE_NAMES if with_blendshapes else ())


def _number(value: float) -> str:
    # 9 significant digits give every float32 back exactly, so a reader sees the estimator's own values
    return f"{float(value):.9g}"


def header_line(with_blendshapes: bool, lead: tuple[str, ...] = ()) -> str:
    """The CSV header (OpenFace's ", " separators), after the ``lead`` columns (a replay's ``stream``)."""
    return ", ".join(lead + columns(with_blendshapes))


def frame_row(frame: int, t: float, face: TrackedFace | None, result: FaceAUs | None, *, with_blendshapes: bool) -> str:
    """One frame's row (without a lead column): ``frame`` 1-based, ``t`` seconds from the first frame; a frame
    without a face (``face`` None) is ``success`` 0 and zeros, as OpenFace writes it."""
    from streameval.analysis.au.pose import head_pose

    if face is None or result is None:
        zeros = ", ".join(["0"] * (len(columns(with_blendshapes)) - 5))  # everything after `success`
        return f"{frame}, 0, {t:.3f}, 0, 0, {zeros}"
    values = [face.presence, 1, *head_pose(face.mesh), *result.aus]
    if with_blendshapes:
        if result.blendshapes is None:
            raise ValueError("frame_row: with_blendshapes needs the AU result's blendshapes")
        values += list(result.blendshapes)
    return f"{frame}, 0, {t:.3f}, " + ", ".join(_number(v) for v in values)


def _frames(video: str) -> Iterator[tuple[npt.NDArray[np.uint8], float | None]]:
    """(RGB image, presentation time or None) of every decoded frame; decoding errors are InputErrors."""
    import av.error

    from streameval.errors import InputError
    from streameval.sources.decoder import frame_time, open_input, to_rgb
    from streameval.sources.spec import parse_spec

    container, stream, _ = open_input(parse_spec(video), options={}, timeout=None)
    with container:
        try:
            for frame in container.decode(stream):
                yield to_rgb(frame), frame_time(frame)
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"{video}: decoding failed: {str(exc).splitlines()[0] if str(exc) else exc}") from exc


def extract(video: str, out: str, config: RunConfig) -> ExtractSummary:
    """Write ``out`` (the CSV) for ``video`` with the run settings ``config``; see the module doc."""
    from streameval.analysis.au import MeshAUEstimator
    from streameval.analysis.au.face_aus import FaceAUEstimator
    from streameval.analysis.face_config import expression_options, face_options
    from streameval.errors import InputError
    from streameval.faces.tracker import FaceTracker
    from streameval.families import blendshape_models, face_models, stage_meshes
    from streameval.outputs import check_output, write_file_atomic

    if video != "-" and "://" not in video:
        path = Path(video)
        if not path.exists():
            raise InputError(f"{video}: no such file")
        if path.is_dir():
            raise InputError(f"{video}: is a directory, not a video")
    check_output("--out", out, [("video", video)] if "://" not in video else [])
    opts = expression_options(config)
    detector, _ = face_models(config)
    networks = None if opts.au_model == "geometry" else blendshape_models(config)
    tracking, beside = stage_meshes(config, opts.au_model)
    geometry = MeshAUEstimator(
        adaptive=opts.adaptive_neutral, window=opts.neutral_window, min_frames=opts.neutral_min_frames
    )
    estimator = FaceAUEstimator(opts.au_model, geometry, networks)
    tracker = FaceTracker(detector, tracking, face_options(config).tracker, mesh_468=beside)
    with_blendshapes = networks is not None
    header = columns(with_blendshapes)
    lines = [header_line(with_blendshapes)]
    first: float | None = None
    with_face = 0
    for index, (image, pts) in enumerate(_frames(video)):
        if pts is not None and first is None:
            first = pts
        t = (pts - first) if pts is not None and first is not None else float(index) / 30.0
        face = tracker.process(image, t).primary
        result = None if face is None else estimator.estimate(image, face)
        with_face += face is not None
        lines.append(frame_row(index + 1, t, face, result, with_blendshapes=with_blendshapes))
    frames = len(lines) - 1
    if frames == 0:
        raise InputError(f"{video}: no frame could be decoded")
    write_file_atomic(Path(out), "\n".join(lines) + "\n")
    return ExtractSummary(frames, with_face, header, opts.au_model)


def add_parser(subparsers: Any) -> None:
    """Register ``extract`` on the main command line's subparsers (``handler`` returns the exit code)."""
    parser = subparsers.add_parser(
        "extract",
        help="per-frame action units of one video as an OpenFace-style CSV",
        description="Write one row per frame of VIDEO (the primary face's head pose and 17 AU intensities, and "
        "MediaPipe's 52 blendshapes with --au-model blendshapes/combined) in OpenFace's CSV layout.",
    )
    parser.add_argument("video", help="video file (or a URL / - like the evaluation commands)")
    parser.add_argument("--out", required=True, help="CSV file to write (replaced atomically)")
    parser.add_argument("-c", "--config", help="TOML file: its [faces], [expression] and [models] tables apply")
    parser.add_argument(
        "--au-model", choices=AU_MODEL_CHOICES, default=None, help="AU model (default: [expression] au_model)"
    )
    parser.add_argument("--models-dir", default=None, help="models directory (default: [models] dir)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from streameval.config import load_config

    overrides: dict[str, Any] = {}
    if args.au_model is not None:
        overrides["expression"] = {"au_model": args.au_model}
    if args.models_dir is not None:
        overrides["models"] = {"dir": args.models_dir}
    config = load_config(args.config, overrides)
    summary = extract(args.video, args.out, config)
    if summary.with_face == 0:
        sys.stderr.write(
            f"streameval: no face found in any of the {summary.frames} frames of {args.video}; "
            f"{args.out} has {summary.frames} rows with success 0\n"
        )
    else:
        sys.stderr.write(
            f"{args.out}: {summary.frames} frames, a face on {summary.with_face} ({summary.au_model} AUs)\n"
        )
    return 0
