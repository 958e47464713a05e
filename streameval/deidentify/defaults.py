"""Method names, option defaults and the example's names: plain data the command line shows in its help.

Kept apart from the implementations so that ``streameval --help`` does not import them (numpy, scipy, models).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

METHODS = ("blur", "pixelate", "mask", "swap")
# Options each method accepts, with their defaults (documented in docs/deidentify.md).
OPTIONS: Mapping[str, Mapping[str, Any]] = {
    "blur": {"strength": 0.1, "margin": 0.2},
    "pixelate": {"block": 8, "margin": 0.2},
    "mask": {"margin": 0.2},
    "swap": {"target": None, "feather": 0.25, "colour_transfer": True},
}

EXAMPLE_OUT = Path("example/out")  # where ``streameval example make`` writes by default
EXAMPLE_SOURCE = "carphone_pristine"  # the bundled clip the examples are made from
