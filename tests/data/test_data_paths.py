"""``resolve_annotations`` / ``resolve_folder_split``: user paths to files, with errors that say what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from instseg.data.paths import available_splits, resolve_annotations, resolve_folder_split


def _coco_layout(root: Path, splits: tuple[str, ...] = ("train", "val")) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for split in splits:
        (root / "annotations" / f"instances_{split}.json").write_text("{}")
    return root


def test_folder_and_split(tmp_path: Path) -> None:
    root = _coco_layout(tmp_path / "d")
    assert available_splits(root) == ["train", "val"]
    assert resolve_annotations(root, "val") == (root / "annotations" / "instances_val.json", root / "images")
    with pytest.raises(
        ValueError, match=r"instances_test\.json: no such annotation file \(splits found: \['train', 'val'\]\)"
    ):
        resolve_annotations(root, "test")
    with pytest.raises(ValueError, match="name a split"):
        resolve_annotations(root)
    single = _coco_layout(tmp_path / "s", ("all",))
    assert resolve_annotations(single)[0].name == "instances_all.json"


def test_json_path_uses_sibling_images(tmp_path: Path) -> None:
    root = _coco_layout(tmp_path / "d")
    ann = root / "annotations" / "instances_train.json"
    assert resolve_annotations(ann) == (ann, root / "images")
    assert resolve_annotations(str(ann), images=tmp_path) == (ann, tmp_path)
    with pytest.raises(ValueError, match="not both"):
        resolve_annotations(ann, "train")
    flat = tmp_path / "flat"
    (flat / "images").mkdir(parents=True)
    (flat / "ann.json").write_text("{}")
    assert resolve_annotations(flat / "ann.json") == (flat / "ann.json", flat / "images")


def test_missing_things_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file or folder"):
        resolve_annotations(tmp_path / "nothing")
    (tmp_path / "lonely.json").write_text("{}")
    with pytest.raises(ValueError, match=r"no images folder .*--images"):
        resolve_annotations(tmp_path / "lonely.json")
    with pytest.raises(ValueError, match=r"images folder .*missing does not exist"):
        resolve_annotations(tmp_path / "lonely.json", images=tmp_path / "missing")
    root = tmp_path / "noimg"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_val.json").write_text("{}")
    with pytest.raises(ValueError, match="does not exist"):
        resolve_annotations(root, "val")
    (root / "val").mkdir()  # the official COCO layout: images in DIR/{split}
    assert resolve_annotations(root, "val")[1] == root / "val"


def test_folder_split_layouts(tmp_path: Path) -> None:
    (tmp_path / "images" / "val").mkdir(parents=True)
    assert resolve_folder_split(tmp_path) == (tmp_path / "images", tmp_path / "labels")
    assert resolve_folder_split(tmp_path, "val") == (tmp_path / "images" / "val", tmp_path / "labels" / "val")
    assert resolve_folder_split(tmp_path, "test") == (tmp_path / "images", tmp_path / "labels")
    with pytest.raises(ValueError, match="no such data folder"):
        resolve_folder_split(tmp_path / "x")
    with pytest.raises(ValueError, match="no images folder"):
        resolve_folder_split(tmp_path / "images" / "val")
