"""``CocoDataset``: every segmentation form, crowd handling, category mapping, and lazily read images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_coco import coco_dict, expected_masks, make_coco_dir

from instseg.data.coco import CocoDataset, load_coco_json
from instseg.structures.instances import Instances


def test_items_masks_labels_and_meta(tmp_path: Path) -> None:
    ds = CocoDataset(make_coco_dir(tmp_path))
    assert len(ds) == 3 and ds.image_ids == [10, 20, 30]
    assert ds.category_ids == [3, 7] and ds.class_names == ["cat", "dog"] and ds.num_classes == 2
    assert ds.images_dir == tmp_path / "images" and ds.ann_file.name == "instances_train.json"
    image, target, meta = ds[0]
    assert image.shape == (3, 10, 12) and image.dtype == torch.uint8
    assert meta == {"image_id": 10, "file_name": "a.png", "original_size": (10, 12)}
    masks = expected_masks()
    assert target.masks is not None and target.scores is None
    assert len(target) == 3  # the crowd region (annotation 4) is not a training target
    for got, ann_id in zip(target.masks.numpy(), [1, 2, 3], strict=True):
        assert np.array_equal(got, masks[ann_id])
    assert target.labels.tolist() == [0, 0, 1]  # category 3 -> label 0, 7 -> 1
    assert target.boxes[1].tolist() == [5, 4, 10, 9]


def test_grey_image_and_empty_image(tmp_path: Path) -> None:
    ds = CocoDataset(make_coco_dir(tmp_path))
    image, target, _ = ds[1]
    assert image.shape == (3, 8, 8) and torch.equal(image[0], image[2])
    assert target.labels.tolist() == [1]
    image, target, meta = ds[-1]
    assert len(target) == 0 and target.masks is not None and target.masks.shape == (0, 6, 6)
    assert meta["image_id"] == 30
    with pytest.raises(IndexError):
        ds[3]


def test_raw_annotations_keep_crowd(tmp_path: Path) -> None:
    ds = CocoDataset(make_coco_dir(tmp_path))
    assert [a["id"] for a in ds.annotations_for(10)] == [1, 2, 3, 4]
    assert ds.annotations_for(30) == []
    with pytest.raises(KeyError):
        ds.annotations_for(99)
    gt = ds.to_coco_dict()
    assert len(gt["images"]) == 3 and len(gt["annotations"]) == 5 and [c["id"] for c in gt["categories"]] == [3, 7]
    assert ds.label_of(7) == 1


def test_transforms_applied_in_order(tmp_path: Path) -> None:
    calls: list[str] = []

    def flip(image: torch.Tensor, target: Instances) -> tuple[torch.Tensor, Instances]:
        calls.append("flip")
        masks = target.masks.flip(-1) if target.masks is not None else None
        return image.flip(-1), Instances(target.image_size, labels=target.labels, masks=masks)

    def mark(image: torch.Tensor, target: Instances) -> tuple[torch.Tensor, Instances]:
        calls.append("mark")
        return image, target

    plain = CocoDataset(make_coco_dir(tmp_path))
    ds = CocoDataset(plain.ann_file, transforms=[flip, mark])
    image, target, _ = ds[0]
    assert calls == ["flip", "mark"]
    assert torch.equal(image, plain[0][0].flip(-1))
    assert target.masks is not None and np.array_equal(target.masks[0].numpy(), expected_masks()[1][:, ::-1])
    single = CocoDataset(plain.ann_file, transforms=mark)
    single[0]
    assert calls[-1] == "mark"


def test_images_dir_argument_and_sibling_layout(tmp_path: Path) -> None:
    ann = make_coco_dir(tmp_path / "set")
    moved = tmp_path / "elsewhere"
    (tmp_path / "set" / "images").rename(moved)
    with pytest.raises(ValueError, match="no images folder"):
        CocoDataset(ann)
    assert len(CocoDataset(ann, images_dir=moved)) == 3


def test_unreadable_or_resized_image_named_at_getitem(tmp_path: Path) -> None:
    ann = make_coco_dir(tmp_path)
    good = (tmp_path / "images" / "b.png").read_bytes()
    (tmp_path / "images" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ValueError, match=r"image 20 \(b\.png\): .*b\.png: truncated PNG"):
        CocoDataset(ann)  # found up front, not at the first batch
    with pytest.warns(UserWarning, match="truncated PNG"):
        assert len(CocoDataset(ann, skip_invalid=True)) == 2
    (tmp_path / "images" / "b.png").write_bytes(good)
    ds = CocoDataset(ann)
    (tmp_path / "images" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # damaged after opening
    with pytest.raises(ValueError, match=r"b\.png: cannot read image"):
        ds[1]
    from PIL import Image

    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "images" / "c.png")
    with pytest.raises(ValueError, match=r"c\.png: image 30 is 5x5 .* says 6x6"):
        ds[2]


def test_load_coco_json_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such annotation file"):
        load_coco_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: cannot read COCO json"):
        load_coco_json(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match=r"list\.json: a COCO json must hold an object"):
        load_coco_json(tmp_path / "list.json")
    assert load_coco_json(make_coco_dir(tmp_path / "ok"))["categories"] == coco_dict()["categories"]


def test_annotation_free_json_gives_empty_targets(tmp_path: Path) -> None:
    data = coco_dict()
    del data["annotations"]  # a test-set json lists images only
    ds = CocoDataset(make_coco_dir(tmp_path, data))
    assert all(len(ds[i][1]) == 0 for i in range(len(ds)))
