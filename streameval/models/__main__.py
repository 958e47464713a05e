"""``python -m streameval.models build | list | verify`` (same as ``streameval models ...``)."""

from __future__ import annotations

import argparse
import logging
import sys

from streameval.errors import StreamevalError, UsageError
from streameval.models.cli import add_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streameval.models")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(["models", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.handler(args)
    except UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except StreamevalError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
