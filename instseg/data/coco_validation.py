"""Up-front checks of a COCO instance-segmentation json: cheap faults found before training starts, not mid-epoch.

Checked without decoding masks: json structure, every field's type, duplicate ids, image fields and file existence,
``file_name`` relative to the images folder (no absolute path, no '..'), annotation -> image/category references,
``iscrowd``, ``area`` >= 0, polygon lengths and extent, RLE sizes and counts (every compressed string's runs must
sum to h*w, checked for all annotations at once before pycocotools sees one: a malformed string can hang it), bbox
inside the image (1 pixel tolerance), and empty masks (pycocotools computes RLE areas without decoding). Every
command that reads COCO ground truth (train, eval, info, convert) runs these checks. Each fault is reported as
``"<json>: image <id>, annotation <id>: <fault>"``; it raises ``ValueError``, or with ``skip_invalid`` the faulty
item is dropped, warned about and listed in ``CocoValidation.skipped``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from instseg.data.image_check import image_file_fault
from instseg.data.output_paths import relative_parts
from instseg.data.rle_check import check_compressed_rles, describe_counts_fault

BBOX_TOLERANCE = 1.0  # pixels a bbox or polygon may stick out of its image (rounding in other tools)
MAX_ITEM_WARNINGS = 20  # individual warnings shown before only the summary is


@dataclass
class CocoValidation:
    """The valid part of a COCO json: images in json order, their annotations, categories sorted by id."""

    images: list[dict[str, Any]]
    annotations: dict[int, list[dict[str, Any]]]  # image id -> annotations in json order (crowd included)
    categories: list[dict[str, Any]]
    skipped: list[str] = field(default_factory=list)


def _is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (a JSON float with an integral value counts; bools do not)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    """Whether ``value`` is a finite JSON number."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class _Faults:
    """Collects faults: raises at the first one, or (skip_invalid) warns and records each."""

    def __init__(self, ann_file: Path, skip_invalid: bool) -> None:
        self.ann_file = ann_file
        self.skip_invalid = skip_invalid
        self.skipped: list[str] = []

    def report(self, where: str, fault: str) -> None:
        message = f"{self.ann_file}: {where}: {fault}"
        if not self.skip_invalid:
            raise ValueError(message)
        self.skipped.append(message)
        if len(self.skipped) <= MAX_ITEM_WARNINGS:
            warnings.warn(f"skipped {message}", stacklevel=4)


def _check_categories(data: dict[str, Any], ann_file: Path) -> list[dict[str, Any]]:
    """Categories sorted by id; faults here are never skippable (labels depend on them)."""
    categories = data.get("categories")
    if not isinstance(categories, list):
        raise ValueError(f"{ann_file}: 'categories' must be a list of {{id, name}} objects")
    seen: set[int] = set()
    for cat in categories:
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise ValueError(f"{ann_file}: category {cat!r}: needs an integer 'id' and a string 'name'")
        if int(cat["id"]) in seen:
            raise ValueError(f"{ann_file}: category {cat['id']}: duplicate category id")
        seen.add(int(cat["id"]))
    return sorted(categories, key=lambda c: int(c["id"]))


def _image_fault(img: dict[str, Any], images_dir: Path | None) -> str | None:
    """The first fault of one image entry, or None."""
    name = img.get("file_name")
    if not isinstance(name, str) or not name:
        return "'file_name' must be a non-empty string"
    fault = _file_name_fault(name)
    if fault is not None:
        return fault
    for key in ("height", "width"):
        if not _is_int(img.get(key)) or int(img[key]) <= 0:
            return f"'{key}' must be a positive integer, got {img.get(key)!r}"
    if images_dir is not None:
        return image_file_fault(images_dir / name)  # missing, empty, truncated or over the pixel limit
    return None


def _file_name_fault(name: str) -> str | None:
    """Why a ``file_name`` could reach outside its images folder (absolute, drive, '..' part, NUL), or None."""
    try:
        relative_parts(name, "file_name")
    except ValueError as err:
        return f"{err}; a file_name must be relative to the images folder"
    return None


def _polygon_fault(seg: list[Any], height: int, width: int) -> str | None:
    """The first fault of a COCO polygon list, or None."""
    if len(seg) == 0:
        return "segmentation is an empty polygon list"
    for k, poly in enumerate(seg):
        if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
            n = len(poly) if isinstance(poly, list) else type(poly).__name__
            return f"polygon {k} needs an even number (>= 6) of coordinates, got {n}"
        if not all(_is_number(v) for v in poly):
            return f"polygon {k} has a coordinate that is not a finite number"
        xy = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        if lo.min() < -BBOX_TOLERANCE or hi[0] > width + BBOX_TOLERANCE or hi[1] > height + BBOX_TOLERANCE:
            return f"polygon {k} extends outside the {width}x{height} image (x {lo[0]}..{hi[0]}, y {lo[1]}..{hi[1]})"
    return None


def _rle_fault(seg: dict[str, Any], height: int, width: int) -> str | None:
    """The first fault of a COCO RLE that shows without decoding, or None; a compressed string's runs are checked
    afterwards for all annotations at once (``instseg.data.rle_check``)."""
    size = seg.get("size")
    if type(size) is list and len(size) == 2 and type(size[0]) is type(size[1]) is int and size == [height, width]:
        pass  # the common case, checked without the general loop below
    elif not isinstance(size, list) or len(size) != 2 or not all(_is_int(v) for v in size):
        return f"RLE size must be two integers [height, width], got {size!r}"
    elif [int(v) for v in size] != [height, width]:
        return f"RLE size {size!r} differs from the image size [{height}, {width}]"
    counts = seg.get("counts")
    if isinstance(counts, list):
        if not all(_is_int(c) and c >= 0 for c in counts):
            return "uncompressed RLE counts must be non-negative integers"
        if sum(int(c) for c in counts) != height * width:
            return f"uncompressed RLE counts sum to {sum(int(c) for c in counts)}, expected {height}*{width}"
    elif not isinstance(counts, str | bytes) or len(counts) == 0:
        return "RLE 'counts' must be a non-empty string (compressed) or a list of integers (uncompressed)"
    return None


def _bbox_fault(bbox: Any, height: int, width: int) -> str | None:
    """The first fault of a COCO ``[x, y, w, h]`` bbox, or None."""
    plain = type(bbox) is list and len(bbox) == 4 and all(type(v) is float or type(v) is int for v in bbox)
    if plain and not math.isfinite(sum(bbox)):  # a NaN or infinity anywhere makes the sum non-finite
        plain = False
    if not plain and (not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox)):
        return f"bbox must be 4 finite numbers [x, y, w, h], got {bbox!r}"
    x, y, w, h = (float(v) for v in bbox)
    if w < 0 or h < 0:
        return f"bbox {bbox} has a negative width or height"
    tol = BBOX_TOLERANCE
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        return f"bbox {bbox} lies outside the {width}x{height} image"
    return None


def _polygon_area(seg: list[Any], height: int, width: int) -> int:
    """Pixel count of a (checked) polygon segmentation, from its RLE without decoding the bitmask."""
    rles = mask_utils.frPyObjects([[float(v) for v in p] for p in seg], height, width)
    return int(mask_utils.area(mask_utils.merge(rles)))


def _annotation_fault(
    ann: dict[str, Any], img: dict[str, Any], cat_ids: set[int], box_only: bool = False
) -> str | None:
    """The first fault of one annotation of image ``img`` that shows without decoding its mask, or None
    (``box_only``: a missing segmentation is allowed when a bbox is given)."""
    height, width = int(img["height"]), int(img["width"])
    if not _is_int(ann.get("category_id")) or int(ann["category_id"]) not in cat_ids:
        return f"category_id {ann.get('category_id')!r} is not among the categories {sorted(cat_ids)}"
    if ann.get("iscrowd", 0) not in (0, 1) or isinstance(ann.get("iscrowd", 0), list):
        return f"iscrowd must be 0 or 1, got {ann.get('iscrowd')!r}"
    if "area" in ann and (not _is_number(ann["area"]) or ann["area"] < 0):
        return f"area must be a finite number >= 0, got {ann['area']!r}"
    seg = ann.get("segmentation")
    if box_only and not seg and "bbox" in ann:
        return _bbox_fault(ann["bbox"], height, width)
    if isinstance(seg, list):
        fault = _polygon_fault(seg, height, width)
    elif isinstance(seg, dict):
        fault = _rle_fault(seg, height, width)
    else:
        fault = f"segmentation must be a polygon list or an RLE dict, got {type(seg).__name__}"
    if fault is None and "bbox" in ann:
        fault = _bbox_fault(ann["bbox"], height, width)
    return fault


def _mask_faults(accepted: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str | None]:
    """Per (annotation, image): the fault found by decoding its runs (malformed RLE, empty mask), or None.

    Compressed strings are checked all at once before pycocotools sees any (a malformed one can hang it), which
    also gives their pixel counts; polygons are rasterised to RLE one annotation at a time.
    """
    faults: list[str | None] = [None] * len(accepted)
    compressed = [
        i
        for i, (ann, _) in enumerate(accepted)
        if isinstance(ann.get("segmentation"), dict) and isinstance(ann["segmentation"].get("counts"), str | bytes)
    ]
    sizes = [(int(accepted[i][1]["height"]), int(accepted[i][1]["width"])) for i in compressed]
    bad, areas = check_compressed_rles(
        [accepted[i][0]["segmentation"]["counts"] for i in compressed], [h * w for h, w in sizes]
    )
    for i, (h, w), is_bad, area in zip(compressed, sizes, bad, areas.tolist(), strict=True):
        if is_bad:
            faults[i] = describe_counts_fault(accepted[i][0]["segmentation"]["counts"], h, w) or "malformed RLE"
        elif area == 0:
            faults[i] = "segmentation is an empty mask"
    for i, (ann, _) in enumerate(accepted):  # uncompressed RLEs (crowd regions, mostly): counts already checked
        seg = ann.get("segmentation")
        if isinstance(seg, dict) and isinstance(seg.get("counts"), list) and not any(seg["counts"][1::2]):
            faults[i] = "segmentation is an empty mask"
    for i, (ann, img) in enumerate(accepted):
        if (
            isinstance(ann.get("segmentation"), list)
            and _polygon_area(ann["segmentation"], int(img["height"]), int(img["width"])) == 0
        ):
            faults[i] = "segmentation is an empty mask"
    return faults


def validate_coco(
    data: dict[str, Any],
    ann_file: Path,
    images_dir: Path | None = None,
    skip_invalid: bool = False,
    evaluation: bool = False,
) -> CocoValidation:
    """Check a loaded COCO json (see the module docstring); ``images_dir=None`` skips the file-existence check.

    ``evaluation=True`` checks ground truth that is only scored against: images need no ``file_name`` (one given
    is still checked) and an annotation may have a ``bbox`` and no ``segmentation``.
    """
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{ann_file}: not a COCO json (needs an 'images' list)")
    raw_annotations = data.get("annotations", [])
    if not isinstance(raw_annotations, list):
        raise ValueError(f"{ann_file}: 'annotations' must be a list")
    categories = _check_categories(data, ann_file)
    cat_ids = {int(c["id"]) for c in categories}
    faults = _Faults(ann_file, skip_invalid)

    images: list[dict[str, Any]] = []
    by_id: dict[int, dict[str, Any]] = {}
    for img in data["images"]:
        if not isinstance(img, dict):
            faults.report(f"image entry {img!r}", "must be an object")
            continue
        if not _is_int(img.get("id")):
            faults.report(f"image {img.get('id')!r} ({img.get('file_name')})", "needs an integer 'id'")
            continue
        image_id = int(img["id"])
        where = f"image {image_id} ({img.get('file_name')})"
        if image_id in by_id:
            faults.report(where, "duplicate image id")
            continue
        fault = None if evaluation and "file_name" not in img else _image_fault(img, images_dir)
        if fault is not None:
            faults.report(where, fault)
            continue
        by_id[image_id] = img
        images.append(img)

    annotations: dict[int, list[dict[str, Any]]] = {int(img["id"]): [] for img in images}
    seen_ann: set[int] = set()
    known_images = {int(img["id"]) for img in data["images"] if isinstance(img, dict) and _is_int(img.get("id"))}
    accepted: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for ann in raw_annotations:
        if not isinstance(ann, dict):
            faults.report(f"annotation entry {ann!r}", "must be an object")
            continue
        if not _is_int(ann.get("id")):
            faults.report(f"image {ann.get('image_id')}, annotation {ann.get('id')!r}", "needs an integer 'id'")
            continue
        where = f"image {ann.get('image_id')!r}, annotation {int(ann['id'])}"
        if int(ann["id"]) in seen_ann:
            faults.report(where, "duplicate annotation id")
            continue
        seen_ann.add(int(ann["id"]))
        if not _is_int(ann.get("image_id")):
            faults.report(where, f"image_id must be an integer, got {ann.get('image_id')!r}")
            continue
        ref = int(ann["image_id"])
        where = f"image {ref}, annotation {int(ann['id'])}"
        if ref not in by_id:
            if ref in known_images:  # its image was skipped (already reported): drop silently
                continue
            faults.report(where, f"image_id {ref!r} is not among the images")
            continue
        fault = _annotation_fault(ann, by_id[ref], cat_ids, box_only=evaluation)
        if fault is not None:
            faults.report(where, fault)
            continue
        accepted.append((ann, by_id[ref]))
    # Mask-level checks run once for all annotations; faults are reported in json order as above.
    for (ann, img), fault in zip(accepted, _mask_faults(accepted), strict=True):
        if fault is not None:
            faults.report(f"image {int(img['id'])}, annotation {int(ann['id'])}", fault)
            continue
        annotations[int(img["id"])].append(ann)

    if faults.skipped:
        shown = f" (first {MAX_ITEM_WARNINGS} warned individually)" if len(faults.skipped) > MAX_ITEM_WARNINGS else ""
        warnings.warn(f"{ann_file}: skipped {len(faults.skipped)} invalid annotations/images{shown}", stacklevel=3)
    return CocoValidation(images, annotations, categories, faults.skipped)
