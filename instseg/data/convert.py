"""Data set conversion between COCO json, label-image folders and YOLO segmentation folders.

Every route reads the source into ``DatasetRecords`` and writes them out; images are copied (or hard-linked) under
their own file names. Unreadable images are skipped and listed in the report rather than stopping the run;
invalid annotations raise (naming file, image id and annotation id) unless ``skip_invalid``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pycocotools import mask as mask_utils

from instseg.data.coco import load_coco_json, segmentation_to_rle
from instseg.data.coco_validation import validate_coco
from instseg.data.output_paths import confined_path, prepare_output_dir
from instseg.data.paths import resolve_annotations
from instseg.data.records import (
    ConversionReport,
    DatasetRecords,
    ImageRecord,
    ObjectRecord,
    check_image,
    place_record_image,
)

FORMATS = ("coco", "labels", "yolo")


def read_coco_records(
    src: str | Path, split: str | None = None, images: str | Path | None = None, skip_invalid: bool = False
) -> DatasetRecords:
    """Read a COCO data set (folder + split, or json) into records; unreadable images are skipped and listed."""
    ann_file, images_dir = resolve_annotations(src, split, images)
    checked = validate_coco(load_coco_json(ann_file), ann_file, None, skip_invalid=skip_invalid)
    records = DatasetRecords(images_dir, checked.categories, [], skipped=list(checked.skipped))
    for img in checked.images:
        height, width = int(img["height"]), int(img["width"])
        try:
            check_image(confined_path(images_dir, img["file_name"], f"image {img['id']} file_name"), (height, width))
        except ValueError as err:
            records.skipped.append(f"{ann_file}: image {img['id']}: {err}")
            continue
        objects = [
            ObjectRecord(int(a["category_id"]), a["segmentation"], int(a.get("iscrowd", 0)))
            for a in checked.annotations[int(img["id"])]
        ]
        records.images.append(ImageRecord(str(img["file_name"]), height, width, objects, image_id=int(img["id"])))
    return records


def _json_segmentation(segmentation: Any) -> Any:
    """A COCO segmentation made JSON-ready (RLE ``counts`` bytes -> str)."""
    if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), bytes):
        return {"size": list(segmentation["size"]), "counts": segmentation["counts"].decode("ascii")}
    return segmentation


def records_to_coco(records: DatasetRecords) -> tuple[dict[str, Any], int]:
    """A COCO json dict of the records (``area`` = pixel count, ``bbox`` = tight mask box) + objects dropped empty."""
    ids = [r.image_id for r in records.images]
    keep_ids = None not in ids and len(set(ids)) == len(ids)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    empty = 0
    for k, record in enumerate(records.images):
        image_id = int(record.image_id) if keep_ids else k + 1  # type: ignore[arg-type]
        images.append({"id": image_id, "file_name": record.file_name, "height": record.height, "width": record.width})
        for obj in record.objects:
            rle = segmentation_to_rle(obj.segmentation, record.height, record.width)
            area = int(mask_utils.area(rle))
            if area == 0:
                empty += 1
                continue
            bbox = [round(float(v), 2) for v in mask_utils.toBbox(rle)]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(obj.category_id),
                    "segmentation": _json_segmentation(obj.segmentation),
                    "area": area,
                    "bbox": bbox,
                    "iscrowd": int(obj.iscrowd),
                }
            )
    return {"images": images, "annotations": annotations, "categories": records.categories}, empty


def write_coco_records(records: DatasetRecords, dst: str | Path, split: str, link: bool = False) -> ConversionReport:
    """Write records as ``dst/images`` + ``dst/annotations/instances_{split}.json``."""
    dst = Path(dst)
    report = ConversionReport(skipped=list(records.skipped))
    data, empty = records_to_coco(records)
    if empty:
        report.lost_objects.append(f"{empty} objects with no pixel were left out")
    for record in records.images:
        place_record_image(records, record, dst, link=link)
    ann_file = dst / "annotations" / f"instances_{split}.json"
    ann_file.parent.mkdir(parents=True, exist_ok=True)
    ann_file.write_text(json.dumps(data, separators=(",", ":")))
    report.images_written = len(data["images"])
    report.objects_written = len(data["annotations"])
    return report


def read_records(
    fmt: str, src: str | Path, split: str | None = None, images: str | Path | None = None, skip_invalid: bool = False
) -> DatasetRecords:
    """Read a data set of format ``fmt`` (coco, labels, yolo) into records."""
    if fmt == "coco":
        return read_coco_records(src, split, images, skip_invalid)
    if images is not None:
        raise ValueError(f"{src}: --images applies to COCO sources only; {fmt} folders keep images in DIR/images")
    if fmt == "labels":
        from instseg.data.label_folder import read_label_folder

        return read_label_folder(src, split)
    if fmt == "yolo":
        from instseg.data.yolo import read_yolo_folder

        return read_yolo_folder(src, split)
    raise ValueError(f"unknown data format {fmt!r}; choose one of {', '.join(FORMATS)}")


def write_records(
    records: DatasetRecords, fmt: str, dst: str | Path, split: str = "train", link: bool = False, tolerance: float = 0.0
) -> ConversionReport:
    """Write records in format ``fmt``; ``split`` names the COCO json, ``tolerance`` simplifies YOLO polygons."""
    if fmt == "coco":
        return write_coco_records(records, dst, split, link)
    if fmt == "labels":
        from instseg.data.label_folder import write_label_folder

        return write_label_folder(records, dst, link)
    if fmt == "yolo":
        from instseg.data.yolo import write_yolo_folder

        return write_yolo_folder(records, dst, link, tolerance)
    raise ValueError(f"unknown data format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _split_name(src: Path, split: str | None) -> str:
    """The split to name a written COCO json: given, else from a source ``instances_{split}.json``, else train."""
    if split is not None:
        return split
    match = re.fullmatch(r"instances_(.+)\.json", src.name)
    return match.group(1) if match else "train"


def convert_dataset(
    src_format: str,
    dst_format: str,
    src: str | Path,
    dst: str | Path,
    split: str | None = None,
    images: str | Path | None = None,
    skip_invalid: bool = False,
    link: bool = False,
    tolerance: float = 0.0,
    overwrite: bool = False,
) -> ConversionReport:
    """Convert a data set from ``src_format`` to ``dst_format`` (coco, labels, yolo) and report what happened.

    ``dst`` must be a new or empty folder (``overwrite`` empties it first) that neither is nor lies inside the
    source; every file is written below it (names read from the source are confined to it).
    """
    for fmt in (src_format, dst_format):
        if fmt not in FORMATS:
            raise ValueError(f"unknown data format {fmt!r}; choose one of {', '.join(FORMATS)}")
    src, dst = Path(src), Path(dst)
    if dst.exists() and src.exists() and dst.resolve() == (src if src.is_dir() else src.parent.parent).resolve():
        raise ValueError(f"{dst}: the destination is the source data set; choose another folder")
    records = read_records(src_format, src, split, images, skip_invalid)
    inputs = [src, records.images_dir] + ([Path(images)] if images is not None else [])
    prepare_output_dir(dst, inputs, overwrite=overwrite)
    return write_records(records, dst_format, dst, _split_name(src, split), link, tolerance)
