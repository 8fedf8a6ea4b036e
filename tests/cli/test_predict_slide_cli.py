"""``instseg predict --slide``: whole-slide images (OME-TIFF, zarr) predicted tile by tile from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from disc_slides import disc_slide
from typer.testing import CliRunner

from instseg.cli.main import app

zarr = pytest.importorskip("zarr", reason="zarr (the 'slides' extra) is not installed")


@pytest.fixture(scope="module")
def slides(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """A 480 x 640 pyramidal OME-TIFF of bright discs (one half-size level), a 320 x 400 zarr array of discs, and
    how many discs the OME-TIFF holds."""
    folder = tmp_path_factory.mktemp("slides")
    image, drawn = disc_slide(480, 640, 160, seed=0)
    tiff = folder / "discs.ome.tif"
    with tifffile.TiffWriter(tiff, bigtiff=True, ome=True) as tif:
        tif.write(image, tile=(256, 256), subifds=1, compression="zlib", metadata={"axes": "YX"})
        tif.write(image[::2, ::2], tile=(256, 256), compression="zlib", subfiletype=1)
    small, _ = disc_slide(320, 400, 60, seed=1)
    array = zarr.create_array(str(folder / "cells.zarr"), shape=small.shape, chunks=(128, 128), dtype="uint8")
    array[:] = small
    return tiff, folder / "cells.zarr", drawn


def _objects(folder: Path) -> int:
    """The object count of one slide's results, checked against its ``objects.jsonl`` and label image."""
    meta = json.loads((folder / "slide.json").read_text())
    records = [json.loads(line) for line in (folder / "objects.jsonl").read_text().splitlines()]
    assert meta["objects"] == len(records)
    labels = np.asarray(zarr.open_array(str(folder / "labels.zarr"), mode="r")[:])
    assert labels.shape == (meta["height"], meta["width"]) and int(labels.max()) == len(records)
    assert all(r["category_id"] == 1 for r in records)
    return len(records)


def test_slides_into_their_folders_and_precisions_agree(slides: tuple[Path, Path, int], tmp_path: Path) -> None:
    tiff, zarr_slide, drawn = slides
    runner = CliRunner()
    out = tmp_path / "many"
    args = ["predict", str(tiff), str(zarr_slide), "--slide", "--tile", "384", "--tile-overlap", "96"]
    result = runner.invoke(app, [*args, "--precision", "float32", "--label-tiff", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["cells", "discs"]  # OUT/<stem>/ per slide (.ome dropped)
    for name in ("labels.zarr", "objects.jsonl", "slide.json", "labels.tif"):
        assert (out / "discs" / name).exists() and (out / "cells" / name).exists()
    meta = json.loads((out / "discs" / "slide.json").read_text())
    assert meta["tile"] == 384 and meta["overlap"] == 96 and meta["tiles"] == 2 * 2
    float32 = _objects(out / "discs")
    assert 0.9 * drawn <= float32 <= 1.1 * drawn  # the shipped nucleus model finds the discs
    assert _objects(out / "cells") > 0
    assert "objects, 4 tiles" in result.output and "(float32)" in result.output

    one = tmp_path / "one"  # one slide: straight into --out; the defaults (tile 1024, overlap 128, auto)
    result = runner.invoke(app, ["predict", str(tiff), "--slide", "--out", str(one)])
    assert result.exit_code == 0, result.output
    meta = json.loads((one / "slide.json").read_text())
    assert meta["tile"] == 1024 and meta["overlap"] == 128 and not (one / "labels.tif").exists()
    assert abs(_objects(one) - float32) <= max(2, 0.03 * float32)  # bfloat16 (where native) moves a few pixels

    again = runner.invoke(app, ["predict", str(tiff), "--slide", "--out", str(one)])
    assert again.exit_code == 2 and "--overwrite" in again.output  # results already there: refused


def test_bad_slides_and_options_are_one_line_usage_errors(slides: tuple[Path, Path, int], tmp_path: Path) -> None:
    tiff, zarr_slide, _ = slides
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00garbage")
    out = tmp_path / "out"
    runner = CliRunner()
    cases = [
        ([str(tiff), str(broken), "--slide"], "broken.tif"),
        ([str(tmp_path / "missing.svs"), "--slide"], "missing.svs"),
        ([str(tiff), "--slide", "--level", "2"], "level 2 does not exist"),
        ([str(zarr_slide), "--slide", "--level", "1"], "only level 0"),
        ([str(tiff), "--slide", "--precision", "fp8"], "--precision fp8"),
        ([str(tiff), "--precision", "bfloat16"], "options of --slide"),
        ([str(tmp_path / "m.onnx"), str(tiff), "--slide", "--precision", "bfloat16"], "not an exported .onnx model"),
        ([str(tiff), "--slide", "--tile", "0"], "--tile 0"),
        ([str(tiff), "--slide", "--tile-overlap", "1024"], "--tile-overlap 1024"),
        ([str(tiff), "--slide", "--ray"], "not with --ray"),
        ([str(tiff), "clip.mp4", "--slide"], "not with --ray, --data or videos"),
        (["--slide"], "give one or more slides"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["predict", *args, "--out", str(out)])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and result.output.count("error:") == 1, (args, result.output)
        assert not out.exists()  # refused before anything is written
