"""The models directory's manifest: what each file is, where it came from, and its sha256.

A record of the build, not an authority: files are verified against the sha256 pinned in the model specs
(:mod:`streameval.models.zoo`), since anyone who can replace a file next to the manifest can rewrite it too.

``manifest.json`` layout::

    {"format": 1,
     "models": {"<model name>": {"files": {"<file>": {"sha256": "...", "bytes": 123}},
                                  "source": {...}, "licence": "...", "signature": {...},
                                  "conversion": "...", "built_at": "..."}}}
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from streameval.errors import ModelError
from streameval.models.fetch import file_sha256

MANIFEST_NAME = "manifest.json"
FORMAT = 1


def sha256_file(path: Path) -> str:
    return file_sha256(path)


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
