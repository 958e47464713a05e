"""A de-identified stream of another resolution is rescaled once, at decode, to the source's resolution."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from streameval import evaluation, imaging
from streameval.analysis.pixel import psnr, ssim
from streameval.config import RunConfig
from streameval.errors import UsageError
from streameval.frames import Frame
from streameval.sources import VideoSource, open_source
from tests.videos import CASES, write_video

U8 = npt.NDArray[np.uint8]
SOURCE = CASES[0]  # 160x120 h264, 30 frames
DEID = replace(SOURCE, name="deid_big", width=320, height=240)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("sizes")
    return write_video(folder / "source.mp4", SOURCE), write_video(folder / "deid.mp4", DEID)


def pyav_frames(path: Path, size: tuple[int, int] | None = None) -> list[U8]:
    """Reference: PyAV's own decode, each frame resized afterwards when ``size`` is given (area mean: shrinking)."""
    with av.open(str(path)) as container:
        frames = [np.asarray(f.to_ndarray(format="rgb24"), np.uint8) for f in container.decode(video=0)]
    if size is None:
        return frames
    return [imaging.resize(f, size[0], size[1], method="area") for f in frames]


async def read_all(source: VideoSource) -> list[Frame]:
    async with source:
        return [frame async for frame in source]


def test_frames_arrive_at_the_requested_size(videos: tuple[Path, Path]) -> None:
    _, deid = videos
    source = open_source(str(deid), size=(160, 120))
    frames = asyncio.run(read_all(source))
    expected = pyav_frames(deid, (160, 120))
    assert len(frames) == len(expected) == DEID.frames
    for frame, ref, big in zip(frames, expected, pyav_frames(deid), strict=True):
        assert frame.image.shape == (120, 160, 3)
        np.testing.assert_array_equal(frame.image, ref)
        blocks = big.astype(np.float64).reshape(120, 2, 160, 2, 3).mean(axis=(1, 3))  # 2x shrink: block means
        assert np.abs(frame.image - np.rint(blocks)).max() <= 1
    assert source.info is not None and (source.info.width, source.info.height) == (320, 240)  # as coded


def test_set_size_rescales_the_frames_decoded_afterwards(videos: tuple[Path, Path]) -> None:
    _, deid = videos

    async def scenario() -> list[Frame]:
        async with open_source(str(deid), queue_size=1) as source:
            first = await anext(source)
            source.set_size((160, 120))
            return [first] + [frame async for frame in source]

    frames = asyncio.run(scenario())
    sizes = [f.image.shape[:2] for f in frames]
    assert sizes[0] == (240, 320) and sizes[-1] == (120, 160)
    # Frames already queued keep their size; from the first rescaled one on, all are rescaled.
    switch = sizes.index((120, 160))
    assert switch <= 3 and set(sizes[switch:]) == {(120, 160)}


def test_bad_sizes_are_usage_errors(videos: tuple[Path, Path]) -> None:
    for bad in [(0, 120), (160,), (160.0, 120), (True, 120)]:
        with pytest.raises(UsageError, match="size must be"):
            open_source(str(videos[0]), size=bad)  # type: ignore[arg-type]


def test_evaluate_rescales_the_deid_once_and_pixel_values_equal_a_prescaled_pair(
    videos: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    src_path, deid_path = videos
    config = RunConfig(
        source=str(src_path),
        deid=str(deid_path),
        metrics=["pixel"],
        options={"pixel": {"region": "frame"}},
        window=100.0,
        log=None,
        report=None,
    )
    with caplog.at_level(logging.WARNING, logger="streameval.analysis.pixel"):
        report = asyncio.run(evaluation.evaluate(config))
    assert not [r for r in caplog.records if "resizing per pair" in r.getMessage()]  # no per-pair fallback
    assert report["inputs"]["deid"]["rescaled_to"] == [160, 120]
    assert "rescaled_to" not in report["inputs"]["source"]
    # Independent reference: decode both with PyAV, rescale the de-identified frames up front.
    sources, deids = pyav_frames(src_path), pyav_frames(deid_path, (160, 120))
    psnrs = [psnr(a, b) for a, b in zip(sources, deids, strict=True)]
    ssims = [ssim(a, b) for a, b in zip(sources, deids, strict=True)]
    totals = report["totals"]["pixel"]
    assert report["pairing"]["paired"] == SOURCE.frames and totals["region"] == "frame"
    assert totals["ssim_n"] == SOURCE.frames
    assert totals["psnr_mean"] == pytest.approx(float(np.mean(psnrs)), rel=1e-12)
    assert totals["ssim_mean"] == pytest.approx(float(np.mean(ssims)), rel=1e-12)


def test_a_live_source_sizes_the_deid_once_it_connects(videos: tuple[Path, Path]) -> None:
    src_path, deid_path = videos

    async def scenario() -> tuple[int, int] | None:
        source = open_source(str(src_path), live=True, reconnect=False)
        deid = open_source(str(deid_path), live=True, reconnect=False)
        async with source, deid:
            assert deid.size is None  # a live source's size is unknown before it connects
            await asyncio.wait_for(evaluation._match_size(source, deid), 10)
            return deid.size

    assert asyncio.run(scenario()) == (160, 120)
