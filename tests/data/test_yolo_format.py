"""YOLO segmentation txt: parsing, class names (classes.txt / data.yaml), and folder writing with bridges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from tiny_coco import expected_masks, make_coco_dir

from instseg.data.convert import read_coco_records
from instseg.data.yolo import format_yolo_line, parse_yolo_txt, read_class_names, read_yolo_folder, write_yolo_folder
from instseg.structures.masks import polygons_to_mask


def test_class_names_from_txt_or_yaml(tmp_path: Path) -> None:
    assert read_class_names(tmp_path) is None
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"names": {0: "a", 1: "b"}}))
    assert read_class_names(tmp_path) == ["a", "b"]
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"names": ["x", "y", "z"]}))
    assert read_class_names(tmp_path) == ["x", "y", "z"]
    (tmp_path / "classes.txt").write_text("cell\nnucleus\n\n")
    assert read_class_names(tmp_path) == ["cell", "nucleus"]  # classes.txt wins
    (tmp_path / "classes.txt").write_text("cell\n\nnucleus\n")
    with pytest.raises(ValueError, match=r"classes\.txt: needs one non-empty class name per line"):
        read_class_names(tmp_path)
    (tmp_path / "classes.txt").unlink()
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"names": {0: "a", 2: "b"}}))
    with pytest.raises(ValueError, match=r"data\.yaml: names must be indexed 0..K-1"):
        read_class_names(tmp_path)
    (tmp_path / "data.yaml").write_text("train: images\n")
    with pytest.raises(ValueError, match="no 'names:'"):
        read_class_names(tmp_path)


def test_parse_lines_polygons_and_boxes(tmp_path: Path) -> None:
    txt = tmp_path / "a.txt"
    txt.write_text("0 0.1 0.2 0.5 0.2 0.5 0.6\n\n1 0.5 0.5 0.2 0.4\n1 -0.005 0 1.004 0 1 1\n")
    out = parse_yolo_txt(txt, height=10, width=20, num_classes=2)
    assert out[0] == (0, pytest.approx([2, 2, 10, 2, 10, 6]))
    assert out[1] == (1, pytest.approx([8, 3, 12, 3, 12, 7, 8, 7]))  # cx cy w h -> rectangle
    assert out[2][1] == pytest.approx([0, 0, 20, 0, 20, 10])  # slightly outside: clipped


@pytest.mark.parametrize(
    ("line", "fault"),
    [
        ("0 0.1 0.2 0.3 0.4 0.5", "even number (>= 6)"),
        ("0 0.1 0.2 0.3", "even number (>= 6)"),
        ("2 0.1 0.2 0.3 0.4 0.5 0.6", "class 2 is not an index 0..1"),
        ("0.5 0.1 0.2 0.3 0.4 0.5 0.6", "class 0.5"),
        ("0 0.1 0.2 0.3 1.4 0.5 0.6", "normalised to 0..1"),
        ("0 0.1 zero 0.3 0.4 0.5 0.6", "not numbers"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, line: str, fault: str) -> None:
    txt = tmp_path / "img.txt"
    txt.write_text(f"0 0 0 1 0 1 1\n{line}\n")
    with pytest.raises(ValueError) as err:
        parse_yolo_txt(txt, 10, 10, num_classes=2)
    assert str(err.value).startswith(f"{txt}: line 2: ") and fault in str(err.value)


def test_format_line_normalises() -> None:
    assert format_yolo_line(3, [0, 0, 10, 0, 10, 5], height=10, width=20) == "3 0 0 0.5 0 0.5 0.5"


def test_write_and_read_folder(tmp_path: Path) -> None:
    records = read_coco_records(make_coco_dir(tmp_path / "coco", split="val"))
    report = write_yolo_folder(records, tmp_path / "yolo")
    assert report.images_written == 3 and report.objects_written == 4 and report.crowd_dropped == 1
    assert (tmp_path / "yolo" / "classes.txt").read_text() == "cat\ndog\n"
    assert yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())["names"] == {0: "cat", 1: "dog"}
    lines = (tmp_path / "yolo" / "labels" / "a.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["0", "0", "1"]  # two-part object: one line
    assert (tmp_path / "yolo" / "labels" / "c.txt").read_text() == ""
    assert (tmp_path / "yolo" / "images" / "b.png").read_bytes() == (
        tmp_path / "coco" / "images" / "b.png"
    ).read_bytes()
    back = read_yolo_folder(tmp_path / "yolo")
    assert back.categories == [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}] and back.skipped == []
    a = back.images[0]
    assert a.file_name == "a.png" and [o.category_id for o in a.objects] == [1, 1, 2]
    masks = expected_masks()
    for obj, ann_id in zip(a.objects, [1, 2, 3], strict=True):
        assert np.array_equal(polygons_to_mask(obj.segmentation, 10, 12), masks[ann_id])  # ring keeps its hole


def test_read_folder_skips_bad_items(tmp_path: Path) -> None:
    records = read_coco_records(make_coco_dir(tmp_path / "coco"))
    write_yolo_folder(records, tmp_path / "yolo")
    (tmp_path / "yolo" / "labels" / "b.txt").write_text("0 0.5 0.5\n")
    (tmp_path / "yolo" / "images" / "c.png").write_bytes(b"broken")
    (tmp_path / "yolo" / "labels" / "a.txt").unlink()  # no label file: an image without objects
    back = read_yolo_folder(tmp_path / "yolo")
    assert [r.file_name for r in back.images] == ["a.png"] and back.images[0].objects == []
    assert len(back.skipped) == 2
    assert any("b.txt: line 1" in s for s in back.skipped) and any(
        "c.png: cannot read image" in s for s in back.skipped
    )


def test_read_folder_without_class_names(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "images" / "x.jpg")
    (tmp_path / "labels" / "x.txt").write_text("2 0 0 0.5 0 0.5 0.5\n")
    back = read_yolo_folder(tmp_path)
    assert [c["name"] for c in back.categories] == ["class0", "class1", "class2"]
    assert back.images[0].objects[0].category_id == 3
