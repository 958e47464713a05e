"""Write docs/config.schema.json, the JSON Schema of the TOML configuration file, from the config schema.

    python tools/gen_schemas.py           # rewrite the file
    python tools/gen_schemas.py --check   # exit 1 when the committed file is stale

The record schemas (docs/schemas/*.json) are written by hand: they describe what the metric families emit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's streameval, installed or not

from streameval.config import config_json_schema  # noqa: E402

CONFIG_SCHEMA = ROOT / "docs" / "config.schema.json"


def render() -> str:
    return json.dumps(config_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check that the committed file is up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = CONFIG_SCHEMA.read_text(encoding="utf-8") if CONFIG_SCHEMA.exists() else ""
        if current != text:
            sys.stderr.write(f"{CONFIG_SCHEMA.relative_to(ROOT)} is stale: run python tools/gen_schemas.py\n")
            return 1
        return 0
    CONFIG_SCHEMA.write_text(text, encoding="utf-8")
    sys.stderr.write(f"wrote {CONFIG_SCHEMA.relative_to(ROOT)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
