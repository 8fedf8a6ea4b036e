"""Matching metrics (F1, PQ, DSB) of perturbed predictions against a brute-force reference computed from masks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from instseg.eval.matching import MATCH_THRESHOLDS, matching_metrics, threshold_name
from instseg.eval.results import load_ground_truth, validate_results
from instseg.structures.masks import masks_to_rles

H, W = 24, 32


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bitmasks (the non-crowd IoU)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def _best_matching(iou: np.ndarray, t: float) -> tuple[int, float]:
    """Most one-to-one pairs with IoU >= t, then the largest IoU sum, by trying every assignment."""
    d, g = iou.shape
    for k in range(min(d, g), 0, -1):
        best = None
        for rows in itertools.combinations(range(d), k):
            for cols in itertools.permutations(range(g), k):
                vals = iou[list(rows), list(cols)]
                if (vals >= t).all() and (best is None or vals.sum() > best):
                    best = float(vals.sum())
        if best is not None:
            return k, best
    return 0, 0.0


def _reference(images: list[dict], score_thr: float) -> dict[str, float]:
    """Pooled TP/FP/FN and matched IoU over images from decoded masks, then the figures, by their definitions."""
    out: dict[str, float] = {}
    dsb = []
    for t in MATCH_THRESHOLDS:
        tp = fp = fn = 0
        iou_sum = 0.0
        for im in images:
            gts = [(m, c) for m, c, crowd in im["gt"] if not crowd]
            dts = [(m, c) for m, c, s in im["dt"] if s >= score_thr]
            iou = np.array([[_mask_iou(dm, gm) if dc == gc else 0.0 for gm, gc in gts] for dm, dc in dts])
            k, total = _best_matching(iou.reshape(len(dts), len(gts)), t)
            tp, fp, fn, iou_sum = tp + k, fp + len(dts) - k, fn + len(gts) - k, iou_sum + total
        name = threshold_name(t)
        out[f"match/precision@{name}"] = tp / (tp + fp) if tp + fp else 0.0
        out[f"match/recall@{name}"] = tp / (tp + fn) if tp + fn else 0.0
        out[f"match/F1@{name}"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        out[f"match/PQ@{name}"] = iou_sum / (tp + fp / 2 + fn / 2) if tp + fp + fn else 0.0
        out[f"match/dsb@{name}"] = tp / (tp + fp + fn) if tp + fp + fn else 0.0
        dsb.append(out[f"match/dsb@{name}"])
    out["match/dsb@0.5:0.95"] = float(np.mean(dsb))
    return out


def _rect(y: int, x: int, h: int, w: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[max(y, 0) : y + h, max(x, 0) : x + w] = True
    return m


def _random_images(seed: int) -> list[dict]:
    """Images with rectangles, predictions shifted/shrunk/grown copies plus spurious ones; some images unpredicted."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(4):
        gt, dt = [], []
        for _ in range(int(rng.integers(1, 4))):
            y, x, h, w = (
                int(v) for v in (rng.integers(0, 14), rng.integers(0, 20), rng.integers(4, 10), rng.integers(4, 12))
            )
            cat = int(rng.integers(1, 3))
            crowd = bool(rng.random() < 0.15)
            gt.append((_rect(y, x, h, w), cat, crowd))
            if i == 0:
                continue  # image 1: objects but no prediction at all (all its objects are misses)
            dy, dx, dh, dw = (int(v) for v in rng.integers(-2, 3, size=4))
            # a perturbed copy; sometimes of the wrong category, so that a category mix-up shows
            dt_cat = cat if rng.random() < 0.85 else 3 - cat
            dt.append((_rect(y + dy, x + dx, max(h + dh, 1), max(w + dw, 1)), dt_cat, float(rng.uniform(0.2, 1.0))))
        if rng.random() < 0.7:  # a spurious detection
            y, x = int(rng.integers(0, 18)), int(rng.integers(0, 26))
            dt.append((_rect(y, x, 5, 5), int(rng.integers(1, 3)), float(rng.uniform(0.2, 1.0))))
        images.append({"id": i + 1, "gt": gt, "dt": dt})
    return images


def _coco(images: list[dict]) -> tuple[object, list[dict]]:
    anns, results = [], []
    for im in images:
        for m, cat, crowd in im["gt"]:
            rle = masks_to_rles(m[None])[0]
            area = int(m.sum())
            anns.append(
                {"id": len(anns) + 1, "image_id": im["id"], "category_id": cat, "segmentation": rle, "area": area,
                 "iscrowd": int(crowd), "bbox": [0, 0, 1, 1]}
            )  # fmt: skip
        for m, cat, score in im["dt"]:
            results.append(
                {"image_id": im["id"], "category_id": cat, "segmentation": masks_to_rles(m[None])[0], "score": score}
            )
    gt = load_ground_truth(
        {
            "images": [{"id": im["id"], "height": H, "width": W, "file_name": f"{im['id']}.png"} for im in images],
            "annotations": anns,
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        }
    )
    return gt, validate_results(results, gt)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("score_thr", [0.0, 0.5])
def test_perturbed_predictions_match_brute_force(seed: int, score_thr: float) -> None:
    images = _random_images(seed)
    gt, results = _coco(images)
    got = matching_metrics(gt, results, score_thr=score_thr)
    expected = _reference(images, score_thr)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


def test_iou_is_over_the_union_not_the_prediction() -> None:
    # a prediction inside its object: IoU = 24 / 48 = 0.5 (over the union); the crowd way (over the prediction)
    # would give 1.0 and a match at every threshold
    images = [{"id": 1, "gt": [(_rect(0, 0, 6, 8), 1, False)], "dt": [(_rect(0, 0, 3, 8), 1, 0.9)]}]
    gt, results = _coco(images)
    m = matching_metrics(gt, results, score_thr=0.5)
    assert m["match/F1@0.5"] == 1.0 and m["match/PQ@0.5"] == pytest.approx(0.5)
    assert m["match/F1@0.55"] == 0.0 and m["match/recall@0.55"] == 0.0 and m["match/precision@0.55"] == 0.0


def test_images_without_predictions_count_their_objects_as_misses() -> None:
    images = [
        {"id": 1, "gt": [(_rect(0, 0, 6, 8), 1, False)], "dt": [(_rect(0, 0, 6, 8), 1, 0.9)]},
        {"id": 2, "gt": [(_rect(2, 2, 6, 8), 1, False), (_rect(12, 12, 6, 8), 2, False)], "dt": []},
    ]
    gt, results = _coco(images)
    m = matching_metrics(gt, results, score_thr=0.5)
    assert m["match/precision@0.5"] == 1.0
    assert m["match/recall@0.5"] == pytest.approx(1 / 3)
    assert m["match/F1@0.5"] == pytest.approx(2 / 4)
    assert m["match/dsb@0.5"] == pytest.approx(1 / 3)
    assert m["match/PQ@0.5"] == pytest.approx(1 / (1 + 0 + 1))
