"""Helpers of the batch tests: manifests over the bundled example set."""

from __future__ import annotations

from pathlib import Path

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
