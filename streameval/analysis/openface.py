"""Action units from OpenFace: read its CSV output, or run a user's ``FeatureExtraction`` binary.

OpenFace (not redistributable here) writes one row per frame with columns such as ``frame, face_id,
timestamp, confidence, success, ..., AU01_r, ..., AU45_r, AU01_c, ...``; its header puts a space after each
comma (``frame, face_id, ...``). We read only what the expression metrics need: the 17 ``AUxx_r`` intensities,
the time of each row, and whether the row can be trusted (``success == 1`` and ``confidence`` at or above a
threshold).
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from streameval.analysis.au.estimator import AU_NAMES
from streameval.errors import InputError, ModelError, UsageError

log = logging.getLogger(__name__)

BINARY_ENV = "STREAMEVAL_OPENFACE"  # path of FeatureExtraction when not given explicitly
DEFAULT_MIN_CONFIDENCE = 0.75


class OpenFaceAUs(NamedTuple):
    """Per-row OpenFace output: ``timestamps`` (N,) seconds, ``aus`` (N, 17) in ``AU_NAMES`` order, ``valid`` (N,)."""

    timestamps: npt.NDArray[np.float64]
    aus: npt.NDArray[np.float32]
    valid: npt.NDArray[np.bool_]


class OpenFaceRows(NamedTuple):
    """:class:`OpenFaceAUs` plus ``frames`` (N,) OpenFace's 1-based frame numbers (None without a ``frame``
    column); ``timestamps`` is None when the CSV has neither ``timestamp`` nor ``frame`` with an ``fps``."""

    timestamps: npt.NDArray[np.float64] | None
    frames: npt.NDArray[np.int64] | None
    aus: npt.NDArray[np.float32]
    valid: npt.NDArray[np.bool_]


def read_openface_csv(
    path: str | os.PathLike[str],
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    face_id: int | None = 0,
    fps: float | None = None,
) -> OpenFaceAUs:
    """Read an OpenFace CSV.

    A row is valid when ``success`` is 1 (if the column exists) and ``confidence`` >= ``min_confidence`` (if it
    exists). Times come from ``timestamp``, else from ``frame`` (1-based, as OpenFace counts) and ``fps``.
    With a ``face_id`` column (multi-face tools), only rows of ``face_id`` are kept (``None`` keeps all).
    """
    rows = read_openface_rows(path, min_confidence=min_confidence, face_id=face_id, fps=fps)
    if rows.timestamps is None:
        raise InputError(f"OpenFace CSV {path} has no 'timestamp' column; pass fps to derive times from 'frame'")
    return OpenFaceAUs(rows.timestamps, rows.aus, rows.valid)


def read_csv_table(file: Path, tool: str) -> list[list[str]]:
    """The rows of an AU tool's CSV (header first, cells without OpenFace's leading spaces); InputError naming the
    file and the ``tool`` when it cannot be read or is empty."""
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, skipinitialspace=True))
    except OSError as exc:
        raise InputError(f"cannot read {tool} CSV {file}: {exc}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InputError(f"{file} is not a readable CSV: {exc}") from exc
    if not rows:
        raise InputError(f"{tool} CSV {file} is empty")
    return rows


def read_openface_rows(
    path: str | os.PathLike[str],
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    face_id: int | None = 0,
    fps: float | None = None,
) -> OpenFaceRows:
    """:func:`read_openface_csv` that also keeps the ``frame`` column and does not insist on times."""
    if not 0.0 <= min_confidence <= 1.0:
        raise UsageError(f"min_confidence must be in [0, 1], got {min_confidence}")
    if fps is not None and fps <= 0:
        raise UsageError(f"fps must be positive, got {fps}")
    file = Path(path)
    rows = read_csv_table(file, "OpenFace")
    header = [name.strip() for name in rows[0]]
    column = {name: i for i, name in enumerate(header)}
    missing = [name for name in AU_NAMES if name not in column]
    if missing:
        raise InputError(f"OpenFace CSV {file} lacks AU intensity columns {missing} (run FeatureExtraction with -aus)")

    body = [row for row in rows[1:] if row and any(cell.strip() for cell in row)]
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise InputError(f"{file}:{line}: {len(row)} fields, header has {len(header)}")

    def numbers(name: str) -> npt.NDArray[np.float64]:
        idx = column[name]
        try:
            return np.array([float(row[idx]) for row in body], dtype=np.float64)
        except ValueError as exc:
            raise InputError(f"{file}: non-numeric value in column {name!r}: {exc}") from exc

    keep = np.ones(len(body), dtype=bool)
    if face_id is not None and "face_id" in column:
        keep = numbers("face_id") == face_id
    frames = None
    if "frame" in column:
        frame_numbers = numbers("frame")
        if not np.all(frame_numbers == np.round(frame_numbers)):
            raise InputError(f"{file}: column 'frame' holds non-integer frame numbers")
        frames = frame_numbers.astype(np.int64)
    times: npt.NDArray[np.float64] | None = None
    if "timestamp" in column:
        times = numbers("timestamp")
    elif frames is not None and fps is not None:
        times = (frames.astype(np.float64) - 1.0) / fps
    aus = np.stack([numbers(name) for name in AU_NAMES], axis=1) if body else np.zeros((0, len(AU_NAMES)))
    valid = np.all(np.isfinite(aus), axis=1)
    if "success" in column:
        valid &= numbers("success") == 1
    if "confidence" in column:
        valid &= numbers("confidence") >= min_confidence
    log.debug("%s: %d rows, %d valid", file, int(keep.sum()), int((valid & keep).sum()))
    return OpenFaceRows(
        None if times is None else times[keep],
        None if frames is None else frames[keep],
        aus[keep].astype(np.float32),
        valid[keep],
    )


def resolve_binary(binary: str | os.PathLike[str] | None = None) -> Path:
    """The FeatureExtraction executable: ``binary``, else $STREAMEVAL_OPENFACE, else ``FeatureExtraction`` on PATH."""
    wanted = str(binary) if binary is not None else os.environ.get(BINARY_ENV, "FeatureExtraction")
    found = shutil.which(wanted)
    if found is None:
        raise ModelError(
            f"OpenFace FeatureExtraction not found ({wanted!r}); install OpenFace and pass its path "
            f"or set ${BINARY_ENV}"
        )
    return Path(found)


def run_au_tool(
    command: list[str], *, tool: str, program: str, source: Path, timeout_s: float | None
) -> subprocess.CompletedProcess[str]:
    """Run an AU tool on ``source`` (no shell, output captured); ModelError when it cannot start or overruns
    ``timeout_s``. Its exit status is the caller's to judge."""
    log.info("running %s", " ".join(command))
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ModelError(f"{tool} did not finish within {timeout_s} s on {source}") from exc
    except OSError as exc:
        raise ModelError(f"cannot start {program}: {exc}") from exc


def run_feature_extraction(
    video: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    binary: str | os.PathLike[str] | None = None,
    timeout_s: float | None = None,
    extra_args: Sequence[str] = (),
) -> Path:
    """Run ``FeatureExtraction -f VIDEO -out_dir OUT_DIR -aus`` (no shell) and return the CSV it wrote."""
    source = Path(video)
    if not source.is_file():
        raise InputError(f"video {source} does not exist")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    exe = resolve_binary(binary)
    command = [str(exe), "-f", str(source), "-out_dir", str(out), "-aus", *extra_args]
    done = run_au_tool(command, tool="OpenFace", program=f"OpenFace {exe}", source=source, timeout_s=timeout_s)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout or "").strip()[-500:]
        raise ModelError(f"OpenFace exited with status {done.returncode} on {source}: {tail}")
    expected = out / f"{source.stem}.csv"
    if expected.is_file():
        return expected
    candidates = sorted(out.glob("*.csv"))
    if len(candidates) == 1:
        return candidates[0]
    raise ModelError(f"OpenFace finished but wrote no {expected.name} in {out} (found {[c.name for c in candidates]})")


def openface_aus(
    video: str | os.PathLike[str],
    *,
    binary: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    timeout_s: float | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> OpenFaceAUs:
    """Run OpenFace on a video and read its AUs; without ``out_dir`` its files go to a temporary directory."""
    if out_dir is not None:
        csv_path = run_feature_extraction(video, out_dir, binary=binary, timeout_s=timeout_s)
        return read_openface_csv(csv_path, min_confidence=min_confidence)
    with tempfile.TemporaryDirectory(prefix="streameval-openface-") as tmp:
        csv_path = run_feature_extraction(video, tmp, binary=binary, timeout_s=timeout_s)
        return read_openface_csv(csv_path, min_confidence=min_confidence)
