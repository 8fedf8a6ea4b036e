"""SyntheticShapes: seeded, order-independent items in CocoDataset's format, and a COCO export that round-trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from instseg.data.synthetic import SHAPE_KINDS, SyntheticShapes
from instseg.ops.boxes import masks_to_boxes, xyxy_to_xywh
from instseg.transforms import build_train_transforms


def test_item_format_and_invariants():
    ds = SyntheticShapes(num_images=12, image_size=(48, 64), num_classes=5, seed=1, min_area=10)
    assert len(ds) == 12 and ds.num_classes == 5
    assert ds.class_names == list(SHAPE_KINDS) and ds.category_ids == [1, 2, 3, 4, 5]
    assert ds.image_ids == list(range(1, 13))
    counts = []
    for i in range(len(ds)):
        image, target, meta = ds[i]
        assert image.dtype == torch.uint8 and image.shape == (3, 48, 64)
        assert meta == {"image_id": i + 1, "file_name": f"train_{i:06d}.png", "original_size": (48, 64)}
        assert target.image_size == (48, 64) and target.scores is None
        masks = target.masks
        assert masks is not None and masks.dtype == torch.bool
        assert bool((masks.flatten(1).sum(1) >= 10).all())
        assert int(masks.sum(0).max()) <= 1, "visible parts of objects must not overlap"
        assert bool(((target.labels >= 0) & (target.labels < 5)).all())
        assert torch.equal(target.boxes, masks_to_boxes(masks))
        counts.append(len(target))
    assert max(counts) <= 12 and len(set(counts)) > 1
    assert ds[-1][2]["image_id"] == 12
    with pytest.raises(IndexError):
        ds[12]


def test_items_depend_only_on_seed_split_and_index():
    a = SyntheticShapes(num_images=6, image_size=40, seed=4)
    b = SyntheticShapes(num_images=6, image_size=40, seed=4)
    late = b[5]  # generated first here, last in `a`
    for i in range(6):
        a[i]
    early = a[5]
    assert torch.equal(early[0], late[0]) and torch.equal(early[1].masks, late[1].masks)
    assert torch.equal(early[1].labels, late[1].labels)
    assert not torch.equal(SyntheticShapes(6, 40, seed=5)[5][0], late[0])
    assert not torch.equal(SyntheticShapes(6, 40, seed=4, split="val")[5][0], late[0])


def test_shapes_occlude_each_other():
    # Later shapes paint over earlier ones: across a few crowded images some object loses pixels to another,
    # which shows as a visible mask smaller than its filled polygon would be, i.e. masks touching each other.
    ds = SyntheticShapes(num_images=6, image_size=64, seed=0, min_objects=8, max_objects=12, size_range=(0.15, 0.3))
    touching = 0
    for i in range(len(ds)):
        masks = ds[i][1].masks.float()
        grown = torch.nn.functional.max_pool2d(masks[None], 3, stride=1, padding=1)[0] > 0
        touching += int(((grown.flatten(1).float() @ masks.flatten(1).T) > 0).sum() - len(masks))
    assert touching > 0


def test_transforms_are_applied():
    ds = SyntheticShapes(num_images=2, image_size=32, seed=0, transforms=build_train_transforms(lsj=48, hflip=False))
    image, target, meta = ds[0]
    assert image.shape == (3, 48, 48) and target.image_size == (48, 48)
    assert meta["original_size"] == (32, 32)


def test_write_coco_round_trips_through_pycocotools(tmp_path):
    ds = SyntheticShapes(num_images=4, image_size=(40, 56), num_classes=4, seed=2, split="val")
    ann_file = ds.write_coco(tmp_path)
    assert ann_file == tmp_path / "annotations" / "instances_val.json"
    data = json.loads(ann_file.read_text())
    assert [c["name"] for c in data["categories"]] == list(SHAPE_KINDS[:4])
    coco = COCO(str(ann_file))
    for i in range(len(ds)):
        _, target, meta = ds[i]
        info = coco.imgs[meta["image_id"]]
        assert (info["height"], info["width"]) == (40, 56)
        assert (tmp_path / "images" / info["file_name"]).is_file()
        anns = coco.loadAnns(coco.getAnnIds(imgIds=meta["image_id"]))
        assert len(anns) == len(target)
        masks = np.stack([coco.annToMask(a) for a in anns]).astype(bool) if anns else np.zeros((0, 40, 56), bool)
        assert np.array_equal(masks, target.masks.numpy())
        assert [a["category_id"] - 1 for a in anns] == target.labels.tolist()
        assert [a["area"] for a in anns] == target.masks.flatten(1).sum(1).tolist()
        assert np.allclose([a["bbox"] for a in anns], xyxy_to_xywh(target.boxes).numpy().reshape(-1, 4))
        assert all(a["iscrowd"] == 0 for a in anns)


def test_written_set_loads_as_coco_dataset(tmp_path):
    from instseg.data import coco as coco_module  # the package's own module: an import error must fail

    ds = SyntheticShapes(num_images=3, image_size=32, seed=7)
    loaded = coco_module.CocoDataset(ds.write_coco(tmp_path))
    assert loaded.class_names == ds.class_names and loaded.category_ids == ds.category_ids
    for i in range(len(ds)):
        (ia, ta, ma), (ib, tb, mb) = ds[i], loaded[i]
        assert torch.equal(ia, ib) and torch.equal(ta.masks, tb.masks) and torch.equal(ta.labels, tb.labels)
        assert ma == mb


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticShapes(num_classes=6)
    with pytest.raises(ValueError, match="min_objects"):
        SyntheticShapes(min_objects=5, max_objects=2)
    with pytest.raises(ValueError, match="image_size"):
        SyntheticShapes(image_size=0)
    with pytest.raises(ValueError, match="size_range"):
        SyntheticShapes(size_range=(0.0, 0.1))
