"""Conversions between COCO, label-image and YOLO folders on a tiny data set: round trips and reports."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from tiny_coco import coco_dict, expected_masks, make_coco_dir

from instseg.data.coco import CocoDataset
from instseg.data.convert import convert_dataset, read_coco_records
from instseg.data.label_folder import read_classes_json, read_label_folder, write_label_folder
from instseg.data.label_images import read_label_map, write_label_map


def _masks_by_file(ann: Path) -> dict[str, list[tuple[str, np.ndarray]]]:
    """file name -> [(class name, mask)] of the non-crowd objects of a COCO json."""
    ds = CocoDataset(ann)
    out = {}
    for i in range(len(ds)):
        target = ds.load_target(i)
        names = [ds.class_names[int(k)] for k in target.labels]
        out[ds.image_info(i)["file_name"]] = list(zip(names, target.masks.numpy(), strict=True))  # type: ignore[union-attr]
    return out


def _same_objects(a: Path, b: Path) -> None:
    got, want = _masks_by_file(b), _masks_by_file(a)
    assert got.keys() == want.keys()
    for name in want:
        assert [n for n, _ in got[name]] == [n for n, _ in want[name]]
        for (_, m1), (_, m2) in zip(got[name], want[name], strict=True):
            assert np.array_equal(m1, m2)


@pytest.mark.parametrize("middle", ["labels", "yolo"])
def test_coco_round_trip_through_folder_format(tmp_path: Path, middle: str) -> None:
    ann = make_coco_dir(tmp_path / "src", split="val")
    first = convert_dataset("coco", middle, tmp_path / "src", tmp_path / "mid", split="val")
    assert first.images_written == 3 and first.objects_written == 4 and first.crowd_dropped == 1
    back = convert_dataset(middle, "coco", tmp_path / "mid", tmp_path / "back", split="val")
    assert back.images_written == 3 and back.objects_written == 4 and back.skipped == []
    out = tmp_path / "back" / "annotations" / "instances_val.json"
    _same_objects(ann, out)
    data = json.loads(out.read_text())
    ring = data["annotations"][1]
    assert ring["area"] == 24 and ring["bbox"] == [5, 4, 5, 5] and ring["iscrowd"] == 0


def test_coco_to_coco_keeps_ids_crowd_and_categories(tmp_path: Path) -> None:
    ann = make_coco_dir(tmp_path / "src")
    report = convert_dataset("coco", "coco", ann, tmp_path / "dst", link=True)
    assert report.objects_written == 5
    out = json.loads((tmp_path / "dst" / "annotations" / "instances_train.json").read_text())
    assert [i["id"] for i in out["images"]] == [10, 20, 30]
    assert [c["id"] for c in out["categories"]] == [3, 7]
    assert sum(a["iscrowd"] for a in out["annotations"]) == 1
    assert os.path.samefile(tmp_path / "dst" / "images" / "a.png", tmp_path / "src" / "images" / "a.png")


def test_labels_folder_layout_classes_and_sidecars(tmp_path: Path) -> None:
    records = read_coco_records(make_coco_dir(tmp_path / "src"))
    report = write_label_folder(records, tmp_path / "lab")
    assert report.crowd_dropped == 1 and report.overlap_pixels == 0
    assert json.loads((tmp_path / "lab" / "classes.json").read_text()) == {"3": "cat", "7": "dog"}
    assert json.loads((tmp_path / "lab" / "labels" / "a.json").read_text()) == {"1": "cat", "2": "cat", "3": "dog"}
    lm = read_label_map(tmp_path / "lab" / "labels" / "a.png")
    masks = expected_masks()
    for value, ann_id in [(1, 1), (2, 2), (3, 3)]:
        assert np.array_equal(lm == value, masks[ann_id])
    assert read_label_map(tmp_path / "lab" / "labels" / "c.png").max() == 0


def test_label_folder_overlaps_counted(tmp_path: Path) -> None:
    data = coco_dict()
    data["annotations"][0]["segmentation"] = [[1, 1, 7, 1, 7, 7, 1, 7]]  # now overlaps the ring (5..7 x 4..7)
    records = read_coco_records(make_coco_dir(tmp_path / "src", data))
    report = write_label_folder(records, tmp_path / "lab")
    assert report.overlap_pixels == 6 and report.overlap_images == 1
    assert "6 overlapping pixels in 1 images" in report.summary()


def test_read_label_folder_defaults_and_faults(tmp_path: Path) -> None:
    from PIL import Image

    root = tmp_path / "lab"
    (root / "images" / "sub").mkdir(parents=True)
    for name in ("one.png", "two.tif", "sub/three.jpg", "bad.png", "mismatch.png"):
        Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(root / "images" / name)
    (root / "images" / "bad.png").write_bytes(b"nope")
    lm = np.zeros((4, 5), np.int64)
    lm[0, 0], lm[2:4, 2:4] = 7, 9
    write_label_map(root / "labels" / "one.png", lm)
    write_label_map(root / "labels" / "sub" / "three.png", lm)
    write_label_map(root / "labels" / "mismatch.png", np.zeros((3, 3), np.int64))
    write_label_map(root / "labels" / "orphan.png", lm)
    records = read_label_folder(root)
    assert records.categories == [{"id": 1, "name": "object"}]
    assert [r.file_name for r in records.images] == ["one.png", "sub/three.jpg", "two.tif"]
    assert [len(r.objects) for r in records.images] == [2, 2, 0]
    assert len(records.skipped) == 3
    assert any("bad.png: cannot read image" in s for s in records.skipped)
    assert any("mismatch.png: label map is 3x3 but image mismatch.png is 4x5" in s for s in records.skipped)
    assert any("orphan.png: label map without an image" in s for s in records.skipped)
    (root / "classes.json").write_text(json.dumps(["nucleus", "cell"]))
    (root / "labels" / "one.json").write_text(json.dumps({"9": "cell"}))
    (root / "labels" / "sub" / "three.json").write_text(json.dumps({"9": "virus"}))
    records = read_label_folder(root)
    assert [o.category_id for o in records.images[0].objects] == [1, 2]  # 7 -> default class 1, 9 -> cell (2)
    assert any("three.json: label 9: class 'virus'" in s for s in records.skipped)


def test_classes_json_forms(tmp_path: Path) -> None:
    path = tmp_path / "classes.json"
    path.write_text(json.dumps({"5": "b", "2": "a"}))
    assert read_classes_json(path) == [{"id": 2, "name": "a"}, {"id": 5, "name": "b"}]
    path.write_text(json.dumps({"x": "a"}))
    with pytest.raises(ValueError, match="class ids must be integers"):
        read_classes_json(path)
    path.write_text("3")
    with pytest.raises(ValueError, match="must be an object"):
        read_classes_json(path)


def test_unreadable_images_skipped_not_fatal(tmp_path: Path) -> None:
    make_coco_dir(tmp_path / "src")
    (tmp_path / "src" / "images" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    (tmp_path / "src" / "images" / "c.png").unlink()
    report = convert_dataset("coco", "labels", tmp_path / "src", tmp_path / "lab", split="train")
    assert report.images_written == 1 and len(report.skipped) == 2
    assert any("image 20: " in s and "b.png: cannot read image" in s for s in report.skipped)
    assert "2 skipped" in report.summary()


def test_invalid_annotations_raise_or_are_skipped(tmp_path: Path) -> None:
    data = coco_dict()
    data["annotations"][4]["segmentation"] = [[1, 2, 3]]
    ann = make_coco_dir(tmp_path / "src", data)
    with pytest.raises(ValueError, match="image 20, annotation 5: polygon 0 needs"):
        convert_dataset("coco", "yolo", ann, tmp_path / "y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = convert_dataset("coco", "yolo", ann, tmp_path / "y", skip_invalid=True)
    assert len(report.skipped) == 1 and report.objects_written == 3


def test_argument_errors(tmp_path: Path) -> None:
    make_coco_dir(tmp_path / "src")
    with pytest.raises(ValueError, match="unknown data format 'voc'"):
        convert_dataset("voc", "coco", tmp_path / "src", tmp_path / "x")
    with pytest.raises(ValueError, match="destination is the source"):
        convert_dataset("coco", "coco", tmp_path / "src", tmp_path / "src", split="train")
    with pytest.raises(ValueError, match="--images applies to COCO sources only"):
        convert_dataset("labels", "coco", tmp_path / "src", tmp_path / "x", images=tmp_path)
