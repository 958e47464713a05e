"""Helpers of the batch tests: manifests over the bundled example set."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

METHODS = ("blur", "pixelate", "mask", "swap")


def write_manifest(
    examples: dict[str, Path], path: Path, methods: tuple[str, ...] = METHODS, same: bool = True
) -> Path:
    """A CSV manifest; ``same`` adds a generated pair, the original against itself (method ``none``)."""
    lines = ["source,deid,method,ref_b"]
    for method in methods:
        ref_b = examples["astronaut"] if method == "swap" else ""
        lines.append(f"{examples['original']},{examples[method]},{method},{ref_b}")
    if same:
        lines.append(f"{examples['original']},{examples['original']},none,")
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_close(a: Any, b: Any, path: str = "") -> None:
    """Same structure and values; floats to 1e-9 relative (the same computation in another process)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
