"""Matching-based instance metrics (the StarDist / Cellpose / DSB2018 habit): precision, recall, F1, PQ, DSB score.

Per image, the predictions with ``score >= score_thr`` are matched one-to-one to the non-crowd ground truth of
the same category. A pair may match at IoU threshold ``t`` when its mask IoU is ``>= t``; among such pairs the
matching is the Hungarian optimum (``scipy.optimize.linear_sum_assignment``), as StarDist does: first the largest
number of matches, then the largest sum of IoU. TP, FP, FN and the sum of matched IoU are added over all images
(pooled, not averaged per image) for ``t`` in 0.5:0.05:0.95, giving

- precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN);
- PQ = SQ * RQ = sum IoU_TP / (TP + FP/2 + FN/2) (Kirillov et al., panoptic quality for things);
- dsb = TP / (TP + FP + FN) (the 2018 Data Science Bowl score; Kaggle averaged it per image, we pool counts),
  and ``dsb@0.5:0.95``, its mean over the thresholds.

A ratio whose denominator is 0 (no predictions and no ground truth) is reported as 0. Predictions on crowd
regions count as false positives: there is no "ignore" in this family of metrics.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from faster_coco_eval import COCO
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from instseg.eval.results import to_compressed_rle

MATCH_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def threshold_name(t: float) -> str:
    """Key suffix of an IoU threshold: 0.5 -> '0.5', 0.75 -> '0.75'."""
    return f"{round(float(t), 2):g}"


def match_counts(iou: np.ndarray, thresholds: Sequence[float] = MATCH_THRESHOLDS) -> tuple[np.ndarray, np.ndarray]:
    """True positives (int64 [T]) and sum of matched IoU (float64 [T]) of one image's IoU matrix [D, G].

    FP = D - TP and FN = G - TP. When no prediction and no ground-truth object has two candidate pairs at a
    threshold, the matching is unique and no solver runs; otherwise the Hungarian optimum with a cost that
    rewards each valid pair by 1 + IoU / (2 * min(D, G)) (the IoU bonus of a whole matching is < 1/2 so it only
    breaks ties between matchings with equally many pairs).
    """
    tp = np.zeros(len(thresholds), dtype=np.int64)
    iou_sum = np.zeros(len(thresholds), dtype=np.float64)
    if iou.size == 0:
        return tp, iou_sum
    for k, t in enumerate(thresholds):
        valid = iou >= t  # [D, G]
        rows = np.flatnonzero(valid.any(axis=1))
        if rows.size == 0:
            break  # higher thresholds have no pair either
        cols = np.flatnonzero(valid.any(axis=0))
        sub_valid = valid[np.ix_(rows, cols)]
        sub_iou = iou[np.ix_(rows, cols)]
        if (sub_valid.sum(axis=1) <= 1).all() and (sub_valid.sum(axis=0) <= 1).all():
            tp[k] = int(sub_valid.sum())
            iou_sum[k] = float(sub_iou[sub_valid].sum())
            continue
        bonus = sub_iou / (2.0 * min(sub_iou.shape))
        cost = np.where(sub_valid, -(1.0 + bonus), 0.0)
        r, c = linear_sum_assignment(cost)
        ok = sub_valid[r, c]
        tp[k] = int(ok.sum())
        iou_sum[k] = float(sub_iou[r[ok], c[ok]].sum())
    return tp, iou_sum


@dataclass
class MatchTotals:
    """Counts summed over images, one entry per IoU threshold."""

    thresholds: tuple[float, ...] = MATCH_THRESHOLDS
    tp: np.ndarray = field(default_factory=lambda: np.zeros(len(MATCH_THRESHOLDS), dtype=np.int64))
    fp: np.ndarray = field(default_factory=lambda: np.zeros(len(MATCH_THRESHOLDS), dtype=np.int64))
    fn: np.ndarray = field(default_factory=lambda: np.zeros(len(MATCH_THRESHOLDS), dtype=np.int64))
    iou_sum: np.ndarray = field(default_factory=lambda: np.zeros(len(MATCH_THRESHOLDS), dtype=np.float64))

    def add(self, iou: np.ndarray) -> None:
        """Match one image (IoU matrix [D, G]) and add its counts."""
        tp, iou_sum = match_counts(iou, self.thresholds)
        self.tp += tp
        self.fp += iou.shape[0] - tp
        self.fn += iou.shape[1] - tp
        self.iou_sum += iou_sum

    def metrics(self, score_thr: float) -> dict[str, float]:
        """``match/{precision,recall,F1,PQ,dsb}@t`` for every threshold, ``match/dsb@0.5:0.95``, ``match/score_thr``."""

        def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
            return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)

        tp, fp, fn = self.tp.astype(np.float64), self.fp.astype(np.float64), self.fn.astype(np.float64)
        figures = {
            "precision": ratio(tp, tp + fp),
            "recall": ratio(tp, tp + fn),
            "F1": ratio(2 * tp, 2 * tp + fp + fn),
            "PQ": ratio(self.iou_sum, tp + fp / 2 + fn / 2),
            "dsb": ratio(tp, tp + fp + fn),
        }
        out: dict[str, float] = {}
        for k, t in enumerate(self.thresholds):
            for name, values in figures.items():
                out[f"match/{name}@{threshold_name(t)}"] = float(values[k])
        span = f"{threshold_name(self.thresholds[0])}:{threshold_name(self.thresholds[-1])}"
        out[f"match/dsb@{span}"] = float(np.mean(figures["dsb"]))
        out["match/score_thr"] = float(score_thr)
        return out


def _category_iou(dt_rles: list, dt_cats: list[int], gt_rles: list, gt_cats: list[int]) -> np.ndarray:
    """Mask IoU [D, G] by pycocotools (RLE, box-prefiltered), zero between different categories."""
    if not dt_rles or not gt_rles:
        return np.zeros((len(dt_rles), len(gt_rles)))
    iou = np.asarray(mask_utils.iou(dt_rles, gt_rles, [0] * len(gt_rles)), dtype=np.float64).reshape(
        len(dt_rles), len(gt_rles)
    )
    iou[np.asarray(dt_cats)[:, None] != np.asarray(gt_cats)[None, :]] = 0.0
    return iou


def gt_rles_by_image(gt: COCO) -> dict[int, tuple[list, list[int]]]:
    """Non-crowd ground-truth masks per image as (compressed RLEs, category ids); crowd objects are dropped."""
    out: dict[int, tuple[list, list[int]]] = {}
    for image_id, img in gt.imgs.items():
        h, w = int(img["height"]), int(img["width"])
        rles, cats = [], []
        for ann in gt.imgToAnns.get(image_id, []):
            if ann.get("iscrowd", 0):
                continue
            try:
                rles.append(to_compressed_rle(ann["segmentation"], h, w))
            except (KeyError, ValueError) as err:
                raise ValueError(
                    f"ground truth annotation id={ann.get('id')} (image_id={image_id}): bad segmentation ({err})"
                ) from err
            cats.append(int(ann["category_id"]))
        out[int(image_id)] = (rles, cats)
    return out


def matching_metrics(
    gt: COCO,
    results: Sequence[dict[str, Any]],
    score_thr: float = 0.5,
    image_ids: Iterable[int] | None = None,
    gt_rles: dict[int, tuple[list, list[int]]] | None = None,
) -> dict[str, float]:
    """Matching metrics (see the module docstring) of validated mask ``results`` against ``gt``.

    ``image_ids`` restricts the images (default: all ground-truth images); ``gt_rles`` may pass a cached
    :func:`gt_rles_by_image` so an evaluator run many times decodes the ground truth once.
    """
    if gt_rles is None:
        gt_rles = gt_rles_by_image(gt)
    preds: dict[int, tuple[list, list[int]]] = defaultdict(lambda: ([], []))
    for r in results:
        if r["score"] >= score_thr:
            rles, cats = preds[r["image_id"]]
            rles.append(r["segmentation"])
            cats.append(r["category_id"])
    totals = MatchTotals()
    for image_id in sorted(gt_rles) if image_ids is None else sorted({int(i) for i in image_ids}):
        g_rles, g_cats = gt_rles[image_id]
        d_rles, d_cats = preds.get(image_id, ([], []))
        totals.add(_category_iou(d_rles, d_cats, g_rles, g_cats))
    return totals.metrics(score_thr)
