"""Acceptance on the real data sets: COCO -> label images / YOLO -> COCO keeps the masks.

dsb2018 val (121 images, 5,302 nuclei, compressed RLE) goes through both routes in full; the 6 dsb2018 train images
whose masks overlap (9 pixels in all, per the data README) check the label-map overlap rule; coco128seg val checks
polygon sources and many classes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from instseg.data.coco import CocoDataset, decode_segmentations, load_coco_json, segmentation_to_rle
from instseg.data.convert import convert_dataset

pytestmark = pytest.mark.shared_data

DSB_TRAIN_OVERLAP_IMAGES = [28, 57, 61, 225, 310, 627]  # the 6 images that share 9 pixels (data README)


def _matched(original: Path, converted: Path, images: Path | None = None) -> list[tuple[dict, dict, list, list]]:
    """(image entry, converted image entry, original non-crowd annotations, converted annotations) per image."""
    a, b = CocoDataset(original, images), CocoDataset(converted)
    index_b = {b.image_info(i)["file_name"]: i for i in range(len(b))}
    assert len(a) == len(b)
    out = []
    for i in range(len(a)):
        info = a.image_info(i)
        j = index_b[info["file_name"]]
        anns_a = [x for x in a.annotations_for(a.image_ids[i]) if not x.get("iscrowd", 0)]
        anns_b = b.annotations_for(b.image_ids[j])
        assert len(anns_a) == len(anns_b), info["file_name"]
        out.append((info, b.image_info(j), anns_a, anns_b))
    return out


def _pairs(original: Path, converted: Path, images: Path | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(original masks [N, H, W], converted masks [N, H, W]) of each image, matched by file name and order."""
    out = []
    for info, _, anns_a, anns_b in _matched(original, converted, images):
        h, w = info["height"], info["width"]
        out.append(
            (
                decode_segmentations([x["segmentation"] for x in anns_a], h, w),
                decode_segmentations([x["segmentation"] for x in anns_b], h, w),
            )
        )
    return out


def _ious(original: Path, converted: Path) -> np.ndarray:
    """IoU [N] of every converted mask with its original, computed by pycocotools on the RLEs (no decoding)."""
    values = []
    for info, _, anns_a, anns_b in _matched(original, converted):
        h, w = info["height"], info["width"]
        rles_a = [segmentation_to_rle(x["segmentation"], h, w) for x in anns_a]
        rles_b = [segmentation_to_rle(x["segmentation"], h, w) for x in anns_b]
        if rles_a:
            values.append(np.diag(np.asarray(mask_utils.iou(rles_b, rles_a, [0] * len(rles_a)))))
    return np.concatenate(values)


def test_dsb2018_val_labels_round_trip_pixel_exact(dsb2018_dir: Path, tmp_path: Path) -> None:
    there = convert_dataset("coco", "labels", dsb2018_dir, tmp_path / "labels", split="val")
    back = convert_dataset("labels", "coco", tmp_path / "labels", tmp_path / "coco", split="val")
    assert there.images_written == back.images_written == 121 and there.skipped == back.skipped == []
    assert there.objects_written == back.objects_written == 5302
    assert there.overlap_pixels == 0  # the val split has no overlapping masks (all 9 shared pixels are in train)
    pairs = _pairs(
        dsb2018_dir / "annotations" / "instances_val.json", tmp_path / "coco" / "annotations" / "instances_val.json"
    )
    assert all(np.array_equal(ma, mb) for ma, mb in pairs)


def test_dsb2018_overlapping_masks_follow_smaller_wins(dsb2018_dir: Path, tmp_path: Path) -> None:
    data = load_coco_json(dsb2018_dir / "annotations" / "instances_train.json")
    keep = set(DSB_TRAIN_OVERLAP_IMAGES)
    subset = {
        "images": [im for im in data["images"] if im["id"] in keep],
        "annotations": [a for a in data["annotations"] if a["image_id"] in keep],
        "categories": data["categories"],
    }
    ann = tmp_path / "src" / "overlaps.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps(subset))
    there = convert_dataset("coco", "labels", ann, tmp_path / "labels", images=dsb2018_dir / "images")
    assert there.overlap_pixels == 9 and there.overlap_images == 6 and there.lost_objects == []
    convert_dataset("labels", "coco", tmp_path / "labels", tmp_path / "coco", split="overlaps")
    pairs = _pairs(ann, tmp_path / "coco" / "annotations" / "instances_overlaps.json", dsb2018_dir / "images")
    changed = 0
    for ma, mb in pairs:
        shared = ma.sum(axis=0) > 1  # [H, W]
        assert not np.any(mb & ~ma)  # nothing gained
        assert not np.any((ma != mb) & ~shared)  # exact outside the shared pixels
        areas = ma.sum(axis=(1, 2))
        for y, x in zip(*np.nonzero(shared), strict=True):
            owners = np.flatnonzero(ma[:, y, x])
            winner = owners[np.lexsort((-owners, areas[owners]))[0]]  # smallest, then the later listed
            assert mb[:, y, x].tolist() == [k == winner for k in range(len(mb))]
        changed += int((ma != mb).sum())
    assert changed == 9


def test_dsb2018_val_yolo_round_trip_iou(dsb2018_dir: Path, tmp_path: Path) -> None:
    there = convert_dataset("coco", "yolo", dsb2018_dir, tmp_path / "yolo", split="val")
    back = convert_dataset("yolo", "coco", tmp_path / "yolo", tmp_path / "coco", split="val")
    assert there.objects_written == back.objects_written == 5302 and there.lost_objects == []
    ious = _ious(
        dsb2018_dir / "annotations" / "instances_val.json", tmp_path / "coco" / "annotations" / "instances_val.json"
    )
    print(f"dsb2018 val COCO -> YOLO -> COCO: {ious.size} masks, IoU min {ious.min():.4f} mean {ious.mean():.4f}")
    assert ious.size == 5302 and ious.min() >= 0.95


def test_coco128_val_round_trips(coco128_dir: Path, tmp_path: Path) -> None:
    ann = coco128_dir / "annotations" / "instances_val.json"
    convert_dataset("coco", "yolo", coco128_dir, tmp_path / "yolo", split="val")
    convert_dataset("yolo", "coco", tmp_path / "yolo", tmp_path / "from_yolo", split="val")
    ious = _ious(ann, tmp_path / "from_yolo" / "annotations" / "instances_val.json")
    print(f"coco128seg val COCO -> YOLO -> COCO: {ious.size} masks, IoU min {ious.min():.4f} mean {ious.mean():.4f}")
    # polygons pass through unrasterised; normalising to 6 decimals moves vertices by < 0.001 px, which flips the
    # rounding of pycocotools' 0.2 px grid where the source coordinates (0.01 px steps) sit exactly on a tie
    assert ious.size == 172 and ious.min() >= 0.95 and ious.mean() >= 0.995
    names = [
        c["name"]
        for c in json.loads((tmp_path / "from_yolo" / "annotations" / "instances_val.json").read_text())["categories"]
    ]
    assert names == [c["name"] for c in load_coco_json(ann)["categories"]]
    there = convert_dataset("coco", "labels", coco128_dir, tmp_path / "labels", split="val")
    convert_dataset("labels", "coco", tmp_path / "labels", tmp_path / "from_labels", split="val")
    pairs = _pairs(ann, tmp_path / "from_labels" / "annotations" / "instances_val.json")
    shared_total = 0
    for ma, mb in pairs:
        shared = ma.sum(axis=0) > 1
        shared_total += int(shared.sum())
        assert not np.any((ma != mb) & ~shared)
    assert shared_total == there.overlap_pixels
    print(
        f"coco128seg val COCO -> labels -> COCO: {there.overlap_pixels} shared pixels in {there.overlap_images} images"
    )


def test_datasets_load(dsb2018_dir: Path, coco128_dir: Path) -> None:
    ds = CocoDataset(dsb2018_dir / "annotations" / "instances_val.json")
    assert len(ds) == 121 and ds.class_names == ["nucleus"] and ds.skipped == []
    image, target, meta = ds[0]
    assert image.shape[0] == 3 and target.masks is not None and target.masks.shape[1:] == meta["original_size"]
    coco = CocoDataset(coco128_dir / "annotations" / "instances_train.json")
    assert len(coco) == 102 and coco.num_classes == 80 and coco.category_ids[-1] == 90
    empty = [i for i in range(len(coco)) if not coco.annotations_for(coco.image_ids[i])]
    assert len(empty) == 2 and len(coco[empty[0]][1]) == 0
