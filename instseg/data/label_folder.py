"""Label-image folders: ``DIR/images/<name>.<ext>`` + ``DIR/labels/<stem>.png|.tif`` (+ classes), read and written.

Classes: ``DIR/classes.json`` maps class id -> class name (``{"1": "nucleus"}``; a JSON list of names means ids
1..K); without it there is one class ``{1: "object"}``. Objects of a multi-class set name their class in an
optional per-image ``DIR/labels/<stem>.json`` mapping label value -> class name (or class id); objects not listed
there belong to the class with the smallest id. An image without a label file has no objects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from instseg.data.coco import segmentation_to_rle
from instseg.data.label_images import (
    label_map_suffix,
    label_map_to_rles,
    read_label_map,
    rles_to_label_map,
    write_label_map,
)
from instseg.data.output_paths import confined_path
from instseg.data.paths import resolve_folder_split
from instseg.data.records import (
    ConversionReport,
    DatasetRecords,
    ImageRecord,
    ObjectRecord,
    check_image,
    image_files,
    place_record_image,
    record_name,
    relative_stem,
    unique_stems,
)

LABEL_SUFFIXES = (".png", ".tif", ".tiff")
DEFAULT_CLASSES = [{"id": 1, "name": "object"}]


def read_classes_json(path: Path) -> list[dict[str, Any]]:
    """Categories ``[{"id", "name"}]`` sorted by id from a ``classes.json`` (id -> name object, or list of names)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read classes ({err})") from err
    if isinstance(raw, list):
        pairs = [(i + 1, name) for i, name in enumerate(raw)]
    elif isinstance(raw, dict):
        try:
            pairs = [(int(k), v) for k, v in raw.items()]
        except ValueError as err:
            raise ValueError(f"{path}: class ids must be integers ({err})") from err
    else:
        raise ValueError(f"{path}: classes must be an object {{id: name}} or a list of names")
    if not pairs or any(not isinstance(name, str) or cid <= 0 for cid, name in pairs):
        raise ValueError(f"{path}: classes need positive integer ids and string names")
    return [{"id": cid, "name": name} for cid, name in sorted(pairs)]


def _object_classes(sidecar: Path, ids: np.ndarray, categories: list[dict[str, Any]]) -> list[int]:
    """Class id of each label value in ``ids``, from the image's optional sidecar json."""
    default = int(categories[0]["id"])
    if not sidecar.is_file():
        return [default] * len(ids)
    try:
        raw = json.loads(sidecar.read_text())
        mapping = {int(k): v for k, v in raw.items()}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, ValueError) as err:
        raise ValueError(f"{sidecar}: cannot read object classes ({err})") from err
    by_name = {str(c["name"]): int(c["id"]) for c in categories}
    known_ids = {int(c["id"]) for c in categories}
    out = []
    for value in ids.tolist():
        cls = mapping.get(int(value), default)
        if isinstance(cls, str) and cls in by_name:
            out.append(by_name[cls])
        elif isinstance(cls, int) and not isinstance(cls, bool) and cls in known_ids:
            out.append(cls)
        else:
            raise ValueError(f"{sidecar}: label {value}: class {cls!r} is not in the classes {sorted(by_name)}")
    return out


def _label_file(labels_dir: Path, stem: str) -> Path | None:
    """The label map of an image stem, if any."""
    for suffix in LABEL_SUFFIXES:
        candidate = labels_dir / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_label_folder(data: str | Path, split: str | None = None) -> DatasetRecords:
    """Read a label-image folder into records; unreadable images or label maps are skipped and listed."""
    data = Path(data)
    images_dir, labels_dir = resolve_folder_split(data, split)
    classes_file = data / "classes.json"
    categories = read_classes_json(classes_file) if classes_file.is_file() else list(DEFAULT_CLASSES)
    names = image_files(images_dir)
    unique_stems(names, images_dir)
    records = DatasetRecords(images_dir, categories, [])
    for name in names:
        stem = relative_stem(name)
        try:
            height, width = check_image(images_dir / name)
            record = ImageRecord(name, height, width, image_id=len(records.images) + 1)
            label_path = _label_file(labels_dir, stem)
            if label_path is not None:
                label_map = read_label_map(label_path)
                if label_map.shape != (height, width):
                    raise ValueError(
                        f"{label_path}: label map is {label_map.shape[0]}x{label_map.shape[1]} but image {name} is "
                        f"{height}x{width}"
                    )
                ids, rles = label_map_to_rles(label_map)
                classes = _object_classes(labels_dir / f"{stem}.json", ids, categories)
                record.objects = [ObjectRecord(c, r) for c, r in zip(classes, rles, strict=True)]
        except ValueError as err:
            records.skipped.append(str(err))
            continue
        records.images.append(record)
    if labels_dir.is_dir():
        stems = {relative_stem(n) for n in names}
        for path in sorted(labels_dir.rglob("*")):
            if (
                path.suffix.lower() in LABEL_SUFFIXES
                and relative_stem(path.relative_to(labels_dir).as_posix()) not in stems
            ):
                records.skipped.append(f"{path}: label map without an image in {images_dir}")
    return records


def write_label_folder(records: DatasetRecords, dst: str | Path, link: bool = False) -> ConversionReport:
    """Write records as ``dst/images`` + ``dst/labels`` (+ ``classes.json``, per-image class sidecars if K > 1)."""
    dst = Path(dst)
    unique_stems([r.file_name for r in records.images], records.images_dir)
    report = ConversionReport(skipped=list(records.skipped))
    names = [str(c["name"]) for c in records.categories]
    by_names = len(set(names)) == len(names)  # sidecars name classes unless two classes share a name
    name_of = {int(c["id"]): (str(c["name"]) if by_names else int(c["id"])) for c in records.categories}
    multi_class = len(records.categories) > 1
    (dst / "labels").mkdir(parents=True, exist_ok=True)
    classes = {str(c["id"]): str(c["name"]) for c in records.categories}
    (dst / "classes.json").write_text(json.dumps(classes, indent=1) + "\n")
    for record in records.images:
        objects = [o for o in record.objects if not o.iscrowd]
        report.crowd_dropped += len(record.objects) - len(objects)
        try:
            rles = [segmentation_to_rle(o.segmentation, record.height, record.width) for o in objects]
            painted = rles_to_label_map(rles, record.height, record.width)
        except Exception as err:  # a malformed segmentation in an unvalidated source
            report.skipped.append(f"{record.file_name}: cannot decode its segmentations ({err})")
            continue
        if painted.overlap_pixels:
            report.overlap_pixels += painted.overlap_pixels
            report.overlap_images += 1
        report.lost_objects += [f"{record.file_name}: object {i + 1} is covered by smaller ones" for i in painted.lost]
        stem = relative_stem(record.file_name)
        what = record_name(record)
        label_file = confined_path(dst / "labels", f"{stem}{label_map_suffix(len(objects))}", what)
        write_label_map(label_file, painted.label_map)
        if multi_class:
            sidecar = {str(i + 1): name_of[int(o.category_id)] for i, o in enumerate(objects)}
            confined_path(dst / "labels", f"{stem}.json", what).write_text(json.dumps(sidecar) + "\n")
        place_record_image(records, record, dst, link=link)
        report.images_written += 1
        report.objects_written += len(objects) - len(painted.lost)
    return report
