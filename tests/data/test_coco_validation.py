"""Up-front COCO validation: each fault's message names the json, image id, annotation id and the fault."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tiny_coco import coco_dict, make_coco_dir

from instseg.data.coco import CocoDataset
from instseg.structures.masks import mask_to_rle


def _ann(data: dict[str, Any], ann_id: int) -> dict[str, Any]:
    return next(a for a in data["annotations"] if a["id"] == ann_id)


def _set(ann_id: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        _ann(data, ann_id)[key] = value

    return change


def _dup_annotation(data: dict[str, Any]) -> None:
    data["annotations"].append(copy.deepcopy(_ann(data, 5)))


def _del_segmentation(data: dict[str, Any]) -> None:
    del _ann(data, 5)["segmentation"]


ANNOTATION_FAULTS = [
    ("duplicate", 20, 5, _dup_annotation, "duplicate annotation id"),
    ("bad id", 20, "'5'", _set(5, "id", "5"), "needs an integer 'id'"),
    ("unknown image", 99, 5, _set(5, "image_id", 99), "image_id 99 is not among the images"),
    ("unknown category", 20, 5, _set(5, "category_id", 4), "category_id 4 is not among the categories"),
    ("short polygon", 10, 1, _set(1, "segmentation", [[1, 1, 4, 1, 4]]), "needs an even number (>= 6)"),
    ("polygon nan", 10, 1, _set(1, "segmentation", [[1, 1, 4, 1, 4, "x"]]), "not a finite number"),
    ("polygon outside", 10, 1, _set(1, "segmentation", [[1, 1, 40, 1, 40, 4]]), "extends outside the 12x10 image"),
    ("empty polygon list", 10, 1, _set(1, "segmentation", []), "empty polygon list"),
    ("rle size", 20, 5, _set(5, "segmentation", {"size": [9, 8], "counts": "abc"}), "RLE size [9, 8] differs"),
    ("rle counts", 10, 4, _set(4, "segmentation", {"size": [10, 12], "counts": [100, 3]}), "counts sum to 103"),
    ("rle type", 20, 5, _set(5, "segmentation", {"size": [8, 8], "counts": 5}), "'counts' must be"),
    ("bbox outside", 20, 5, _set(5, "bbox", [6, 6, 4, 4]), "lies outside the 8x8 image"),
    ("bbox negative", 20, 5, _set(5, "bbox", [1, 1, -2, 3]), "negative width"),
    ("bbox shape", 20, 5, _set(5, "bbox", [1, 1, 2]), "bbox must be 4 finite numbers"),
    ("iscrowd", 20, 5, _set(5, "iscrowd", 2), "iscrowd must be 0 or 1"),
    ("no segmentation", 20, 5, _del_segmentation, "segmentation must be a polygon list or an RLE dict"),
    ("empty mask", 20, 5, _set(5, "segmentation", {"size": [8, 8], "counts": [64]}), "empty mask"),
    ("garbage rle", 20, 5, _set(5, "segmentation", {"size": [8, 8], "counts": "\x7f\x7f"}), "not a valid COCO RLE"),
    ("short rle", 20, 5, _set(5, "segmentation", {"size": [8, 8], "counts": "P1"}), "counts sum to 32, expected 8*8"),
]


@pytest.mark.parametrize(
    ("name", "image_id", "ann_id", "change", "fault"), ANNOTATION_FAULTS, ids=[f[0] for f in ANNOTATION_FAULTS]
)
def test_annotation_fault_names_file_image_annotation(
    tmp_path: Path, name: str, image_id: int, ann_id: int | str, change: Callable[[dict[str, Any]], None], fault: str
) -> None:
    data = coco_dict()
    change(data)
    ann = make_coco_dir(tmp_path, data)
    with pytest.raises(ValueError) as err:
        CocoDataset(ann)
    message = str(err.value)
    assert message.startswith(f"{ann}: image {image_id}, annotation {ann_id}: "), message
    assert fault in message, message


def _set_image(index: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["images"][index][key] = value

    return change


def _dup_image(data: dict[str, Any]) -> None:
    data["images"].append(dict(data["images"][2]))


IMAGE_FAULTS = [
    ("missing file", _set_image(2, "file_name", "gone.png"), "image 30 (gone.png)", "image file"),
    ("zero width", _set_image(2, "width", 0), "image 30 (c.png)", "'width' must be a positive integer"),
    ("no name", _set_image(2, "file_name", ""), "image 30 ()", "'file_name' must be a non-empty string"),
    ("duplicate", _dup_image, "image 30 (c.png)", "duplicate image id"),
    ("bad id", _set_image(2, "id", "x"), "image 'x' (c.png)", "needs an integer 'id'"),
]


@pytest.mark.parametrize(("name", "change", "where", "fault"), IMAGE_FAULTS, ids=[f[0] for f in IMAGE_FAULTS])
def test_image_fault_names_file_and_image(
    tmp_path: Path, name: str, change: Callable[[dict[str, Any]], None], where: str, fault: str
) -> None:
    data = coco_dict()
    change(data)
    ann = make_coco_dir(tmp_path, data)
    with pytest.raises(ValueError) as err:
        CocoDataset(ann)
    assert str(err.value).startswith(f"{ann}: {where}: "), str(err.value)
    assert fault in str(err.value)


def test_structural_faults_always_raise(tmp_path: Path) -> None:
    data = coco_dict()
    data["categories"].append({"id": 3, "name": "again"})
    ann = make_coco_dir(tmp_path / "a", data)
    with pytest.raises(ValueError, match=r"category 3: duplicate category id"):
        CocoDataset(ann, skip_invalid=True)
    ann = make_coco_dir(tmp_path / "b", {"annotations": []})
    with pytest.raises(ValueError, match="needs an 'images' list"):
        CocoDataset(ann, skip_invalid=True)
    data = coco_dict()
    del data["categories"]
    with pytest.raises(ValueError, match="'categories' must be a list"):
        CocoDataset(make_coco_dir(tmp_path / "c", data), skip_invalid=True)


def test_skip_invalid_warns_each_and_counts(tmp_path: Path) -> None:
    data = coco_dict()
    _ann(data, 1)["segmentation"] = [[1, 1, 4]]  # bad polygon
    _ann(data, 5)["bbox"] = [0, 0, 50, 50]  # bbox outside
    data["images"][2]["file_name"] = "gone.png"  # missing file
    data["annotations"].append({"id": 6, "image_id": 30, "category_id": 3, "segmentation": [[0, 0, 2, 0, 2, 2]]})
    ann = make_coco_dir(tmp_path, data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = CocoDataset(ann, skip_invalid=True)
    messages = [str(w.message) for w in caught]
    assert len(ds.skipped) == 3  # annotation 6 goes with its skipped image, silently
    assert sum(m.startswith("skipped ") for m in messages) == 3
    assert messages[-1] == f"{ann}: skipped 3 invalid annotations/images"
    assert any("image 30 (gone.png)" in s for s in ds.skipped)
    assert any("image 10, annotation 1:" in s for s in ds.skipped)
    assert any("image 20, annotation 5:" in s for s in ds.skipped)
    assert ds.image_ids == [10, 20]
    assert len(ds[0][1]) == 2 and len(ds[1][1]) == 0


def test_valid_data_sets_skip_nothing(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = CocoDataset(make_coco_dir(tmp_path), skip_invalid=True)
    assert ds.skipped == []


def test_bbox_tolerance_and_float_ids(tmp_path: Path) -> None:
    data = coco_dict()
    _ann(data, 5)["bbox"] = [-0.5, 0, 8.9, 8.5]  # within the 1 px tolerance
    _ann(data, 5)["image_id"] = 20.0  # some tools write integral floats
    data["images"][1]["width"] = 8.0
    _ann(data, 1)["segmentation"] = [[1, 1, 4, 1, 4, 4, 1, 4]]
    _ann(data, 2)["segmentation"] = mask_to_rle(__import__("tiny_coco").expected_masks()[2])
    ds = CocoDataset(make_coco_dir(tmp_path, data))
    assert len(ds[1][1]) == 1
