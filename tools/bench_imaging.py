"""Micro-benchmark of the imaging hot path at 1280x720: numpy/scipy (before) against OpenCV (streameval.imaging).

Writes the "Imaging (OpenCV)" section of BENCHMARKS.md. Usage:

    OPENBLAS_NUM_THREADS=1 python tools/bench_imaging.py            # writes BENCHMARKS.md
    OPENBLAS_NUM_THREADS=1 python tools/bench_imaging.py --no-write

One thread (OpenCV is set to one by streameval.imaging). Each row times one call on a real 1280x720 frame
(bigbuckbunny.mp4); the face is a 300x300 box at the frame centre. The "before" columns run the numpy/scipy code
the callers used until this change (kept in streameval.models.warp and streameval.models.i3d as references, and
re-stated here for the scipy resize and the float64 PSNR/SSIM).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streameval import imaging  # noqa: E402
from streameval.analysis import pixel  # noqa: E402
from streameval.datasets import example_video  # noqa: E402
from streameval.models import warp  # noqa: E402
from streameval.models.face_mesh import INPUT_SIZE, Crop  # noqa: E402
from streameval.models.i3d import prepare_clip, resize_bilinear  # noqa: E402
from streameval.sources.decoder import to_rgb  # noqa: E402
from tools.bench_md import write_section  # noqa: E402

log = logging.getLogger("bench_imaging")

U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]
FACE = (490.0, 210.0, 790.0, 510.0)  # x0, y0, x1, y1: 300x300 at the centre of 1280x720
LUMA = np.array([0.299, 0.587, 0.114])


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and minimum milliseconds per call over ``repeat`` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


# -- the code before OpenCV ----------------------------------------------------------------------------------


def old_letterbox(image: U8, size: int = 128) -> object:
    h, w = image.shape[:2]
    small, _ = warp.box_downsample(image, max(1, int(max(h, w) / size / 2)))
    matrix, _, _, _ = warp.letterbox_matrix(small.shape[1], small.shape[0], size)
    return warp.warp_affine(small, matrix, (size, size))


def old_prepare_clip(crops: list[U8], size: int = 224) -> object:
    return np.stack([resize_bilinear(c, size, size) / 127.5 - 1.0 for c in crops]).astype(np.float32)


def old_resize_to(image: U8, height: int, width: int) -> U8:
    zoom = (height / image.shape[0], width / image.shape[1], 1.0)
    out = ndimage.zoom(image.astype(np.float32), zoom, order=1, grid_mode=True, mode="nearest")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def old_psnr_ssim(a: U8, b: U8) -> tuple[float, float]:
    x, y = a.astype(np.float64), b.astype(np.float64)
    mse = float(np.mean((x - y) ** 2))
    value = math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)

    def blur(v: F64) -> F64:
        out: F64 = ndimage.gaussian_filter(v, sigma=1.5, truncate=5 / 1.5, mode="reflect")
        return out

    lx, ly = x @ LUMA, y @ LUMA
    mx, my = blur(lx), blur(ly)
    vx, vy, cxy = blur(lx * lx) - mx * mx, blur(ly * ly) - my * my, blur(lx * ly) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return value, float(smap[5:-5, 5:-5].mean())


def new_psnr_ssim(a: U8, b: U8) -> tuple[float, float]:
    return pixel.psnr(a, b), pixel.ssim(a, b)


# -------------------------------------------------------------------------------------------------------------


def hd_frames() -> tuple[U8, U8, av.VideoFrame]:
    with av.open(str(example_video("bigbuckbunny"))) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame)
            if len(frames) == 4:
                break
    a, b = (np.asarray(f.to_ndarray(format="rgb24"), np.uint8) for f in (frames[0], frames[3]))
    # A 640x360 de-identified frame as the decoder sees it (yuv420p), for the decode-time rescale.
    small = frames[3].reformat(width=640, height=360, format="yuv420p")
    return a, b, small


def lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()
    names = [line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")]
    return names[0] if names else platform.machine()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    a, b, small_frame = hd_frames()
    r = args.repeat
    x0, y0, x1, y1 = FACE
    crop = Crop(((x0 + x1) / 2, (y0 + y1) / 2), 1.5 * (x1 - x0), 0.2)  # the mesh's crop of that face
    side = 1.3 * (x1 - x0)  # the reality crop of that face
    crops = [imaging.crop_square(a, (x0 + x1) / 2 + i, (y0 + y1) / 2, side) for i in range(16)]
    region = pixel.face_region(FACE, 1280, 720)
    assert region is not None
    fa, fb = a[region], b[region]
    small = np.asarray(small_frame.to_ndarray(format="rgb24"), np.uint8)
    load = os.getloadavg()[0]

    rows: list[tuple[str, tuple[float, float], tuple[float, float]]] = [
        ("detector letterbox (1280x720 -> 128x128)", timed(lambda: old_letterbox(a), r),
         timed(lambda: imaging.letterbox(a, 128), r)),
        (f"mesh crop warp (rotated {crop.side:.0f} px square -> 192x192)",
         timed(lambda: warp.warp_affine(a, crop.matrix(), (INPUT_SIZE, INPUT_SIZE)), r),
         timed(lambda: imaging.warp_affine(a, crop.matrix(), (INPUT_SIZE, INPUT_SIZE)), r)),
        (f"I3D clip preparation (16 crops {crops[0].shape[1]}x{crops[0].shape[0]} -> 224x224, [-1, 1])",
         timed(lambda: old_prepare_clip(crops), max(3, r // 5)), timed(lambda: prepare_clip(crops), r)),
        ("resize 640x360 -> 1280x720 (pixel fallback)", timed(lambda: old_resize_to(small, 720, 1280), max(3, r // 5)),
         timed(lambda: pixel.resize_to(small, 720, 1280), r)),
        ("PSNR + SSIM, full frame 1280x720", timed(lambda: old_psnr_ssim(a, b), max(3, r // 5)),
         timed(lambda: new_psnr_ssim(a, b), r)),
        (f"PSNR + SSIM, face region {fa.shape[1]}x{fa.shape[0]}", timed(lambda: old_psnr_ssim(fa, fb), r),
         timed(lambda: new_psnr_ssim(fa, fb), r)),
    ]  # fmt: skip
    plain = timed(lambda: to_rgb(small_frame), r)
    swscale = timed(lambda: small_frame.to_ndarray(format="rgb24", width=1280, height=720), r)
    ours = timed(lambda: to_rgb(small_frame, (1280, 720)), r)

    cmd = "OPENBLAS_NUM_THREADS=1 python tools/bench_imaging.py " + " ".join(sys.argv[1:])
    lines = [
        "## Imaging (OpenCV)",
        "",
        f"Machine: {lscpu_model()}, {os.cpu_count()} cores shared with other work (load average {load:.1f} at "
        f"start), Python {platform.python_version()}, OpenCV {cv2.__version__}, numpy {np.__version__}, one "
        f"thread. Command: `{cmd.strip()}`. Milliseconds per call on a 1280x720 frame of bigbuckbunny.mp4, "
        f"median (min) of {r} calls (a fifth for the slowest numpy rows); the face is a 300x300 box. Before: the "
        "numpy/scipy code the callers used until the switch (float64 scipy SSIM).",
        "",
        "| step | before (numpy/scipy) ms | OpenCV ms | speed-up (median) |",
        "|---|---|---|---|",
    ]
    for name, (old_med, old_min), (new_med, new_min) in rows:
        lines.append(
            f"| {name} | {old_med:.2f} ({old_min:.2f}) | {new_med:.2f} ({new_min:.2f}) | {old_med / new_med:.0f}x |"
        )
    lines += [
        "",
        "A de-identified stream of another resolution is now rescaled once per frame in its decoder thread, not "
        f"per pair and analyser: 640x360 yuv420p -> 1280x720 RGB takes {ours[0]:.2f} ms (RGB conversion "
        f"{plain[0]:.2f} ms + OpenCV bilinear) against {swscale[0]:.2f} ms with swscale scaling in the conversion "
        "pass (PyAV `to_ndarray(width=, height=)`), medians.",
    ]
    text = "\n".join(lines) + "\n"
    log.info("%s", text)
    if not args.no_write:
        write_section("bench_imaging", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
