"""instseg's COCO AP (faster-coco-eval) equals pycocotools' on perturbed predictions, to 1e-6."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from scipy import ndimage

from instseg.eval import evaluate_results
from instseg.structures.masks import masks_to_rles

# pycocotools' single-mask decode trips a numpy 2 copy-keyword warning; harmless here
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def synthetic_gt(seed: int = 0, num_images: int = 12, h: int = 64, w: int = 80) -> dict[str, Any]:
    """A small COCO gt: random disks and boxes of 3 categories, a few crowd regions, one empty image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for i in range(num_images):
        image_id = 100 + i
        images.append({"id": image_id, "file_name": f"{image_id}.png", "height": h, "width": w})
        n = 0 if i == 0 else int(rng.integers(1, 9))
        cy, cx = rng.uniform(4, h - 4, n), rng.uniform(4, w - 4, n)
        r = rng.uniform(2, 14, n)
        masks = (yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2 <= r[:, None, None] ** 2
        for j, rle in enumerate(masks_to_rles(masks)):
            crowd = int(rng.random() < 0.08)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": int(rng.choice([1, 3, 7])),
                    "segmentation": rle,
                    "area": int(masks[j].sum()),
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                    "iscrowd": crowd,
                }
            )
    cats = [{"id": c, "name": f"c{c}"} for c in (1, 3, 7)]
    return {"images": images, "annotations": anns, "categories": cats}


def perturbed_results(gt: dict[str, Any], seed: int, score_round: int | None = None) -> list[dict[str, Any]]:
    """Predictions from gt: shifted, eroded or dilated, some dropped, duplicates and false positives, random scores."""
    rng = np.random.default_rng(seed)
    cat_ids = [c["id"] for c in gt["categories"]]
    sizes = {img["id"]: (img["height"], img["width"]) for img in gt["images"]}
    out = []
    for ann in gt["annotations"]:
        if rng.random() < 0.15:
            continue  # dropped: a miss
        h, w = sizes[ann["image_id"]]
        mask = mask_utils.decode(ann["segmentation"]).astype(bool)
        mask = np.roll(mask, shift=(int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1))
        op = rng.random()
        if op < 0.3:
            mask = ndimage.binary_erosion(mask, iterations=int(rng.integers(1, 3))) | (mask & (rng.random() < 0.5))
        elif op < 0.5:
            mask = ndimage.binary_dilation(mask, iterations=int(rng.integers(1, 3)))
        if not mask.any():
            continue
        copies = 2 if rng.random() < 0.1 else 1
        cat = ann["category_id"] if rng.random() > 0.05 else int(rng.choice(cat_ids))
        for _ in range(copies):
            out.append({"image_id": ann["image_id"], "category_id": cat, "mask": mask})
    for img in gt["images"]:  # false positives: random boxes
        h, w = sizes[img["id"]]
        for _ in range(int(rng.integers(0, 4))):
            y0, x0 = int(rng.integers(0, h - 6)), int(rng.integers(0, w - 6))
            mask = np.zeros((h, w), dtype=bool)
            mask[y0 : y0 + int(rng.integers(3, 30)), x0 : x0 + int(rng.integers(3, 30))] = True
            out.append({"image_id": img["id"], "category_id": int(rng.choice(cat_ids)), "mask": mask})
    results = []
    for r in out:
        score = float(rng.random())
        if score_round is not None:
            score = round(score, score_round)
        rle = masks_to_rles(r["mask"][None])[0]
        bbox = [float(v) for v in mask_utils.toBbox(rle)]
        results.append(
            {
                "image_id": r["image_id"],
                "category_id": r["category_id"],
                "segmentation": rle,
                "bbox": bbox,
                "score": score,
            }
        )
    return results


def pycocotools_ap(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str, max_dets: int) -> dict[str, float]:
    """Reference figures by pycocotools, read at max_dets from its accumulated arrays (and its own stats at 100)."""
    coco_gt = COCO()
    coco_gt.dataset = copy.deepcopy(gt)
    coco_gt.createIndex()
    key = "segmentation" if iou_type == "segm" else "bbox"  # no bbox for segm: mask area decides small/medium/large
    dets = [{k: r[k] for k in ("image_id", "category_id", "score", key)} for r in results]
    coco_dt = coco_gt.loadRes(copy.deepcopy(dets))
    ev = COCOeval(coco_gt, coco_dt, iou_type)
    ev.params.maxDets = sorted({1, 10, max_dets})
    ev.evaluate()
    ev.accumulate()
    m = ev.params.maxDets.index(max_dets)
    prec, rec = ev.eval["precision"], ev.eval["recall"]

    def mean(s: np.ndarray) -> float:
        return float(np.mean(s[s > -1])) if (s > -1).any() else -1.0

    ref = {
        "AP": mean(prec[:, :, :, 0, m]),
        "AP50": mean(prec[0, :, :, 0, m]),
        "AP75": mean(prec[5, :, :, 0, m]),
        "APs": mean(prec[:, :, :, 1, m]),
        "APm": mean(prec[:, :, :, 2, m]),
        "APl": mean(prec[:, :, :, 3, m]),
        f"AR@{max_dets}": mean(rec[:, :, 0, m]),
    }
    if max_dets == 100:
        ev.summarize()
        stats = dict(zip(["AP", "AP50", "AP75", "APs", "APm", "APl"], ev.stats[:6], strict=True))
        for k, v in stats.items():
            assert abs(ref[k] - v) <= 1e-12
    return {f"{iou_type}/{k}": v for k, v in ref.items()}


def assert_same_as_pycocotools(gt: dict[str, Any], results: list[dict[str, Any]], max_dets: int) -> dict[str, float]:
    ours = evaluate_results(gt, copy.deepcopy(results), max_dets=max_dets)
    for iou_type in ("segm", "bbox"):
        ref = pycocotools_ap(gt, results, iou_type, max_dets)
        for key, value in ref.items():
            assert abs(ours[key] - value) <= 1e-6, (key, ours[key], value)
    return ours


@pytest.mark.parametrize(
    ("seed", "max_dets", "score_round"), [(0, 100, None), (1, 5, None), (2, 100, 1), (3, 1000, None)]
)
def test_synthetic_perturbed_matches_pycocotools(seed: int, max_dets: int, score_round: int | None) -> None:
    gt = synthetic_gt(seed)
    results = perturbed_results(gt, seed + 10, score_round)
    ours = assert_same_as_pycocotools(gt, results, max_dets)
    assert 0.0 < ours["segm/AP"] < 1.0
    assert 0.0 < ours["match/F1@0.5"] < 1.0


@pytest.mark.shared_data
def test_dsb2018_subset_perturbed_matches_pycocotools(dsb2018_dir: Path) -> None:
    full = json.loads((dsb2018_dir / "annotations" / "instances_val.json").read_text())
    images = full["images"][:12]
    keep = {img["id"] for img in images}
    gt = {**full, "images": images, "annotations": [a for a in full["annotations"] if a["image_id"] in keep]}
    results = perturbed_results(gt, seed=5)
    ours = assert_same_as_pycocotools(gt, results, max_dets=1000)
    assert 0.0 < ours["segm/AP"] < 1.0
