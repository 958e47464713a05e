"""Start-up stays cheap: the command line imports models, de-identifiers and their libraries only when needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Light modules the parser needs: argument names, method names and defaults (plain data).
ALLOWED = {"streameval.deidentify.cli", "streameval.deidentify.defaults", "streameval.models.cli"}
# Never at start-up: these packages and everything under them...
HEAVY = (
    "onnxruntime", "dlib", "cv2", "aiomqtt", "numpy", "scipy", "av",
    "streameval.evaluation", "streameval.pipeline", "streameval.analysis", "streameval.families", "streameval.stats",
)  # fmt: skip
# ...nor a submodule of these (the de-identifiers, the models) beyond ALLOWED; the bare packages are empty.
HEAVY_INSIDE = ("streameval.deidentify", "streameval.models")


def _imported_by(code: str) -> list[str]:
    """Module names in sys.modules after running ``code`` in a fresh interpreter on this checkout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    modules: list[str] = json.loads(out.stdout.splitlines()[-1])
    return modules


def _heavy(modules: list[str]) -> list[str]:
    def heavy(m: str) -> bool:
        return any(m == h or m.startswith(h + ".") for h in HEAVY) or (
            m not in ALLOWED and any(m.startswith(h + ".") for h in HEAVY_INSIDE)
        )

    return [m for m in modules if heavy(m)]


def test_import_cli_is_light() -> None:
    modules = _imported_by("import streameval.cli")
    assert "streameval.cli" in modules
    assert _heavy(modules) == []


def test_building_every_subcommand_parser_is_light() -> None:
    code = (
        "import io, contextlib\n"
        "from streameval.cli import build_parser\n"
        "parser = build_parser()\n"
        "for argv in (['--help'], ['replay', '--help'], ['models', 'build', '--help'], ['deidentify', '--help'],\n"
        "             ['example', 'make', '--help']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        parser.parse_args(argv)\n"
    )
    assert _heavy(_imported_by(code)) == []


def test_heavy_prefixes_do_match() -> None:
    """The filter itself: a de-identifier, a model module or a library is caught; the allowed ones are not."""
    assert _heavy(["streameval.deidentify.swap", "streameval.models.zoo", "numpy", "numpy.linalg", "cv2"]) == [
        "streameval.deidentify.swap",
        "streameval.models.zoo",
        "numpy",
        "numpy.linalg",
        "cv2",
    ]
    assert _heavy(["streameval.deidentify", "streameval.models", "avahi", *ALLOWED]) == []
