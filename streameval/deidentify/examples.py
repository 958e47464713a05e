"""The bundled example set: de-identified versions of the real carphone clip, one per method."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from streameval.datasets import astronaut, example_video
from streameval.deidentify.defaults import EXAMPLE_OUT, EXAMPLE_SOURCE, METHODS
from streameval.deidentify.video import deidentify_video
from streameval.errors import SinkError

log = logging.getLogger(__name__)

DEFAULT_OUT = EXAMPLE_OUT
SOURCE = EXAMPLE_SOURCE


def write_png(path: Path, image: npt.NDArray[np.uint8]) -> None:
    """An RGB image as PNG, written with PyAV's image encoder (no extra imaging dependency)."""
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height = image.shape[1], image.shape[0]
        stream.pix_fmt = "rgb24"
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def example_paths(out_dir: Path = DEFAULT_OUT) -> dict[str, Path]:
    """Where each method's example goes: ``carphone_<method>.mp4`` in ``out_dir``."""
    return {m: Path(out_dir) / f"carphone_{m}.mp4" for m in METHODS}


def make_examples(out_dir: Path = DEFAULT_OUT, *, force: bool = False) -> dict[str, Path]:
    """Write the example set into ``out_dir`` (created if needed); existing files are kept unless ``force``.

    Returns the path of every method's video, made now or before, and of the original (``"original"``: a copy
    of the clip, so an example config can name it by a relative path).
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"{out}: cannot create the example directory: {exc}") from exc
    src = example_video(SOURCE)
    original = out / "carphone_original.mp4"
    if force or not original.exists():
        shutil.copyfile(src, original)
    portrait = out / "astronaut.png"  # the swap's target identity B, as a reference image for the evaluation
    if force or not portrait.exists():
        write_png(portrait, astronaut())
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
    return {"original": original, "astronaut": portrait, **paths}
