"""Whole-slide prediction: lazy tile reads, the same objects as in-memory tiling, box-cropped RLEs that decode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import torch
from disc_slides import disc_slide
from skimage.measure import label as connected_components

from instseg.inference.slides import (
    SlideSource,
    full_slide_rle,
    object_crop,
    open_slide,
    predict_slide,
)
from instseg.structures import Instances
from instseg.structures.masks import mask_to_rle

zarr = pytest.importorskip("zarr", reason="zarr (the 'slides' extra) is not installed")


def blobs(image: np.ndarray) -> Instances:
    """A stand-in model: every bright connected blob is one object (tile-independent by construction)."""
    labels = connected_components(image[..., 0] > 127)
    n = int(labels.max())
    masks = torch.from_numpy(labels[None] == np.arange(1, n + 1)[:, None, None])
    return Instances(labels.shape, masks=masks, scores=torch.linspace(1.0, 0.5, n))


class CountingArray:
    """An array-like that records how many values every region read from it holds (to prove reads stay
    tile-sized; every axis counts, channels included)."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.reads = data, data.shape, data.dtype, []

    def __getitem__(self, index: Any) -> np.ndarray:
        region = self.data[index]
        self.reads.append(int(region.size))
        return region


@pytest.fixture(scope="module")
def slide(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, int]:
    """A 1300 x 1500 pyramidal OME-TIFF (256-px tiles, one half-size level) of discs, with its pixels."""
    image, drawn = disc_slide(1300, 1500, 700, seed=0)
    path = tmp_path_factory.mktemp("slide") / "discs.ome.tif"
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tif:
        tif.write(image, tile=(256, 256), subifds=1, compression="zlib", metadata={"axes": "YX"})
        tif.write(image[::2, ::2], tile=(256, 256), compression="zlib", subfiletype=1)
    return path, image, drawn


def test_tiff_levels_read_lazily(slide: tuple[Path, np.ndarray, int]) -> None:
    path, image, _ = slide
    with open_slide(path) as source:
        assert source.shape == image.shape
        np.testing.assert_array_equal(source.read(100, 900, 300, 200), image[100:400, 900:1100])
    with open_slide(path, level=1) as source:
        assert source.shape == (650, 750)
    with pytest.raises(ValueError, match="level 2 does not exist"):
        open_slide(path, level=2)


def test_jpeg_tiles_as_in_svs_files(tmp_path: Path) -> None:
    pytest.importorskip("imagecodecs", reason="imagecodecs (JPEG tiles, the 'slides' extra) is not installed")
    rng = np.random.default_rng(3)
    image = np.repeat(np.repeat(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8), 16, axis=0), 16, axis=1)
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, image, tile=(128, 128), compression="jpeg", photometric="rgb")
    with open_slide(path) as source:
        region = source.read(200, 300, 256, 200)
    assert region.shape == (256, 200, 3)
    np.testing.assert_array_equal(region, tifffile.imread(path)[200:456, 300:500])  # the tiles, decoded alone
    assert np.abs(region.astype(int) - image[200:456, 300:500]).mean() < 8  # JPEG is lossy, but close


def test_slide_equals_in_memory_tiling(slide: tuple[Path, np.ndarray, int], tmp_path: Path) -> None:
    path, image, drawn = slide
    with open_slide(path) as source:
        summary = predict_slide(blobs, source, tmp_path, tile=512, overlap=128, label_tiff=True, progress=False)
    truth = connected_components(image > 127)  # the true discs, from the whole image at once
    labels = np.asarray(zarr.open_array(str(summary.files["labels"]), mode="r")[:])
    assert summary.objects == int(truth.max()) == drawn  # every disc once: none cut or doubled on the seams
    np.testing.assert_array_equal(labels > 0, truth > 0)
    pairs = np.unique(np.stack([labels[truth > 0], truth[truth > 0]]), axis=1)  # (object id, true disc) pairs
    assert pairs.shape[1] == drawn  # one-to-one: no object spans two discs, no disc is split in two
    np.testing.assert_array_equal(tifffile.imread(summary.files["labels_tiff"]), labels)

    records = [json.loads(line) for line in summary.files["objects"].read_text().splitlines()]
    assert [r["id"] for r in records] == list(range(1, drawn + 1))
    for record in records[::25]:
        y0, x0, crop = object_crop(record)
        window = labels[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] == record["id"]
        np.testing.assert_array_equal(crop, window)
        assert record["area"] == int((labels == record["id"]).sum())
        assert full_slide_rle(record, *labels.shape) == mask_to_rle(labels == record["id"])
    with pytest.raises(ValueError), open_slide(path) as source:  # results already there: not mixed with new ones
        predict_slide(blobs, source, tmp_path, tile=512, overlap=128, progress=False)
    meta = json.loads(summary.files["summary"].read_text())
    assert meta["objects"] == drawn and meta["tiles"] == summary.tiles == 4 * 4  # starts 0, 384, 768, H - 512


def test_reads_stay_tile_sized_and_16_bit_uses_one_range(tmp_path: Path) -> None:
    image, drawn = disc_slide(900, 1000, 300, seed=1)
    stack = (image.astype(np.uint16) * 40 + 1000)[None]  # [1, H, W] channel-first, 16-bit
    counting = CountingArray(stack)
    source = SlideSource(counting, "CYX", "counting")
    summary = predict_slide(blobs, source, tmp_path, tile=384, overlap=96, progress=False)
    assert summary.objects == drawn
    assert max(counting.reads) <= 384 * 384  # one channel: no read larger than one tile, never the whole slide

    on_disk = zarr.create_array(str(tmp_path / "in.zarr"), shape=stack.shape, chunks=(1, 256, 256), dtype="uint16")
    on_disk[:] = stack
    on_disk.attrs["axes"] = "CYX"
    again = predict_slide(blobs, open_slide(tmp_path / "in.zarr"), tmp_path / "again", tile=384, overlap=96,
                          progress=False)  # fmt: skip
    assert again.objects == drawn


def test_bad_slides(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        open_slide(tmp_path / "missing.tif")
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00garbage")
    with pytest.raises(ValueError, match=r"broken\.tif"):
        open_slide(broken)
    with pytest.raises(ValueError, match="not one 2-D image"):
        SlideSource(np.zeros((3, 64, 64), np.uint8), "ZYX", "stack.zarr")
