"""The models directory's manifest: what each file is, where it came from, and its sha256.

``manifest.json`` layout::

    {"format": 1,
     "models": {"<model name>": {"files": {"<file>": {"sha256": "...", "bytes": 123}},
                                  "source": {...}, "licence": "...", "signature": {...},
                                  "conversion": "...", "built_at": "..."}}}
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from streameval.errors import ModelError

MANIFEST_NAME = "manifest.json"
FORMAT = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(models_dir: Path) -> dict[str, Any]:
    """The manifest's ``models`` mapping; empty when there is no manifest yet."""
    path = Path(models_dir) / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}; delete it and run `streameval models build`") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("models"), dict):
        raise ModelError(
            f"{path} is not a streameval manifest (format {FORMAT}); delete it and run `streameval models build`"
        )
    models: dict[str, Any] = data["models"]
    return models


def write_manifest(models_dir: Path, models: dict[str, Any]) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a manifest."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format": FORMAT, "models": dict(sorted(models.items()))}, indent=2, sort_keys=False)
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=models_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(tmp, models_dir / MANIFEST_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_problems(models_dir: Path, entry: dict[str, Any]) -> list[str]:
    """Problems of one manifest entry's files: missing, wrong size or wrong sha256 (empty list when fine)."""
    problems: list[str] = []
    files = entry.get("files")
    if not isinstance(files, dict) or not files:
        return ["manifest entry lists no files"]
    for name, meta in files.items():
        path = Path(models_dir) / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        if not isinstance(meta, dict) or "sha256" not in meta:
            problems.append(f"{name}: no sha256 in the manifest")
            continue
        if "bytes" in meta and path.stat().st_size != meta["bytes"]:
            problems.append(f"{name}: size {path.stat().st_size} bytes, manifest says {meta['bytes']}")
            continue
        actual = sha256_file(path)
        if actual != meta["sha256"]:
            problems.append(
                f"{name}: sha256 {actual[:12]}... does not match the manifest's {meta['sha256'][:12]}... "
                "(corrupted or substituted)"
            )
    return problems
