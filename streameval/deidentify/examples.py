"""The bundled example set: de-identified versions of the real carphone clip, one per method."""

from __future__ import annotations

import logging
from pathlib import Path

from streameval.datasets import example_video
from streameval.deidentify.methods import METHODS
from streameval.deidentify.video import deidentify_video
from streameval.errors import SinkError

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("example/out")
SOURCE = "carphone_pristine"


def example_paths(out_dir: Path = DEFAULT_OUT) -> dict[str, Path]:
    """Where each method's example goes: ``carphone_<method>.mp4`` in ``out_dir``."""
    return {m: Path(out_dir) / f"carphone_{m}.mp4" for m in METHODS}


def make_examples(out_dir: Path = DEFAULT_OUT, *, force: bool = False) -> dict[str, Path]:
    """Write the example set into ``out_dir`` (created if needed); existing files are kept unless ``force``.

    Returns the path of every method's video, made now or before.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"{out}: cannot create the example directory: {exc}") from exc
    src = example_video(SOURCE)
    paths = example_paths(out)
    for method, path in paths.items():
        if path.exists() and not force:
            log.info("%s exists, kept (use force to rewrite)", path)
            continue
        stats = deidentify_video(src, path, method)
        log.info(
            "%s: %s, %d/%d frames with a face, %.1f ms/frame",
            path,
            method,
            stats.face_frames,
            stats.frames,
            stats.ms_per_frame,
        )
    return paths
