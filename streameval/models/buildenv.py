"""Isolated virtual environments for conversion tooling (tensorflow, tf2onnx, ...).

Converters pull in large, numpy-pinning dependency trees. They live in their own venv under the streameval
cache, created on first use with pinned versions from the package registry and reused while the pins match,
so the runtime environment stays small and its numpy untouched.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from streameval.errors import ModelError
from streameval.models.fetch import cache_dir

log = logging.getLogger(__name__)

# tf2onnx 1.16.1 is the last release; it supports TensorFlow <= 2.15 and protobuf 3.20, hence these pins.
TFLITE_CONVERTER = (
    "tensorflow-cpu==2.15.1",
    "tf2onnx==1.16.1",
    "onnx==1.16.2",
    "protobuf==3.20.3",
    "numpy==1.26.4",
)
_MARKER = "streameval-requirements.txt"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def ensure_venv(name: str, requirements: Sequence[str], *, root: Path | None = None) -> Path:
    """Python executable of the venv ``name`` holding exactly ``requirements``; create or rebuild it if needed."""
    venv = (root or cache_dir()) / f"build-venv-{name}"
    marker = venv / _MARKER
    wanted = "\n".join(requirements) + "\n"
    python = venv_python(venv)
    if python.is_file() and marker.is_file() and marker.read_text(encoding="utf-8") == wanted:
        return python
    if venv.exists():
        log.info("rebuilding conversion venv %s (pins changed or incomplete)", venv)
        shutil.rmtree(venv)
    log.info("creating conversion venv %s with %s (one-off, about 1-2 minutes)", venv, ", ".join(requirements))
    start = time.monotonic()
    _run([sys.executable, "-m", "venv", str(venv)], f"create the venv {venv}")
    _run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", *requirements],
        f"install {', '.join(requirements)} into {venv}",
    )
    marker.write_text(wanted, encoding="utf-8")  # written last: a half-built venv is rebuilt next time
    log.info("conversion venv ready in %.0f s", time.monotonic() - start)
    return python


def run_in_venv(python: Path, args: Sequence[str], what: str, *, cwd: Path | None = None) -> str:
    """Run ``python args...``; return stdout; ModelError with the output's tail on failure."""
    return _run([str(python), *args], what, cwd=cwd)


def _run(cmd: list[str], what: str, *, cwd: Path | None = None) -> str:
    log.debug("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)
    except OSError as exc:
        raise ModelError(f"could not {what}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise ModelError(f"could not {what} (exit {proc.returncode}):\n{tail}")
    return proc.stdout
