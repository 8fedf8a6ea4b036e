"""Ultralytics YOLO segmentation folders: ``DIR/images/*`` + ``DIR/labels/<stem>.txt`` + class names, both ways.

Each txt line is ``class x1 y1 x2 y2 ...`` with coordinates normalised to 0..1 by the image width/height; a line
of 4 numbers (``class cx cy w h``, a detection box) is read as its rectangle. One object is one polygon, so
multi-part objects and holes are joined by zero-width bridges (``merge_polygons``) as Ultralytics does. Class
names come from ``DIR/classes.txt`` (one per line, line k = class k) or else the ``names:`` of an Ultralytics
``DIR/data.yaml``; YOLO class ``k`` becomes category id ``k + 1``. YOLO has no crowd flag: crowd regions are
dropped (and counted) when writing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from instseg.data.coco import segmentation_to_rle
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
from instseg.data.rle_runs import rle_crop
from instseg.structures.masks import mask_to_polygons, merge_polygons, polygons_to_mask

COORD_TOLERANCE = 0.01  # normalised coordinates this far outside 0..1 are clipped; further out is an error
DECIMALS = 6  # 1e-6 of a 10,000-pixel side is 0.01 px


def read_class_names(data: str | Path) -> list[str] | None:
    """Class names from ``DIR/classes.txt``, else from ``DIR/data.yaml`` ``names:`` (list or {index: name})."""
    data = Path(data)
    txt, yml = data / "classes.txt", data / "data.yaml"
    if txt.is_file():
        names = [line.strip() for line in txt.read_text().splitlines()]
        while names and not names[-1]:
            names.pop()
        if not names or any(not n for n in names):
            raise ValueError(f"{txt}: needs one non-empty class name per line")
        return names
    if yml.is_file():
        try:
            raw = yaml.safe_load(yml.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ValueError(f"{yml}: cannot read ({err})") from err
        names_raw = raw.get("names") if isinstance(raw, dict) else None
        if isinstance(names_raw, list):
            return [str(n) for n in names_raw]
        if isinstance(names_raw, dict):
            keys = sorted(int(k) for k in names_raw)
            if keys != list(range(len(keys))):
                raise ValueError(f"{yml}: names must be indexed 0..K-1, got {keys}")
            return [str(names_raw.get(k, names_raw.get(str(k)))) for k in keys]
        raise ValueError(f"{yml}: no 'names:' list or mapping")
    return None


def parse_yolo_txt(
    path: Path, height: int, width: int, num_classes: int | None = None
) -> list[tuple[int, list[float]]]:
    """``(class index, polygon in absolute pixels)`` for each line of a YOLO segmentation txt file."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read labels ({err})") from err
    out = []
    for n, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            cls_value, coords = float(tokens[0]), [float(t) for t in tokens[1:]]
        except ValueError as err:
            raise ValueError(f"{path}: line {n}: not numbers ({err})") from err
        if not cls_value.is_integer() or cls_value < 0 or (num_classes is not None and cls_value >= num_classes):
            raise ValueError(f"{path}: line {n}: class {tokens[0]} is not an index 0..{(num_classes or 1) - 1}")
        xy = np.asarray(coords, dtype=np.float64)
        if len(coords) == 4:  # detection box cx cy w h -> its rectangle
            cx, cy, bw, bh = coords
            xy = np.array(
                [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, cx - bw / 2, cy + bh / 2]
            )
        elif len(coords) < 6 or len(coords) % 2:
            raise ValueError(
                f"{path}: line {n}: a polygon needs an even number (>= 6) of coordinates, got {len(coords)}"
            )
        if not np.all(np.isfinite(xy)) or xy.min() < -COORD_TOLERANCE or xy.max() > 1 + COORD_TOLERANCE:
            raise ValueError(f"{path}: line {n}: coordinates must be normalised to 0..1")
        xy = np.clip(xy, 0.0, 1.0).reshape(-1, 2) * np.array([width, height], dtype=np.float64)
        out.append((int(cls_value), [float(v) for v in xy.reshape(-1)]))
    return out


def format_yolo_line(class_index: int, polygon: list[float], height: int, width: int) -> str:
    """One txt line for a polygon given in absolute pixels."""
    xy = np.asarray(polygon, dtype=np.float64).reshape(-1, 2) / np.array([width, height], dtype=np.float64)
    xy = np.clip(xy, 0.0, 1.0).reshape(-1)
    return " ".join([str(class_index)] + [f"{v:.{DECIMALS}f}".rstrip("0").rstrip(".") or "0" for v in xy])


def read_yolo_folder(data: str | Path, split: str | None = None) -> DatasetRecords:
    """Read a YOLO segmentation folder into records (polygons kept); unreadable items are skipped and listed."""
    data = Path(data)
    images_dir, labels_dir = resolve_folder_split(data, split)
    names = read_class_names(data)
    files = image_files(images_dir)
    unique_stems(files, images_dir)
    records = DatasetRecords(images_dir, [], [])
    max_class = -1
    for name in files:
        try:
            height, width = check_image(images_dir / name)
            txt = labels_dir / f"{relative_stem(name)}.txt"
            parsed = parse_yolo_txt(txt, height, width, len(names) if names else None) if txt.is_file() else []
        except ValueError as err:
            records.skipped.append(str(err))
            continue
        max_class = max([max_class] + [c for c, _ in parsed])
        objects = [ObjectRecord(c + 1, [poly]) for c, poly in parsed]
        records.images.append(ImageRecord(name, height, width, objects, image_id=len(records.images) + 1))
    if names is None:
        names = [f"class{k}" for k in range(max_class + 1)] or ["class0"]
    records.categories = [{"id": k + 1, "name": n} for k, n in enumerate(names)]
    return records


def _object_polygon(segmentation: Any, height: int, width: int, tolerance: float) -> list[float]:
    """One bridged polygon (absolute pixels) for a COCO segmentation; empty if the object has no pixel."""
    if isinstance(segmentation, list) and len(segmentation) == 1:
        return [float(v) for v in segmentation[0]]  # a single polygon needs no rasterising
    if isinstance(segmentation, list):
        rasters = [polygons_to_mask([p], height, width) for p in segmentation]
        if int(np.sum(rasters, axis=0, dtype=np.int32).max(initial=0)) <= 1:  # disjoint parts: bridge as they are
            return merge_polygons(segmentation)
        # overlapping parts would cancel under even-odd filling: trace their union instead
    crop, x0, y0 = rle_crop(segmentation_to_rle(segmentation, height, width))  # trace only the object's window
    shift = np.array([x0, y0], dtype=np.float64)
    parts: list[list[float]] = [
        (np.asarray(p).reshape(-1, 2) + shift).reshape(-1).tolist() for p in mask_to_polygons(crop, tolerance)
    ]
    return merge_polygons(parts)


def write_yolo_folder(
    records: DatasetRecords, dst: str | Path, link: bool = False, tolerance: float = 0.0
) -> ConversionReport:
    """Write records as ``dst/images`` + ``dst/labels/*.txt`` + ``classes.txt`` + ``data.yaml`` (``names:``)."""
    dst = Path(dst)
    unique_stems([r.file_name for r in records.images], records.images_dir)
    report = ConversionReport(skipped=list(records.skipped))
    index_of = {int(c["id"]): k for k, c in enumerate(records.categories)}
    (dst / "labels").mkdir(parents=True, exist_ok=True)
    (dst / "classes.txt").write_text("".join(f"{c['name']}\n" for c in records.categories))
    names = {k: str(c["name"]) for k, c in enumerate(records.categories)}
    (dst / "data.yaml").write_text(
        yaml.safe_dump({"train": "images", "val": "images", "names": names}, sort_keys=False, allow_unicode=True)
    )
    for record in records.images:
        lines = []
        for k, obj in enumerate(record.objects):
            if obj.iscrowd:
                report.crowd_dropped += 1
                continue
            try:
                polygon = _object_polygon(obj.segmentation, record.height, record.width, tolerance)
            except Exception as err:  # malformed segmentation in an unvalidated source
                report.skipped.append(f"{record.file_name}: object {k}: cannot convert ({err})")
                continue
            if len(polygon) < 6:
                report.lost_objects.append(f"{record.file_name}: object {k} has no pixel")
                continue
            lines.append(format_yolo_line(index_of[int(obj.category_id)], polygon, record.height, record.width))
        txt = confined_path(dst / "labels", f"{relative_stem(record.file_name)}.txt", record_name(record))
        txt.parent.mkdir(parents=True, exist_ok=True)
        txt.write_text("".join(f"{line}\n" for line in lines))
        place_record_image(records, record, dst, link=link)
        report.images_written += 1
        report.objects_written += len(lines)
    return report
