"""PSNR and SSIM (OpenCV, float32) against scikit-image, over the whole frame and the source face region.

Tolerances: PSNR within 1e-9 relative (integer squared differences summed in double: exact); SSIM within 3e-6
absolute of scikit-image's float64 result (measured: 1.0e-6 on carphone, 1.3e-7 at 1280x720).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from streameval.analysis.pixel import FacePixelAnalyser, PixelAnalyser, psnr, resize_to, ssim
from streameval.config import RunConfig
from streameval.datasets import example_video
from streameval.errors import ConfigError
from streameval.faces.types import FrameFaces, PairFaces, TrackedFace
from streameval.families import pixel_family
from streameval.frames import Frame, FramePair
from streameval.metrics.pixel import PixelMetric
from tests.videos import decode_rgb

U8 = npt.NDArray[np.uint8]
SSIM_TOL = 3e-6
LUMA = np.array([0.299, 0.587, 0.114])


def ref_ssim(a: U8, b: U8) -> float:
    return float(
        structural_similarity(
            a @ LUMA, b @ LUMA, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
    )


def ref_psnr(a: U8, b: U8) -> float:
    return float(peak_signal_noise_ratio(a, b, data_range=255))


@pytest.fixture(scope="module")
def carphone() -> list[tuple[U8, U8]]:
    return list(
        zip(
            decode_rgb(example_video("carphone_pristine")),
            decode_rgb(example_video("carphone_distorted")),
            strict=True,
        )
    )


@pytest.fixture(scope="module")
def hd() -> list[U8]:
    """1280x720 frames; pairs of frames a few apart differ like a mild de-identifier."""
    return decode_rgb(example_video("bigbuckbunny"), 8)


def face(box: tuple[float, float, float, float]) -> TrackedFace:
    return TrackedFace(
        track_id=1, box=box, mesh=np.zeros((468, 3), np.float32), presence=0.99, score=0.9, detected=True
    )


def pair(src: U8, deid: U8, source_face: TrackedFace | None, t: float = 0.0) -> FramePair:
    faces = PairFaces(
        FrameFaces((source_face,) if source_face else (), source_face, detector_ran=True),
        FrameFaces((), None, detector_ran=True),
    )
    return FramePair(Frame(src, t, 0, 0.0), Frame(deid, t, 0, 0.0), t, faces)


def expected_region(box: tuple[float, float, float, float], width: int, height: int) -> tuple[slice, slice]:
    """The face region by hand: a round(1.3 x longer side) pixel square at floor(centre - side / 2), clipped."""
    x0, y0, x1, y1 = box
    side = round(1.3 * max(x1 - x0, y1 - y0))
    left = math.floor((x0 + x1) / 2 - side / 2)
    top = math.floor((y0 + y1) / 2 - side / 2)
    return slice(max(0, top), min(height, top + side)), slice(max(0, left), min(width, left + side))


def test_frame_values_match_scikit_image_on_carphone(carphone: list[tuple[U8, U8]]) -> None:
    analyser = PixelAnalyser()
    worst = 0.0
    for a, b in carphone:
        obs = analyser.analyse(pair(a, b, None))
        assert obs.values["psnr"] == pytest.approx(ref_psnr(a, b), rel=1e-9)
        worst = max(worst, abs(obs.values["ssim"] - ref_ssim(a, b)))
    assert worst <= SSIM_TOL


def test_frame_values_match_scikit_image_at_hd(hd: list[U8]) -> None:
    for a, b in ((hd[0], hd[3]), (hd[2], hd[7])):
        assert a.shape == (720, 1280, 3)
        obs = PixelAnalyser().analyse(pair(a, b, None))
        assert obs.values["psnr"] == pytest.approx(ref_psnr(a, b), rel=1e-9)
        assert obs.values["ssim"] == pytest.approx(ref_ssim(a, b), abs=SSIM_TOL)


@pytest.mark.parametrize(
    "box",
    [
        (500.0, 200.0, 740.0, 470.0),  # inside
        (1180.0, 600.0, 1300.0, 740.0),  # across the bottom-right corner: the square is clipped
        (-20.0, 100.0, 90.5, 233.3),  # across the left edge, fractional
    ],
)
def test_face_region_values_match_scikit_image_at_hd(hd: list[U8], box: tuple[float, float, float, float]) -> None:
    a, b = hd[0], hd[3]
    obs = FacePixelAnalyser().analyse(pair(a, b, face(box)))
    rows, cols = expected_region(box, 1280, 720)
    ra, rb = a[rows, cols], b[rows, cols]
    assert obs.values["psnr"] == pytest.approx(ref_psnr(ra, rb), rel=1e-9)
    assert obs.values["ssim"] == pytest.approx(ref_ssim(ra, rb), abs=SSIM_TOL)


def test_face_region_on_carphone(carphone: list[tuple[U8, U8]]) -> None:
    box = (60.0, 30.0, 120.0, 105.0)  # the talking face
    rows, cols = expected_region(box, 176, 144)
    analyser = FacePixelAnalyser()
    for a, b in carphone[::10]:
        obs = analyser.analyse(pair(a, b, face(box)))
        assert obs.values["psnr"] == pytest.approx(ref_psnr(a[rows, cols], b[rows, cols]), rel=1e-9)
        assert obs.values["ssim"] == pytest.approx(ref_ssim(a[rows, cols], b[rows, cols]), abs=SSIM_TOL)


def test_no_source_face_gives_no_values_and_a_null_reason(hd: list[U8]) -> None:
    analyser = FacePixelAnalyser()
    assert analyser.needs_faces and not PixelAnalyser.needs_faces
    metric = PixelMetric(window=1.0, region="face")
    faceless = pair(hd[0], hd[3], None, t=0.1)
    no_stage = FramePair(faceless.source, faceless.deid, 0.2, None)  # the face stage did not run: counted alike
    for p in (faceless, no_stage):
        obs = analyser.analyse(p)
        assert obs.values == {"psnr": None, "ssim": None, "no_face": True}
        metric.update(obs)
    window = metric.window_values()
    assert window["region"] == "face" and window["no_face_pairs"] == 2
    assert window["psnr_mean"] is None and window["ssim_mean"] is None and window["ssim_n"] == 0
    assert window["null_reasons"]["ssim_mean"] == window["null_reasons"]["psnr_mean"] == "no source face"
    metric.update(analyser.analyse(pair(hd[0], hd[3], face((500.0, 200.0, 740.0, 470.0)), t=0.3)))
    totals = metric.total_values()
    assert totals["no_face_pairs"] == 2 and totals["ssim_n"] == 1 and totals["psnr_identical_pairs"] == 0
    assert "null_reasons" not in totals


def test_identical_frames_still_say_infinite_psnr(hd: list[U8]) -> None:
    metric = PixelMetric(window=1.0, region="frame")
    metric.update(PixelAnalyser().analyse(pair(hd[0], hd[0], None)))
    values = metric.window_values()
    assert values["region"] == "frame" and "no_face_pairs" not in values
    assert values["ssim_mean"] == pytest.approx(1.0) and values["psnr_mean"] is None
    assert values["null_reasons"]["psnr_mean"].startswith("identical frames")


def test_a_deid_frame_of_another_size_is_resized_and_counted(hd: list[U8]) -> None:
    src = hd[0][::4, ::4].copy()  # 320x180 source, 1280x720 de-identified frame
    analyser = PixelAnalyser()
    obs = analyser.analyse(pair(src, hd[3], None))
    assert analyser.rescaled_pairs == 1
    scaled = resize_to(hd[3], 180, 320)
    assert obs.values["psnr"] == psnr(src, scaled) and obs.values["ssim"] == ssim(src, scaled)
    # resize_to shrinks 4x by area means (no aliasing): within a grey level of the exact 4x4 block means
    blocks = hd[3].astype(np.float64).reshape(180, 4, 320, 4, 3).mean(axis=(1, 3))
    assert np.abs(scaled - np.rint(blocks)).max() <= 1


def test_resize_to_matches_ndimage_zoom_unless_shrinking() -> None:
    from scipy import ndimage

    image = np.random.default_rng(5).integers(0, 256, (144, 176, 3)).astype(np.uint8)
    for height, width in ((720, 1280), (100, 200), (144, 100)):  # not smaller on both axes: bilinear
        zoom = (height / 144, width / 176, 1.0)
        ref = ndimage.zoom(image.astype(np.float64), zoom, order=1, grid_mode=True, mode="nearest")
        assert np.abs(resize_to(image, height, width) - np.rint(ref)).max() <= 1


def test_small_images_average_the_whole_map() -> None:
    """Below the window size scikit-image refuses; the reference is the same map with scipy's filter."""
    rng = np.random.default_rng(6)
    a = rng.integers(0, 256, (9, 30, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, b) == pytest.approx(_whole_map_ssim(a @ LUMA, b @ LUMA), abs=SSIM_TOL)


def _whole_map_ssim(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    """SSIM map with scipy's reflect-mode Gaussian (scikit-image's filter), averaged over every pixel."""
    from scipy import ndimage

    def blur(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out: npt.NDArray[np.float64] = ndimage.gaussian_filter(v, sigma=1.5, truncate=3.5, mode="reflect")
        return out

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))).mean())


def test_region_option_is_validated() -> None:
    def family(table: dict[str, object]) -> tuple[PixelAnalyser, PixelMetric]:
        analysers, metrics = pixel_family(RunConfig(options={"pixel": table}))
        assert isinstance(analysers[0], PixelAnalyser) and isinstance(metrics[0], PixelMetric)
        return analysers[0], metrics[0]

    analyser, metric = family({})
    assert type(analyser) is FacePixelAnalyser and analyser.needs_faces and metric.region == "face"
    analyser, metric = family({"region": "frame"})
    assert type(analyser) is PixelAnalyser and not analyser.needs_faces and metric.region == "frame"
    with pytest.raises(ConfigError, match=r"\[pixel\] region: must be 'face' or 'frame', got 'torso'"):
        family({"region": "torso"})
    with pytest.raises(ConfigError, match=r"\[pixel\]: unknown key 'regoin'; did you mean 'region'\?"):
        family({"regoin": "face"})
