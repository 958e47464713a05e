"""deidentify_video end to end on the real clip: timing kept, faces hidden, face-free frames untouched, errors."""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from scipy import ndimage

from streameval.datasets import astronaut, example_video
from streameval.deidentify.cli import add_parser
from streameval.deidentify.examples import example_paths, make_examples
from streameval.deidentify.methods import METHODS
from streameval.deidentify.regions import face_bounds, region_mask
from streameval.deidentify.video import deidentify_video
from streameval.errors import InputError, SinkError, UsageError
from streameval.models.loaders import load_detector
from tests.deidentify.conftest import Decoded, decode
from tests.videos import VideoCase, write_video

SOURCE = example_video("carphone_pristine")


@pytest.fixture(scope="module")
def source() -> Decoded:
    return decode(SOURCE)


@pytest.mark.parametrize("method", METHODS)
def test_frames_rate_and_timestamps_equal_the_source(examples: dict[str, Path], source: Decoded, method: str) -> None:
    frames, times, rate = decode(examples[method])
    src_frames, src_times, src_rate = source
    assert len(frames) == len(src_frames) == 120
    assert rate == pytest.approx(src_rate)  # 30000/1001
    np.testing.assert_allclose(times, src_times, atol=1e-9)
    assert frames[0].shape == src_frames[0].shape


def _cell_std(image: np.ndarray, bounds: tuple[int, int, int, int], block: int = 8) -> float:
    """Mean standard deviation of grey values inside the region's ``block`` x ``block`` cells."""
    x0, y0, x1, y1 = bounds
    h, w = (y1 - y0) // block * block, (x1 - x0) // block * block
    cells = image[y0 : y0 + h, x0 : x0 + w].mean(axis=2).reshape(h // block, block, w // block, block)
    return float(cells.std(axis=(1, 3)).mean())


@pytest.mark.parametrize("method", ["blur", "pixelate", "mask"])
def test_face_region_is_hidden_and_the_rest_kept(
    examples: dict[str, Path], source: Decoded, models_dir: Path, method: str
) -> None:
    frames, _, _ = decode(examples[method])
    src_frames = source[0]
    detector = load_detector(models_dir)
    for i in range(0, 120, 20):
        faces = detector.detect(src_frames[i])
        assert faces
        inside = region_mask(src_frames[i].shape[0], src_frames[i].shape[1], faces)
        out, src = frames[i].astype(float), src_frames[i].astype(float)
        # away from the region's edge, H.264 re-encoding (crf 18) is the only change outside
        ring = np.zeros_like(inside)
        ys, xs = np.nonzero(inside)
        ring[max(0, ys.min() - 8) : ys.max() + 9, max(0, xs.min() - 8) : xs.max() + 9] = True
        assert np.abs(out - src)[~ring].mean() < 4.0  # measured ~2.5
        if method == "mask":
            assert out[inside].mean() < 8 and src[inside].mean() > 60
        elif method == "blur":  # the face's fine detail is gone: high-frequency energy (Laplacian) drops
            lap_out = ndimage.laplace(out.mean(axis=2))[inside].var()
            lap_src = ndimage.laplace(src.mean(axis=2))[inside].var()
            assert lap_out < lap_src / 10
        else:  # pixelate: nearly constant within the 8x8 cells (up to H.264 noise), unlike the source
            bounds = face_bounds(faces[0], src.shape[0], src.shape[1])
            assert bounds is not None
            assert _cell_std(out, bounds) < _cell_std(src, bounds) / 3


def test_face_free_video_passes_through_unchanged(models_dir: Path, tmp_path: Path) -> None:
    case = VideoCase("noface", ".mp4", "libx264", "yuv420p", Fraction(25), 176, 144, 30, (("crf", "10"),))
    src = write_video(tmp_path / case.filename, case)
    src_frames, src_times, _ = decode(src)
    for method in METHODS:
        stats = deidentify_video(src, tmp_path / f"out_{method}.mp4", method)
        assert (stats.frames, stats.face_frames, stats.no_face_frames, stats.faces) == (30, 0, 30, 0)
        frames, times, rate = decode(tmp_path / f"out_{method}.mp4")
        assert rate == pytest.approx(25.0)
        np.testing.assert_allclose(times, src_times, atol=1e-9)
        diff = np.abs(np.stack(frames).astype(float) - np.stack(src_frames).astype(float))
        assert diff.mean() < 1.5  # only the second encoding differs


def test_example_make_is_idempotent(examples: dict[str, Path]) -> None:
    out = next(iter(examples.values())).parent
    assert examples == {
        "original": out / "carphone_original.mp4",
        "astronaut": out / "astronaut.png",
        **example_paths(out),
    }
    expected = [f"carphone_{m}.mp4" for m in METHODS] + ["carphone_original.mp4", "astronaut.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    assert examples["original"].read_bytes() == example_video("carphone_pristine").read_bytes()
    with av.open(str(examples["astronaut"])) as png:  # lossless: the portrait comes back bit for bit
        decoded = next(png.decode(video=0)).to_ndarray(format="rgb24")
    np.testing.assert_array_equal(decoded, astronaut())
    before = {m: p.stat().st_mtime_ns for m, p in examples.items()}
    again = make_examples(out)
    assert again == examples
    assert {m: p.stat().st_mtime_ns for m, p in again.items()} == before


def test_cli_example_make_prints_the_paths(examples: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    out = next(iter(examples.values())).parent
    args = parser.parse_args(["example", "make", "--out", str(out)])
    assert args.handler(args) == 0
    assert capsys.readouterr().out.split() == [str(p) for p in examples.values()]


def test_cli_deidentify(tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    dst = tmp_path / "p.mp4"
    args = parser.parse_args(["deidentify", str(SOURCE), str(dst), "--method", "pixelate", "--block", "6"])
    assert args.handler(args) == 0
    assert "120 frames, 120 with a face, 0 without" in capsys.readouterr().out
    assert len(decode(dst)[0]) == 120
    args = parser.parse_args(["deidentify", str(SOURCE), str(dst), "--method", "blur", "--block", "6"])
    with pytest.raises(UsageError, match="--block"):
        args.handler(args)


def test_clear_errors(tmp_path: Path, models_dir: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        deidentify_video(tmp_path / "missing.mp4", tmp_path / "o.mp4", "blur")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(InputError, match="not a readable video"):
        deidentify_video(text, tmp_path / "o.mp4", "blur")
    with pytest.raises(SinkError, match="does not exist"):
        deidentify_video(SOURCE, tmp_path / "no" / "such" / "dir" / "o.mp4", "blur")
    with pytest.raises(SinkError, match="is a directory"):
        deidentify_video(SOURCE, tmp_path, "blur")
    with pytest.raises(UsageError, match="unknown de-identification method 'smudge'"):
        deidentify_video(SOURCE, tmp_path / "o.mp4", "smudge")
    with pytest.raises(UsageError, match="takes no option"):
        deidentify_video(SOURCE, tmp_path / "o.mp4", "mask", strength=3.0)
    with pytest.raises(UsageError, match="block"):
        deidentify_video(SOURCE, tmp_path / "o.mp4", "pixelate", block=0)
    assert not list(tmp_path.glob("*o.mp4*"))  # no output, not even a partial file
