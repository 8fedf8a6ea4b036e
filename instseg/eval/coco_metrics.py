"""COCO box and mask AP through faster-coco-eval (C++ evaluate/accumulate, the same figures as pycocotools).

``max_dets`` (detections kept per image, highest scores first) defaults to COCO's 100. Crowded data such as
nuclei (DSB2018 has up to ~375 objects per image) needs 1000, otherwise AP is capped by recall. The COCO
``params.maxDets`` becomes ``sorted({1, 10, max_dets})`` and every reported figure (AP, AP50, AP75, APs/m/l,
AR) is read at ``max_dets``; pycocotools' own ``summarize()`` hard-codes 100 for the overall AP, so we read the
accumulated precision/recall arrays ourselves (:func:`summarize_coco`), the same arithmetic as COCO's summary.
A figure is -1 where COCO gives -1: no ground truth in that area range.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from faster_coco_eval import COCO, COCOeval_faster
from faster_coco_eval.core import mask as mask_utils  # batched area(): pycocotools' overflows past 255 RLEs on numpy 2

from instseg.eval.gc_pause import paused_gc

IOU_TYPES = ("segm", "bbox")


def coco_max_dets(max_dets: int) -> list[int]:
    """The COCO ``params.maxDets`` list used for a requested ``max_dets``: ``sorted({1, 10, max_dets})``."""
    if isinstance(max_dets, bool) or not isinstance(max_dets, int) or max_dets < 1:
        raise ValueError(f"max_dets must be a positive integer, got {max_dets!r}")
    return sorted({1, 10, max_dets})


def _mean_valid(values: np.ndarray) -> float:
    """COCO's summary rule: the mean over entries > -1, or -1 when there are none."""
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def summarize_coco(
    precision: np.ndarray,
    recall: np.ndarray,
    iou_thrs: np.ndarray,
    area_labels: Sequence[str],
    max_dets_list: Sequence[int],
    max_dets: int,
    prefix: str,
) -> dict[str, float]:
    """COCO summary figures read at ``max_dets`` from accumulated arrays.

    ``precision`` is [T, R, K, A, M] (IoU thresholds, recall thresholds, categories, area ranges, max-dets),
    ``recall`` is [T, K, A, M]; keys are ``{prefix}/AP``, ``AP50``, ``AP75``, ``APs``, ``APm``, ``APl``,
    ``AR@{max_dets}``.
    """
    m = list(max_dets_list).index(max_dets)
    a_all = list(area_labels).index("all")
    t50 = int(np.flatnonzero(np.isclose(iou_thrs, 0.5))[0])
    t75 = int(np.flatnonzero(np.isclose(iou_thrs, 0.75))[0])
    out = {
        f"{prefix}/AP": _mean_valid(precision[:, :, :, a_all, m]),
        f"{prefix}/AP50": _mean_valid(precision[t50, :, :, a_all, m]),
        f"{prefix}/AP75": _mean_valid(precision[t75, :, :, a_all, m]),
    }
    for label, key in (("small", "APs"), ("medium", "APm"), ("large", "APl")):
        out[f"{prefix}/{key}"] = _mean_valid(precision[:, :, :, list(area_labels).index(label), m])
    out[f"{prefix}/AR@{max_dets}"] = _mean_valid(recall[:, :, a_all, m])
    return out


def per_class_key(prefix: str, name: str, category_name: str) -> str:
    """The metrics key of one category's figure, e.g. ``segm/AP[person]``."""
    return f"{prefix}/{name}[{category_name}]"


def summarize_per_class(
    precision: np.ndarray,
    iou_thrs: np.ndarray,
    area_labels: Sequence[str],
    max_dets_list: Sequence[int],
    max_dets: int,
    prefix: str,
    category_names: Sequence[str],
) -> dict[str, float]:
    """Each category's AP and AP50 (``{prefix}/AP[name]``, ``{prefix}/AP50[name]``) read at ``max_dets`` from the
    accumulated ``precision`` [T, R, K, A, M], categories in ``category_names`` order; -1 where the category has no
    ground truth in the evaluated images (COCO's rule)."""
    m = list(max_dets_list).index(max_dets)
    a_all = list(area_labels).index("all")
    t50 = int(np.flatnonzero(np.isclose(iou_thrs, 0.5))[0])
    out: dict[str, float] = {}
    for k, name in enumerate(category_names):
        out[per_class_key(prefix, "AP", name)] = _mean_valid(precision[:, :, k, a_all, m])
        out[per_class_key(prefix, "AP50", name)] = _mean_valid(precision[t50, :, k, a_all, m])
    return out


def _detections(results: Sequence[dict[str, Any]], iou_type: str) -> list[dict[str, Any]]:
    """Fresh result dicts for one evaluation (:func:`_load_detections` writes ``id``/``area`` into them).

    A result without ``bbox`` gets the box of its mask. Segm detections carry only their mask, so their area is
    the mask's: pycocotools' ``loadRes`` takes the box area whenever a bbox is present, which would sort masks
    into small/medium/large by box size (APs/APm/APl differ then; AP does not).
    """
    key = "segmentation" if iou_type == "segm" else "bbox"
    if key == "bbox":
        missing = [i for i, r in enumerate(results) if "bbox" not in r]
        if missing:  # boxes of the masks, one call for all
            boxes = mask_utils.toBbox([results[i]["segmentation"] for i in missing]).tolist()
            derived = dict(zip(missing, boxes, strict=True))
            return [
                {
                    "image_id": r["image_id"],
                    "category_id": r["category_id"],
                    "score": r["score"],
                    "bbox": r["bbox"] if "bbox" in r else derived[i],
                }
                for i, r in enumerate(results)
            ]
    dets = [
        {"image_id": r["image_id"], "category_id": r["category_id"], "score": r["score"], key: r[key]} for r in results
    ]
    if key == "segmentation" and results and all("mask_area" in r for r in results):
        for d, r in zip(dets, results, strict=True):  # pixel counts found while validating (the same numbers)
            d["area"] = r["mask_area"]
    return dets


def _load_detections(gt: COCO, dets: list[dict[str, Any]], iou_type: str) -> COCO:
    """The detections as a COCO index, as ``COCO.loadRes`` builds it (ids from 1, ``iscrowd`` 0, ``area`` of the
    mask for segm or of the box for bbox), with the mask areas computed in one call instead of one per detection:
    loadRes took a quarter of the time on 50k masks. What loadRes adds that the evaluation never reads is left
    out: the box of a segm detection and the made-up polygon of a box detection."""
    if iou_type == "segm" and dets and "area" not in dets[0]:
        areas = mask_utils.area([d["segmentation"] for d in dets]).tolist()
        for d, area in zip(dets, areas, strict=True):
            d["area"] = area
    elif iou_type == "bbox":
        for d in dets:
            d["area"] = d["bbox"][2] * d["bbox"][3]
    for i, d in enumerate(dets):
        d["id"], d["iscrowd"] = i + 1, 0
    dt = COCO(print_function=lambda *a, **k: None)
    dt.dataset = {
        "images": list(gt.dataset["images"]),
        "categories": list(gt.dataset["categories"]),
        "annotations": dets,
    }
    dt.createIndex()
    return dt


def _iou_workers() -> int:
    """Threads for the per-image IoUs: one on small machines, where a thread pool's hand-offs cost more than the
    IoUs of one (image, category) pair, else faster-coco-eval's default of up to 8."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if cpus <= 2 else min(cpus, 8)


def coco_ap(
    gt: COCO,
    results: Sequence[dict[str, Any]],
    iou_type: str,
    max_dets: int = 100,
    image_ids: Iterable[int] | None = None,
    per_class: bool = False,
) -> dict[str, float]:
    """COCO AP/AR of validated ``results`` (see ``instseg.eval.results``) for ``iou_type`` 'segm' or 'bbox'.

    ``image_ids`` restricts the evaluation to those images (e.g. the images an evaluator has seen); by default
    every ground-truth image counts, as in COCO. ``per_class`` adds every category's AP and AP50 (keys from
    :func:`per_class_key`, by category name).
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    max_dets_list = coco_max_dets(max_dets)
    if iou_type == "segm":
        for ann in gt.dataset["annotations"]:
            if not ann.get("segmentation"):
                raise ValueError(
                    f"ground truth annotation id={ann['id']} (image_id={ann['image_id']}) has no segmentation, "
                    "so mask AP cannot be computed"
                )
    with paused_gc():
        dt = _load_detections(gt, _detections(results, iou_type), iou_type)
        evaluator = COCOeval_faster(
            gt,
            dt,
            iouType=iou_type,
            print_function=lambda *a, **k: None,
            rle_iou_max_workers=_iou_workers(),
        )  # type: ignore[arg-type]
        evaluator.params.maxDets = max_dets_list
        if image_ids is not None:
            evaluator.params.imgIds = sorted({int(i) for i in image_ids})
        evaluator.evaluate()
        evaluator.accumulate()
    p = evaluator.params
    precision = np.asarray(evaluator.eval["precision"])
    iou_thrs = np.asarray(p.iouThrs)
    out = summarize_coco(
        precision, np.asarray(evaluator.eval["recall"]), iou_thrs, p.areaRngLbl, p.maxDets, max_dets, iou_type
    )
    if per_class:
        names = [str(gt.cats[c].get("name", c)) for c in p.catIds]
        out.update(summarize_per_class(precision, iou_thrs, p.areaRngLbl, p.maxDets, max_dets, iou_type, names))
    return out
