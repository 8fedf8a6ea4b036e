"""Data set statistics from a COCO json (no mask decoding)."""

from __future__ import annotations

from pathlib import Path

from tiny_coco import coco_dict, make_coco_dir

from instseg.data.statistics import dataset_statistics


def test_counts_sizes_and_classes(tmp_path: Path) -> None:
    ann = make_coco_dir(tmp_path)
    stats = dataset_statistics(ann, tmp_path / "images")
    assert stats.images == 3 and stats.instances == 4 and stats.crowd == 1
    assert stats.images_without_annotations == 1
    assert stats.image_sizes == [
        {"height": 6, "width": 6, "count": 1},
        {"height": 8, "width": 8, "count": 1},
        {"height": 10, "width": 12, "count": 1},
    ]
    assert stats.instances_per_image == {"min": 0, "median": 1, "max": 3}
    assert stats.instance_area == {"min": 8.0, "median": 12.5, "max": 24.0}
    assert stats.classes == [{"id": 3, "name": "cat", "count": 2}, {"id": 7, "name": "dog", "count": 2}]
    assert stats.invalid == []
    d = stats.to_dict()
    assert d["images"] == 3 and d["ann_file"] == str(ann)


def test_invalid_items_listed_not_counted(tmp_path: Path) -> None:
    data = coco_dict()
    data["annotations"][0]["category_id"] = 99
    del data["annotations"][1]["area"]  # area then comes from the RLE
    ann = make_coco_dir(tmp_path, data)
    stats = dataset_statistics(ann)
    assert stats.instances == 3 and len(stats.invalid) == 1 and "annotation 1: category_id 99" in stats.invalid[0]
    assert stats.instance_area["max"] == 24.0
