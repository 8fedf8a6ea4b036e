"""Where a data set's files are: the one place that turns a user's ``--data``/``--split``/``--images`` into paths.

COCO layout: ``DIR/annotations/instances_{split}.json`` with images in ``DIR/images`` (or ``DIR/{split}``, as the
official COCO download ``val2017/`` does). Folder layouts (label images, YOLO): ``DIR/images`` + ``DIR/labels``,
or ``DIR/images/{split}`` + ``DIR/labels/{split}`` when a split is named and those folders exist (Ultralytics).
"""

from __future__ import annotations

from pathlib import Path


def available_splits(data: str | Path) -> list[str]:
    """Split names that have a ``DIR/annotations/instances_{split}.json`` file, sorted."""
    ann_dir = Path(data) / "annotations"
    if not ann_dir.is_dir():
        return []
    return sorted(p.name[len("instances_") : -len(".json")] for p in ann_dir.glob("instances_*.json"))


def resolve_annotations(
    data: str | Path, split: str | None = None, images: str | Path | None = None
) -> tuple[Path, Path]:
    """``(annotation json, images dir)`` for a COCO data set given as a folder + split, or as a json file.

    A folder with no split is accepted when it holds exactly one ``annotations/instances_*.json``. A json file's
    images are in ``json.parent.parent / "images"`` (the COCO layout), else ``json.parent / "images"``, unless
    ``images`` names the folder. Missing files or folders raise ``ValueError`` saying what was looked for.
    """
    data = Path(data)
    if not data.exists():
        raise ValueError(f"{data}: no such file or folder")
    if data.is_file():
        if split is not None:
            raise ValueError(f"{data}: give either an annotation json file or a data folder with a split, not both")
        ann_file = data
        if images is None:
            candidates = [data.parent.parent / "images", data.parent / "images"]
            found = [c for c in candidates if c.is_dir()]
            if not found:
                raise ValueError(
                    f"{data}: no images folder at {candidates[0]} or {candidates[1]}; name it with --images"
                )
            images_dir = found[0]
        else:
            images_dir = Path(images)
    else:
        if split is None:
            splits = available_splits(data)
            if len(splits) != 1:
                raise ValueError(
                    f"{data}: name a split (--split); found {splits or 'no annotations/instances_*.json files'}"
                )
            split = splits[0]
        ann_file = data / "annotations" / f"instances_{split}.json"
        if not ann_file.is_file():
            raise ValueError(f"{ann_file}: no such annotation file (splits found: {available_splits(data)})")
        if images is None:
            images_dir = data / "images"
            if not images_dir.is_dir() and (data / split).is_dir():
                images_dir = data / split
        else:
            images_dir = Path(images)
    if not images_dir.is_dir():
        raise ValueError(f"{ann_file}: images folder {images_dir} does not exist")
    return ann_file, images_dir


def resolve_folder_split(data: str | Path, split: str | None = None) -> tuple[Path, Path]:
    """``(images dir, labels dir)`` of a folder data set (label images or YOLO txt).

    ``DIR/images/{split}`` and ``DIR/labels/{split}`` are used when a split is named and the images folder has it;
    otherwise ``DIR/images`` and ``DIR/labels``. The labels folder need not exist (an unannotated set).
    """
    data = Path(data)
    if not data.is_dir():
        raise ValueError(f"{data}: no such data folder")
    images_dir, labels_dir = data / "images", data / "labels"
    if split is not None and (images_dir / split).is_dir():
        images_dir, labels_dir = images_dir / split, labels_dir / split
    if not images_dir.is_dir():
        raise ValueError(f"{data}: no images folder {images_dir}")
    return images_dir, labels_dir
