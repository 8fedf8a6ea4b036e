"""Matching metrics: Hungarian one-to-one matching, pooled counts and the derived figures."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from instseg.eval.matching import MATCH_THRESHOLDS, MatchTotals, match_counts, matching_metrics, threshold_name
from instseg.eval.results import load_ground_truth, validate_results
from instseg.structures.masks import masks_to_rles


def brute_force(iou: np.ndarray, t: float) -> tuple[int, float]:
    """Most pairs with IoU >= t, then the largest IoU sum, by trying every assignment (tiny matrices only)."""
    d, g = iou.shape
    best = (0, 0.0)
    for k in range(min(d, g), 0, -1):
        for rows in itertools.combinations(range(d), k):
            for cols in itertools.permutations(range(g), k):
                vals = iou[list(rows), list(cols)]
                if (vals >= t).all():
                    best = max(best, (k, float(vals.sum())))
        if best[0] == k:
            return best
    return best


def test_hungarian_beats_greedy() -> None:
    # greedy by IoU would take (0, 0) and leave prediction 1 unmatched; the optimum matches both
    iou = np.array([[0.6, 0.55], [0.58, 0.0]])
    tp, iou_sum = match_counts(iou, (0.5,))
    assert tp[0] == 2 and iou_sum[0] == pytest.approx(1.13)


def test_ties_in_count_broken_by_iou_sum() -> None:
    iou = np.array([[0.9, 0.6], [0.6, 0.55]])
    tp, iou_sum = match_counts(iou, (0.5,))
    assert tp[0] == 2 and iou_sum[0] == pytest.approx(1.45)


@pytest.mark.parametrize("seed", range(30))
def test_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d, g = int(rng.integers(0, 5)), int(rng.integers(0, 5))
    iou = rng.uniform(0.3, 1.0, (d, g)) * (rng.random((d, g)) < 0.6)
    tp, iou_sum = match_counts(iou, MATCH_THRESHOLDS)
    for k, t in enumerate(MATCH_THRESHOLDS):
        count, total = brute_force(iou, t)
        assert tp[k] == count
        assert iou_sum[k] == pytest.approx(total)


def test_threshold_is_inclusive() -> None:
    tp, _ = match_counts(np.array([[0.75]]), MATCH_THRESHOLDS)
    assert tp.tolist() == [1] * 6 + [0] * 4


def test_figures_from_counts() -> None:
    totals = MatchTotals()
    totals.add(np.array([[0.8, 0.0], [0.0, 0.6], [0.0, 0.0]]))  # 3 predictions, 2 gt
    totals.add(np.zeros((0, 2)))  # an image with 2 misses
    m = totals.metrics(score_thr=0.3)
    # at 0.5: TP 2, FP 1, FN 2
    assert m["match/precision@0.5"] == pytest.approx(2 / 3)
    assert m["match/recall@0.5"] == pytest.approx(2 / 4)
    assert m["match/F1@0.5"] == pytest.approx(4 / 7)
    assert m["match/PQ@0.5"] == pytest.approx(1.4 / (2 + 0.5 + 1))
    assert m["match/dsb@0.5"] == pytest.approx(2 / 5)
    # at 0.75: TP 1, FP 2, FN 3
    assert m["match/dsb@0.75"] == pytest.approx(1 / 6)
    assert m["match/PQ@0.75"] == pytest.approx(0.8 / (1 + 1 + 1.5))
    assert m["match/dsb@0.95"] == 0.0
    assert m["match/dsb@0.5:0.95"] == pytest.approx(
        np.mean([m[f"match/dsb@{threshold_name(t)}"] for t in MATCH_THRESHOLDS])
    )
    assert m["match/score_thr"] == 0.3
    assert threshold_name(0.55) == "0.55" and threshold_name(0.5) == "0.5"


def test_empty_gives_zeros() -> None:
    m = MatchTotals().metrics(0.5)
    assert m["match/F1@0.5"] == 0.0 and m["match/PQ@0.5"] == 0.0


def _square(h: int, w: int, y: int, x: int, s: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[y : y + s, x : x + s] = True
    return m


def test_categories_crowd_and_score_threshold() -> None:
    h, w = 40, 40
    gt_masks = np.stack([_square(h, w, 0, 0, 10), _square(h, w, 20, 20, 10), _square(h, w, 0, 25, 10)])
    rles = masks_to_rles(gt_masks)
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": rles[0], "area": 100, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "segmentation": rles[1], "area": 100, "iscrowd": 0},
        {"id": 3, "image_id": 1, "category_id": 1, "segmentation": rles[2], "area": 100, "iscrowd": 1},
    ]
    gt = load_ground_truth(
        {
            "images": [{"id": 1, "height": h, "width": w, "file_name": "a.png"}],
            "annotations": anns,
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        }
    )
    results = [
        {"image_id": 1, "category_id": 1, "segmentation": rles[0], "score": 0.9},  # TP
        {"image_id": 1, "category_id": 1, "segmentation": rles[1], "score": 0.9},  # wrong class: FP (+ gt 2 FN)
        {"image_id": 1, "category_id": 1, "segmentation": rles[2], "score": 0.9},  # on a crowd region: FP
        {"image_id": 1, "category_id": 2, "segmentation": rles[1], "score": 0.2},  # below score_thr: ignored
    ]
    m = matching_metrics(gt, validate_results(results, gt), score_thr=0.5)
    assert m["match/precision@0.5"] == pytest.approx(1 / 3)
    assert m["match/recall@0.5"] == pytest.approx(1 / 2)
    m = matching_metrics(gt, validate_results(results, gt), score_thr=0.1)
    assert m["match/precision@0.5"] == pytest.approx(2 / 4)
    assert m["match/recall@0.5"] == pytest.approx(1.0)
