"""Action units from pyfaceau, a pure-Python port of OpenFace 2.2's AU pipeline, where the user has it.

pyfaceau is not a dependency of streameval: its code is licensed CC BY-NC 4.0 and the OpenFace model files it
runs are downloaded by the user (``pyfaceau-download-models``) under OpenFace's licence (academic, non-commercial
research). It also pins OpenCV 4 and needs torch, while streameval needs OpenCV 5, so it is best installed in a
virtual environment of its own; ``[expression] pyfaceau_python`` names that environment's Python (default: the
Python running streameval).

streameval runs its command line once per input file before the run, as it runs OpenFace's FeatureExtraction:
``PYTHON -m pyfaceau VIDEO -o CSV``, which writes one row per frame: ``frame`` (counted from 0), ``timestamp``
(``frame / fps``), ``success`` (``True``/``False``) and the 17 ``AUxx_r`` intensities (empty or meaningless where
``success`` is false). :func:`read_pyfaceau_rows` turns that into the :class:`OpenFaceRows` the OpenFace source
reads, with ``frame`` moved to OpenFace's 1-based count, so rows are matched to decoded frames as OpenFace's are
(:mod:`streameval.analysis.openface_track`).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from streameval.analysis.au.estimator import AU_NAMES
from streameval.analysis.openface import OpenFaceRows, read_csv_table, run_au_tool
from streameval.errors import InputError, ModelError

log = logging.getLogger(__name__)

PACKAGE = "pyfaceau"
_MISSING = 3  # exit status of the probe when the package cannot be imported


def install_hint(python: str) -> str:
    return (
        f"install it with `{python} -m pip install {PACKAGE}` and fetch OpenFace's model files with "
        "`pyfaceau-download-models` (pyfaceau is CC BY-NC 4.0, OpenFace's models are for non-commercial research "
        "only; pyfaceau pins OpenCV 4 and needs torch, so a venv of its own named by [expression] pyfaceau_python "
        "keeps streameval's environment intact)"
    )


def resolve_python(python: str | None) -> str:
    """The interpreter to run pyfaceau with: ``python`` (a path or a command on PATH), else this Python."""
    if python is None:
        return sys.executable
    found = shutil.which(python)
    if found is None:
        raise ModelError(f"[expression] pyfaceau_python {python!r}: no such Python ({install_hint(python)})")
    return found


def check_installed(python: str) -> None:
    """ModelError naming the package to install when ``python`` cannot import pyfaceau."""
    probe = f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({PACKAGE!r}) else {_MISSING})"
    try:
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelError(f"cannot start {python} to look for {PACKAGE}: {exc}") from exc
    if done.returncode == _MISSING:
        raise ModelError(f"au_source = 'pyfaceau' needs the {PACKAGE} package, which {python} cannot import: "
                         f"{install_hint(python)}")  # fmt: skip
    if done.returncode != 0:
        tail = (done.stderr or done.stdout or "").strip()[-300:]
        raise ModelError(f"{python} failed while looking for {PACKAGE} (status {done.returncode}): {tail}")


def run_pyfaceau(video: str | os.PathLike[str], out_csv: Path, *, python: str, timeout_s: float | None) -> Path:
    """Run ``python -m pyfaceau VIDEO -o OUT_CSV`` (no shell) and return the CSV. pyfaceau exits 1 when no frame
    has a face but still writes its rows; that is a result (every row unsuccessful), not a failure."""
    source = Path(video)
    if not source.is_file():
        raise InputError(f"video {source} does not exist")
    command = [python, "-m", PACKAGE, str(source), "-o", str(out_csv)]
    done = run_au_tool(command, tool="pyfaceau", program=f"pyfaceau with {python}", source=source, timeout_s=timeout_s)
    if done.returncode not in (0, 1) or not out_csv.is_file():
        tail = (done.stderr or done.stdout or "").strip()[-500:]
        raise ModelError(f"pyfaceau exited with status {done.returncode} on {source} without its CSV: {tail}")
    if done.returncode == 1:
        log.warning("pyfaceau found no face in %s: %s", source, (done.stderr or "").strip()[-200:])
    return out_csv


def read_pyfaceau_rows(path: str | os.PathLike[str]) -> OpenFaceRows:
    """pyfaceau's CSV as :class:`OpenFaceRows`: ``frames`` 1-based (pyfaceau counts from 0), a row valid when
    ``success`` is true and its 17 intensities are numbers."""
    file = Path(path)
    table = read_csv_table(file, "pyfaceau")
    column = {name.strip(): i for i, name in enumerate(table[0])}
    missing = [name for name in ("frame", "timestamp", "success", *AU_NAMES) if name not in column]
    if missing:
        raise InputError(f"pyfaceau CSV {file} lacks columns {missing}")
    body = [row for row in table[1:] if row and any(cell.strip() for cell in row)]
    frames = np.zeros(len(body), np.int64)
    times = np.zeros(len(body), np.float64)
    aus = np.full((len(body), len(AU_NAMES)), np.nan, np.float64)
    valid = np.zeros(len(body), bool)
    for k, row in enumerate(body):
        line = k + 2
        if len(row) != len(table[0]):
            raise InputError(f"{file}:{line}: {len(row)} fields, header has {len(table[0])}")
        try:
            frame = float(row[column["frame"]])
            times[k] = float(row[column["timestamp"]])
        except ValueError as exc:
            raise InputError(f"{file}:{line}: frame and timestamp must be numbers: {exc}") from exc
        if frame != int(frame) or frame < 0:
            raise InputError(f"{file}:{line}: frame {row[column['frame']]!r} is not a frame number counted from 0")
        frames[k] = int(frame) + 1
        success = row[column["success"]].strip().lower()
        if success not in ("true", "false", "1", "0", "1.0", "0.0"):
            raise InputError(f"{file}:{line}: success {row[column['success']]!r} is not True or False")
        for j, name in enumerate(AU_NAMES):
            cell = row[column[name]].strip()
            if cell:
                try:
                    aus[k, j] = float(cell)
                except ValueError as exc:
                    raise InputError(f"{file}:{line}: non-numeric {name}: {exc}") from exc
        valid[k] = success in ("true", "1", "1.0") and bool(np.all(np.isfinite(aus[k])))
    log.debug("%s: %d rows, %d valid", file, len(body), int(valid.sum()))
    out_aus: npt.NDArray[np.float32] = np.where(np.isfinite(aus), aus, 0.0).astype(np.float32)
    return OpenFaceRows(times, frames, out_aus, valid)


def pyfaceau_rows(video: str, *, python: str | None, timeout_s: float | None) -> OpenFaceRows:
    """Run pyfaceau on ``video`` (its CSV in a temporary folder, read and discarded) and read its rows."""
    interpreter = resolve_python(python)
    check_installed(interpreter)
    with tempfile.TemporaryDirectory(prefix="streameval-pyfaceau-") as tmp:
        written = run_pyfaceau(video, Path(tmp) / f"{Path(video).stem}.csv", python=interpreter, timeout_s=timeout_s)
        return read_pyfaceau_rows(written)
