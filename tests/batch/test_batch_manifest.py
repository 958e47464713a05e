"""The batch manifest: CSV and JSON Lines rows, resolved paths, and one clear error per bad row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streameval.batch.manifest import load_manifest
from streameval.errors import ConfigError


@pytest.fixture()
def videos(tmp_path: Path) -> Path:
    for name in ("orig.mp4", "blur.mp4", "swap.mp4", "b.png"):
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def test_csv_rows_resolve_paths_relative_to_the_manifest(videos: Path) -> None:
    path = videos / "m.csv"
    path.write_text(
        "source,deid,method,ref_b,options\n"
        "orig.mp4,blur.mp4,blur,,\n"
        '# a comment\norig.mp4,swap.mp4,swap,b.png,"{""reality"": {""clip_every"": ""1s""}}"\n'
    )
    m = load_manifest(path)
    assert m.errors == []
    assert [p.method for p in m.pairs] == ["blur", "swap"]
    assert m.pairs[0].source == str(videos / "orig.mp4") and m.pairs[0].ref_b is None
    assert m.pairs[1].ref_b == str(videos / "b.png")
    assert m.pairs[1].options == {"reality": {"clip_every": "1s"}}
    assert m.pairs[1].row == 4
    assert len({p.id for p in m.pairs}) == 2  # derived ids differ


def test_bad_rows_each_get_an_error_and_the_rest_stay(videos: Path) -> None:
    rows = [
        {"source": "orig.mp4", "deid": "blur.mp4", "method": "blur", "id": "good"},
        {"source": "orig.mp4", "deid": "gone.mp4", "method": "blur"},
        "{not json",
        {"source": "orig.mp4", "deid": "swap.mp4", "method": "swap", "colour": "red"},
        {"source": "orig.mp4", "deid": "blur.mp4", "method": "blur", "id": "good"},
        {"source": "orig.mp4", "deid": "swap.mp4"},
        {"source": "orig.mp4", "deid": "swap.mp4", "method": "swap", "options": "[1]"},
        {"source": "orig.mp4", "deid": "swap.mp4", "method": "swap", "id": "../escape"},
        {"source": "orig.mp4", "deid": "swap.mp4", "method": "swap", "id": "good"},
    ]
    path = videos / "m.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    m = load_manifest(path)
    assert [p.id for p in m.pairs] == ["good"]
    errors = {e.row: e.message for e in m.errors}
    assert "gone.mp4: no such file" in errors[2]
    assert "not valid JSON" in errors[3]
    assert "unknown column(s) colour" in errors[4]
    assert "duplicate of the pair on line 1" in errors[5]
    assert "missing method" in errors[6]
    assert "options must be a JSON object" in errors[7]
    assert "names a directory" in errors[8]
    assert "id 'good' already used on line 1" in errors[9]


def test_csv_without_required_columns_is_an_error(videos: Path) -> None:
    path = videos / "m.csv"
    path.write_text("source,method\norig.mp4,blur\n")
    with pytest.raises(ConfigError, match="lacks column"):
        load_manifest(path)


def test_csv_row_with_wrong_cell_count(videos: Path) -> None:
    path = videos / "m.csv"
    path.write_text("source,deid,method\norig.mp4,blur.mp4\norig.mp4,blur.mp4,blur\n")
    m = load_manifest(path)
    assert len(m.pairs) == 1
    assert m.errors[0].row == 2 and "2 cells for 3 columns" in m.errors[0].message
