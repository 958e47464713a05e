"""``streameval deidentify SRC DST --method ...`` and ``streameval example make``: reference de-identifiers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

# Only plain data at import: the de-identifiers load when a command runs (keeps `streameval --help` fast).
from streameval.deidentify.defaults import EXAMPLE_OUT as DEFAULT_OUT
from streameval.deidentify.defaults import EXAMPLE_SOURCE as SOURCE
from streameval.deidentify.defaults import METHODS, OPTIONS

EXIT_OK = 0


def add_parser(subparsers: Any) -> None:
    """Register the ``deidentify`` and ``example`` subcommands on an ``argparse`` subparsers object.

    Each leaf sets ``handler``: a callable ``(argparse.Namespace) -> int`` (the exit code); errors are raised
    as :class:`~streameval.errors.StreamevalError` subclasses for the main CLI to map.
    """
    deid = subparsers.add_parser(
        "deidentify",
        help="write a de-identified copy of a video (blur, pixelate, mask, face swap)",
        description="Reference de-identifiers: find faces in every frame of SRC and write DST (H.264 in the "
        "container its extension names: .mp4, .m4v, .mov or .mkv) with them blurred, pixelated, masked black, or "
        "swapped with a target portrait. Every frame's timestamp is kept (variable frame rates too); frames "
        "without a face pass through unchanged.",
    )
    deid.add_argument("src", help="input video file (not a still image)")
    deid.add_argument("dst", help="output video file: .mp4, .m4v, .mov or .mkv; never the input")
    deid.add_argument("--method", required=True, choices=METHODS, help="what to do with each face")
    deid.add_argument(
        "--strength",
        type=float,
        default=None,
        help=f"blur: Gaussian sigma as a fraction of the face size (default {OPTIONS['blur']['strength']})",
    )
    deid.add_argument(
        "--block",
        type=int,
        default=None,
        help=f"pixelate: block size in pixels (default {OPTIONS['pixelate']['block']})",
    )
    deid.add_argument(
        "--margin",
        type=float,
        default=None,
        help="blur/pixelate/mask: grow the face box by this fraction of its size on each side (0.2)",
    )
    deid.add_argument(
        "--target", default=None, help="swap: image file of the face to paste (default: the skimage astronaut portrait)"
    )
    deid.add_argument(
        "--feather",
        type=float,
        default=None,
        help=f"swap: blend ramp width as a fraction of the eye distance (default {OPTIONS['swap']['feather']})",
    )
    deid.add_argument("--no-colour-transfer", action="store_true", help="swap: keep the target's colours")
    deid.add_argument("--crf", type=int, default=18, help="H.264 quality, lower is better (default 18)")
    deid.set_defaults(handler=run_deidentify)

    example = subparsers.add_parser(
        "example",
        help="the bundled example videos",
        description="The bundled example: de-identified versions of a real clip.",
    )
    example.set_defaults(handler=lambda _args: _usage(example))
    sub = example.add_subparsers(dest="example_command", metavar="{make}")
    make = sub.add_parser(
        "make",
        help=f"write carphone_<method>.mp4 for every method from {SOURCE}",
        description=f"De-identify the bundled {SOURCE} clip with every method "
        f"({', '.join(METHODS)}) and print the paths. Existing files are kept unless --force.",
    )
    make.add_argument("--out", default=str(DEFAULT_OUT), help=f"output directory (default {DEFAULT_OUT}/)")
    make.add_argument("--force", action="store_true", help="rewrite files that exist")
    make.set_defaults(handler=run_example_make)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Only the options the user gave that the chosen method takes; UsageError if one does not apply."""
    from streameval.errors import UsageError

    given: dict[str, Any] = {
        k: getattr(args, k) for k in ("strength", "block", "margin", "feather") if getattr(args, k) is not None
    }
    if args.target is not None:
        given["target"] = _read_image(Path(args.target))
    if args.no_colour_transfer:
        given["colour_transfer"] = False
    wrong = sorted(k for k in given if k not in OPTIONS[args.method])
    if wrong:
        flags = ", ".join(
            "--" + k.replace("_", "-") if k != "colour_transfer" else "--no-colour-transfer" for k in wrong
        )
        raise UsageError(f"{flags} do(es) not apply to --method {args.method}")
    return given


def _read_image(path: Path) -> Any:
    """RGB uint8 array of an image file (PyAV reads PNG/JPEG as a one-frame video)."""
    import av
    import av.error

    from streameval.errors import InputError

    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                return frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"{path}: not a readable image: {exc}") from exc
    raise InputError(f"{path}: no image in the file")


def run_deidentify(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from streameval.deidentify.video import deidentify_video

    stats = deidentify_video(args.src, args.dst, args.method, crf=args.crf, **_options(args))
    out.write(
        f"{args.dst}: {stats.frames} frames, {stats.face_frames} with a face, {stats.no_face_frames} "
        f"without (passed through), {stats.ms_per_frame:.1f} ms/frame\n"
    )
    return EXIT_OK


def run_example_make(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from streameval.deidentify.examples import make_examples

    for path in make_examples(Path(args.out), force=args.force).values():
        out.write(f"{path}\n")
    return EXIT_OK
