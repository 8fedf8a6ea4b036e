"""Data set statistics from a COCO json alone (no mask decoding): what ``instseg info`` shows.

"Instances" are non-crowd annotations (what training sees); crowd regions are counted apart. Object areas come
from each annotation's ``area`` field when present, else from its RLE/polygon via pycocotools.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from instseg.data.coco import load_coco_json, segmentation_to_rle
from instseg.data.coco_validation import CocoValidation, validate_coco


@dataclass
class DatasetStatistics:
    """Counts and distributions of one annotation file; ``to_dict`` is JSON-ready."""

    ann_file: str
    images: int
    instances: int
    crowd: int
    images_without_annotations: int
    image_sizes: list[dict[str, int]]  # [{"height", "width", "count"}], most frequent first
    instances_per_image: dict[str, float]  # min / median / max over all images (empty ones included)
    instance_area: dict[str, float]  # min / median / max pixels of the non-crowd instances
    classes: list[dict[str, Any]]  # [{"id", "name", "count"}] per category (non-crowd), in category-id order
    invalid: list[str] = field(default_factory=list)  # faults found by validation (those items are not counted)
    images_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spread(values: list[float]) -> dict[str, float]:
    """``{"min", "median", "max"}`` of values (zeros when there are none)."""
    if not values:
        return {"min": 0, "median": 0, "max": 0}
    arr = np.asarray(values, dtype=np.float64)
    median = float(np.median(arr))
    return {"min": float(arr.min()), "median": int(median) if median.is_integer() else median, "max": float(arr.max())}


def _area(ann: dict[str, Any], height: int, width: int) -> float:
    """An annotation's pixel area: its ``area`` field, else computed from its segmentation."""
    if isinstance(ann.get("area"), int | float):
        return float(ann["area"])
    from pycocotools import mask as mask_utils

    return float(mask_utils.area(segmentation_to_rle(ann["segmentation"], height, width)))


def statistics_of(
    checked: CocoValidation, ann_file: str | Path, images_dir: str | Path | None = None
) -> DatasetStatistics:
    """Statistics of validated COCO data (``validate_coco`` output)."""
    sizes: Counter[tuple[int, int]] = Counter()
    per_image: list[float] = []
    areas: list[float] = []
    per_class: Counter[int] = Counter()
    crowd = 0
    for img in checked.images:
        height, width = int(img["height"]), int(img["width"])
        sizes[(height, width)] += 1
        anns = checked.annotations[int(img["id"])]
        solid = [a for a in anns if not a.get("iscrowd", 0)]
        crowd += len(anns) - len(solid)
        per_image.append(len(solid))
        per_class.update(int(a["category_id"]) for a in solid)
        areas.extend(_area(a, height, width) for a in solid)
    image_sizes = [
        {"height": h, "width": w, "count": n} for (h, w), n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    classes = [
        {"id": int(c["id"]), "name": str(c["name"]), "count": per_class[int(c["id"])]} for c in checked.categories
    ]
    spread = _spread(per_image)
    return DatasetStatistics(
        ann_file=str(ann_file),
        images=len(checked.images),
        instances=int(sum(per_image)),
        crowd=crowd,
        images_without_annotations=sum(1 for img in checked.images if not checked.annotations[int(img["id"])]),
        image_sizes=image_sizes,
        instances_per_image={k: int(v) if k != "median" else v for k, v in spread.items()},
        instance_area=_spread(areas),
        classes=classes,
        invalid=list(checked.skipped),
        images_dir=str(images_dir) if images_dir is not None else None,
    )


def dataset_statistics(ann_file: str | Path, images_dir: str | Path | None = None) -> DatasetStatistics:
    """Load, validate (invalid items are listed in ``invalid``, not counted) and summarise a COCO json.

    With ``images_dir`` the existence of every image file is checked too.
    """
    ann_file = Path(ann_file)
    data = load_coco_json(ann_file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # faults are returned in ``invalid`` instead
        checked = validate_coco(data, ann_file, Path(images_dir) if images_dir else None, skip_invalid=True)
    return statistics_of(checked, ann_file, images_dir)
