"""Label maps: file formats (8/16-bit PNG, palette, 32-bit TIFF), the smaller-wins overlap rule, RLEs and Instances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from instseg.data.label_images import (
    label_map_suffix,
    label_map_to_rles,
    masks_to_label_map,
    read_label_map,
    write_label_map,
)
from instseg.ops.instance_maps import label_map_to_instances, label_map_to_masks
from instseg.structures.masks import masks_to_rles


def test_16bit_png_and_32bit_tiff_round_trip(tmp_path: Path) -> None:
    labels = np.array([[0, 1, 65535], [300, 0, 2]], dtype=np.int64)
    assert label_map_suffix(65535) == ".png" and label_map_suffix(65536) == ".tif"
    write_label_map(tmp_path / "a.png", labels)
    with Image.open(tmp_path / "a.png") as img:
        assert img.mode.startswith("I")  # 16-bit, not 8-bit
    assert np.array_equal(read_label_map(tmp_path / "a.png"), labels)
    big = labels * 1000
    write_label_map(tmp_path / "b.tif", big)
    assert tifffile.imread(tmp_path / "b.tif").dtype == np.uint32
    assert np.array_equal(read_label_map(tmp_path / "b.tif"), big)
    with pytest.raises(ValueError, match=r"a2\.png: label 65535000 does not fit a 16-bit PNG"):
        write_label_map(tmp_path / "a2.png", big)
    with pytest.raises(ValueError, match=r"not '\.jpg'"):
        write_label_map(tmp_path / "c.jpg", labels)
    with pytest.raises(ValueError, match="negative"):
        write_label_map(tmp_path / "d.png", -labels)


def test_8bit_and_palette_png_read_as_indices(tmp_path: Path) -> None:
    grey = np.array([[0, 3], [7, 255]], dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    assert read_label_map(tmp_path / "g.png").tolist() == grey.tolist()
    pal = Image.fromarray(grey, mode="L").convert("P")
    pal.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    pal.save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as img:
        assert img.mode == "P"
    assert read_label_map(tmp_path / "p.png").tolist() == grey.tolist()


def test_bad_label_files_named(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(
        ValueError, match=r"rgb\.png: cannot read label map \(a label map must have one integer channel"
    ):
        read_label_map(tmp_path / "rgb.png")
    tifffile.imwrite(tmp_path / "f.tif", np.array([[0.0, 1.5]], np.float32))
    with pytest.raises(ValueError, match=r"f\.tif: a float label map must hold whole numbers"):
        read_label_map(tmp_path / "f.tif")
    tifffile.imwrite(tmp_path / "ok.tif", np.array([[0.0, 2.0]], np.float32))
    assert read_label_map(tmp_path / "ok.tif").tolist() == [[0, 2]]
    tifffile.imwrite(tmp_path / "neg.tif", np.array([[0, -1]], np.int32))
    with pytest.raises(ValueError, match=r"neg\.tif: .*negative"):
        read_label_map(tmp_path / "neg.tif")
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 4, 4), np.uint16))
    with pytest.raises(ValueError, match=r"stack\.tif: a label map must be 2-D"):
        read_label_map(tmp_path / "stack.tif")
    (tmp_path / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\nxx")
    with pytest.raises(ValueError, match=r"cut\.png: cannot read label map"):
        read_label_map(tmp_path / "cut.png")
    with pytest.raises(ValueError, match="no such label map"):
        read_label_map(tmp_path / "none.png")


def test_touching_objects_stay_separate() -> None:
    masks = np.zeros((2, 4, 6), dtype=bool)
    masks[0, :, :3] = True
    masks[1, :, 3:] = True
    painted = masks_to_label_map(masks)
    assert painted.overlap_pixels == 0 and painted.lost == []
    assert painted.label_map.dtype == np.uint16
    assert painted.label_map[:, :3].tolist() == [[1] * 3] * 4 and painted.label_map[:, 3:].tolist() == [[2] * 3] * 4
    ids, back = label_map_to_masks(torch.from_numpy(painted.label_map))
    assert ids.tolist() == [1, 2] and np.array_equal(back.numpy(), masks)


def test_smaller_object_wins_shared_pixels() -> None:
    masks = np.zeros((4, 8, 8), dtype=bool)
    masks[0, 0:6, 0:6] = True  # big
    masks[1, 4:7, 4:7] = True  # small, overlapping big on 4 pixels
    masks[2, 7, 0:2] = True  # 2 px
    masks[3, 7, 1:3] = True  # 2 px, ties with object 2 on one pixel: the later one wins
    painted = masks_to_label_map(masks)
    lm = painted.label_map
    assert (lm == 2).sum() == 9 and (lm == 1).sum() == 36 - 4
    assert lm[7, 1] == 4 and lm[7, 0] == 3
    assert painted.overlap_pixels == 5 and painted.lost == []
    boxes = np.array([[0, 0, 6, 6], [4, 4, 7, 7], [0, 7, 2, 8], [1, 7, 3, 8]])
    assert np.array_equal(masks_to_label_map(masks, boxes).label_map, lm)
    assert np.array_equal(masks_to_label_map(masks.astype(np.uint8)).label_map, lm)


def test_fully_covered_object_is_reported_lost() -> None:
    masks = np.zeros((3, 5, 5), dtype=bool)
    masks[0, 1:3, 1:3] = True
    masks[1, 0:4, 0:4] = True
    masks[2, 1:3, 1:3] = True  # the same pixels as object 0: object 2, listed later, wins
    painted = masks_to_label_map(masks)
    assert painted.lost == [0] and painted.overlap_pixels == 4
    assert masks_to_label_map(np.zeros((0, 3, 3), dtype=bool)).label_map.shape == (3, 3)


def test_sparse_ids_and_maps_without_background() -> None:
    lm = np.array([[5, 5, 70000], [70000, 9, 9]], dtype=np.int64)
    ids, masks = label_map_to_masks(torch.from_numpy(lm))
    assert ids.tolist() == [5, 9, 70000]
    assert masks[0].tolist() == [[True, True, False], [False, False, False]]
    assert masks[2].tolist() == [[False, False, True], [True, False, False]]
    ids, rles = label_map_to_rles(lm)
    assert [r["counts"] for r in rles] == [r["counts"] for r in masks_to_rles(masks.numpy())]
    assert label_map_to_rles(np.zeros((3, 3), np.int64))[1] == []


def test_instances_round_trip() -> None:
    lm = np.zeros((6, 7), dtype=np.int64)
    lm[1:3, 1:4] = 4
    lm[4:6, 2:7] = 2
    inst = label_map_to_instances(torch.from_numpy(lm), labels=torch.tensor([0, 1]))
    assert inst.image_size == (6, 7) and inst.labels.tolist() == [0, 1]  # ordered by label value: 2, 4
    assert inst.boxes.tolist() == [[2, 4, 7, 6], [1, 1, 4, 3]]
    back = masks_to_label_map(inst.masks.numpy())  # type: ignore[union-attr]
    assert np.array_equal(back.label_map > 0, lm > 0) and back.overlap_pixels == 0
