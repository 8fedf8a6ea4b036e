"""COCO ground truth and results files: loading and validation, so that bad input fails with a named item.

Ground truth is held as a ``faster_coco_eval`` ``COCO`` object (the same index the AP computation uses).
Results are COCO result dicts ``{"image_id", "category_id", "score", "segmentation" and/or "bbox"}``;
after :func:`validate_results` every ``segmentation`` is a compressed RLE with ``str`` counts of its image's size
(its pixel count in ``mask_area``) and every ``bbox`` four finite numbers, so later steps never re-check them (a
missing ``bbox`` is derived from the mask, in one batch, only when box AP is asked for: see
``instseg.eval.coco_metrics``).
"""

from __future__ import annotations

import copy
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from faster_coco_eval import COCO
from pycocotools import mask as mask_utils

from instseg.data.coco_validation import validate_coco
from instseg.data.rle_check import check_compressed_rles, compressed_rle_faults, describe_counts_fault
from instseg.eval.gc_pause import paused_gc

Rle = dict[str, Any]


def _silent(*args: Any, **kwargs: Any) -> None:
    """Swallow faster-coco-eval's progress messages."""


def load_ground_truth(gt: str | Path | Mapping[str, Any]) -> COCO:
    """Load a COCO instances json (path or already parsed dict) into a ``faster_coco_eval.COCO`` index.

    The json gets the same checks as every other command that reads COCO (``instseg.data.coco_validation``:
    duplicate ids, unknown categories, negative areas, malformed RLEs, ...), relaxed only where evaluation needs
    less (no image files, box-only annotations allowed). A dict is deep-copied, because the evaluation adds keys
    (``rle``, ``ignore``) to its annotations.
    """
    with paused_gc():
        return _load_ground_truth(gt)


def _load_ground_truth(gt: str | Path | Mapping[str, Any]) -> COCO:
    name = "<ground-truth dict>"
    if isinstance(gt, str | Path):
        name = str(gt)
        path = Path(gt)
        if not path.is_file():
            raise ValueError(f"{name}: ground-truth file not found")
        try:
            data = json.loads(path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{name}: not a valid JSON file ({err})") from err
    elif isinstance(gt, Mapping):
        data = copy.deepcopy(dict(gt))
    else:
        raise TypeError(f"ground truth must be a path or a COCO dict, got {type(gt).__name__}")
    if not isinstance(data, Mapping):
        raise ValueError(f"{name}: a COCO ground truth is a JSON object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{name}: COCO ground truth needs a list '{key}'")
    sizes: dict[int, tuple[int, int]] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, Mapping) or not all(_integer(img.get(k)) for k in ("id", "height", "width")):
            raise ValueError(f"{name}: image #{i} needs integer 'id', 'height' and 'width', got {img!r}")
        sizes[int(img["id"])] = (int(img["height"]), int(img["width"]))
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, Mapping):
            raise ValueError(f"{name}: annotation #{i} is a {type(ann).__name__}, not an object")
        missing = [k for k in ("id", "image_id", "category_id", "area") if k not in ann]
        if "bbox" not in ann and not ann.get("segmentation"):
            missing.append("bbox or segmentation")
        if missing:
            raise ValueError(f"{name}: annotation #{i} (id={ann.get('id')!r}) lacks {missing}")
        if not _integer(ann["image_id"]) or ann["image_id"] not in sizes:
            raise ValueError(
                f"{name}: annotation id={ann['id']!r} refers to image_id={ann['image_id']!r}, not in 'images'"
            )
    validate_coco(dict(data), Path(name), None, evaluation=True)  # raises at the first fault, naming it
    for ann in data["annotations"]:
        if "bbox" not in ann:  # box AP needs gt boxes: take the mask's (data was copied above, the caller's is intact)
            h, w = sizes[ann["image_id"]]
            ann["bbox"] = [float(v) for v in mask_utils.toBbox(to_compressed_rle(ann["segmentation"], h, w))]
    # use_deepcopy stays False: loadRes would otherwise deep-copy every result list (seconds for 50k masks)
    return COCO(dict(data), use_deepcopy=False, print_function=_silent)


def load_results(path: str | Path) -> list[dict[str, Any]]:
    """Read a COCO results file (a JSON list of result dicts); structure is checked by :func:`validate_results`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: results file not found")
    try:
        with paused_gc():
            data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a valid JSON file ({err})") from err
    if not isinstance(data, list):
        raise ValueError(f"{path}: a COCO results file is a JSON list of dicts, got {type(data).__name__}")
    return data


def to_compressed_rle(segmentation: Any, height: int, width: int, check_counts: bool = True) -> Rle:
    """Any COCO ``segmentation`` (polygons, uncompressed or compressed RLE) as a compressed RLE with ``str`` counts.

    Every input is checked before pycocotools sees it (a malformed RLE string can hang its decoder): polygon
    coordinates are finite numbers, ``size`` is the image's, uncompressed counts are non-negative integers summing
    to ``height * width``, and a compressed string decodes to runs summing to it (``check_counts=False`` leaves
    that last check to the caller, who checks many strings at once with ``instseg.data.rle_check``).
    """
    if type(segmentation) is dict:  # fast path of the common case: a compressed RLE from a results file
        size, counts = segmentation.get("size"), segmentation.get("counts")
        if (
            type(size) is list
            and len(size) == 2
            and type(size[0]) is int
            and type(size[1]) is int
            and size[0] == height
            and size[1] == width
            and type(counts) is str
            and counts
        ):
            if check_counts and compressed_rle_faults([counts], [height * width])[0]:
                raise ValueError(describe_counts_fault(counts, height, width) or "malformed compressed RLE")
            return {"size": [height, width], "counts": counts}
    if isinstance(segmentation, list):
        if not segmentation or not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in segmentation):
            raise ValueError("a polygon needs at least 3 (x, y) points, given as a list of lists of numbers")
        if not all(_number(v) for p in segmentation for v in p):
            raise ValueError("a polygon coordinate is not a finite number")
        parts = [list(map(float, p)) for p in segmentation]
        rle = mask_utils.merge(mask_utils.frPyObjects(parts, height, width))
    elif isinstance(segmentation, dict | Mapping):
        if "size" not in segmentation or "counts" not in segmentation:
            raise ValueError(f"an RLE needs 'size' and 'counts', got keys {sorted(map(str, segmentation))}")
        size = segmentation["size"]
        if not isinstance(size, list | tuple) or len(size) != 2 or not all(_integer(v) for v in size):
            raise ValueError(f"RLE size must be two integers [height, width], got {size!r}")
        if size[0] != height or size[1] != width:
            raise ValueError(f"RLE size {list(size)} differs from the image size [{height}, {width}]")
        counts = segmentation["counts"]
        if isinstance(counts, str | bytes):
            if check_counts and compressed_rle_faults([counts], [height * width])[0]:
                raise ValueError(describe_counts_fault(counts, height, width) or "malformed compressed RLE")
            if isinstance(counts, str):  # the common case: compressed, JSON-ready
                return {"size": [height, width], "counts": counts}
            return {"size": [height, width], "counts": counts.decode("ascii")}
        if isinstance(counts, list):
            if not all(_integer(c) and c >= 0 for c in counts):
                raise ValueError("uncompressed RLE counts must be non-negative integers")
            if sum(counts) != height * width:
                raise ValueError(f"uncompressed RLE counts sum to {sum(counts)}, expected {height * width}")
            rle = mask_utils.frPyObjects({"size": [height, width], "counts": [int(c) for c in counts]}, height, width)
        else:
            raise ValueError(f"RLE counts must be a string or a list, got {type(counts).__name__}")
    else:
        raise ValueError(f"segmentation must be a polygon list or an RLE dict, got {type(segmentation).__name__}")
    counts = rle["counts"]
    return {"size": [height, width], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def _integer(value: Any) -> bool:
    """True for an int (numpy ints included, bools excluded); the plain-int test first (ABC checks are slow)."""
    return type(value) is int or (isinstance(value, numbers.Integral) and not isinstance(value, bool))


def _number(value: Any) -> bool:
    """True for a finite int/float (numpy scalars included, bools excluded)."""
    plain = type(value) is float or type(value) is int  # fast path: ABC checks are slow on 50k results
    if not plain and (not isinstance(value, numbers.Real) or isinstance(value, bool)):
        return False
    return math.isfinite(value)


def _check_one(entry: Any, gt: COCO) -> dict[str, Any]:
    """Validate one result dict against ``gt`` and return a normalised copy (raises ValueError with the fault)."""
    if type(entry) is not dict and not isinstance(entry, Mapping):
        raise ValueError(f"is a {type(entry).__name__}, not a dict")
    if not ("image_id" in entry and "category_id" in entry and "score" in entry) or (
        "segmentation" not in entry and "bbox" not in entry
    ):
        missing = [k for k in ("image_id", "category_id", "score") if k not in entry]
        if "segmentation" not in entry and "bbox" not in entry:
            missing.append("segmentation or bbox")
        raise ValueError(f"lacks {missing}")
    image_id, category_id, score = entry["image_id"], entry["category_id"], entry["score"]
    if not _integer(image_id) or int(image_id) not in gt.imgs:
        raise ValueError(f"image_id {image_id!r} is not an image of the ground truth")
    if not _integer(category_id) or int(category_id) not in gt.cats:
        raise ValueError(f"category_id {category_id!r} is not a category of the ground truth")
    if not _number(score):
        raise ValueError(f"score {score!r} is not a finite number")
    image_id, category_id = int(image_id), int(category_id)
    out: dict[str, Any] = {"image_id": image_id, "category_id": category_id, "score": float(score)}
    if "segmentation" in entry:
        img = gt.imgs[image_id]
        out["segmentation"] = to_compressed_rle(entry["segmentation"], img["height"], img["width"], check_counts=False)
    if "bbox" in entry:
        box = entry["bbox"]
        if not isinstance(box, Sequence) or len(box) != 4 or not all(_number(v) for v in box):
            raise ValueError(f"bbox {box!r} is not 4 finite numbers [x, y, w, h]")
        if box[2] < 0 or box[3] < 0:
            raise ValueError(f"bbox {list(box)} has a negative width or height")
        out["bbox"] = [float(v) for v in box]
    return out


def validate_results(results: Sequence[Any], gt: COCO, source: str = "results") -> list[dict[str, Any]]:
    """Check COCO result dicts against the ground truth and return normalised copies.

    Every entry needs ``image_id`` and ``category_id`` present in ``gt``, a finite ``score``, and a
    ``segmentation`` (polygons or RLE of the image's size, whose runs cover the image exactly) and/or a ``bbox``;
    either all entries have a segmentation or none does. Faults raise ValueError naming ``source``, the entry
    index and its image id. Compressed strings are checked all at once (``instseg.data.rle_check``).
    """
    if not isinstance(results, Sequence) or isinstance(results, str | bytes):
        raise ValueError(f"{source}: results must be a list of dicts, got {type(results).__name__}")
    out: list[dict[str, Any]] = []
    imgs, cats = gt.imgs, gt.cats
    with paused_gc():
        for i, entry in enumerate(results):
            if type(entry) is dict and "bbox" not in entry:  # fast path: a plain mask result with a compressed RLE
                image_id, category_id, score = entry.get("image_id"), entry.get("category_id"), entry.get("score")
                seg = entry.get("segmentation")
                if (
                    type(image_id) is int
                    and type(category_id) is int
                    and type(score) is float
                    and type(seg) is dict
                    and image_id in imgs
                    and category_id in cats
                    and math.isfinite(score)
                ):
                    size, counts = seg.get("size"), seg.get("counts")
                    img = imgs[image_id]
                    if (
                        type(size) is list
                        and len(size) == 2
                        and type(size[0]) is type(size[1]) is int
                        and size[0] == img["height"]
                        and size[1] == img["width"]
                        and type(counts) is str
                        and counts
                    ):
                        rle = {"size": [size[0], size[1]], "counts": counts}
                        out.append(
                            {"image_id": image_id, "category_id": category_id, "score": score, "segmentation": rle}
                        )
                        continue
            try:
                out.append(_check_one(entry, gt))
            except (ValueError, TypeError) as err:
                image = entry.get("image_id") if isinstance(entry, Mapping) else None
                raise ValueError(f"{source}: result #{i} (image_id={image!r}): {err}") from err
    with_segm = ["segmentation" in r for r in out]
    if any(with_segm) and not all(with_segm):
        i = with_segm.index(False)
        raise ValueError(
            f"{source}: result #{i} (image_id={out[i]['image_id']}) has no segmentation while others have one; "
            "a results file must give masks for all entries or for none"
        )
    if out and with_segm[0]:
        sizes = [r["segmentation"]["size"] for r in out]
        faults, areas = check_compressed_rles([r["segmentation"]["counts"] for r in out], [h * w for h, w in sizes])
        bad = np.flatnonzero(faults)
        if not bad.size:
            for r, area in zip(out, areas.tolist(), strict=True):
                r["mask_area"] = area  # decoded anyway: spares the AP computation a second pass over the strings
        else:
            i = int(bad[0])
            h, w = sizes[i]
            fault = describe_counts_fault(out[i]["segmentation"]["counts"], h, w) or "malformed compressed RLE"
            more = f" ({bad.size - 1} more results have malformed masks)" if bad.size > 1 else ""
            raise ValueError(f"{source}: result #{i} (image_id={out[i]['image_id']}): {fault}{more}")
    return out
