"""Result validation: every route through ``validate_results`` (the plain fast path and the general checks) gives
the same normalised entries for valid input and names the entry for invalid input."""

from __future__ import annotations

from collections import UserDict

import numpy as np
import pytest

from instseg.eval.results import load_ground_truth, validate_results
from instseg.structures.masks import masks_to_rles


def _gt_and_rle() -> tuple[object, dict]:
    gt = load_ground_truth(
        {
            "images": [{"id": 1, "height": 6, "width": 8, "file_name": "a.png"}],
            "annotations": [],
            "categories": [{"id": 3, "name": "c"}],
        }
    )
    m = np.zeros((1, 6, 8), dtype=bool)
    m[0, 1:4, 2:7] = True
    return gt, masks_to_rles(m)[0]


def test_general_checks_accept_what_the_fast_path_accepts() -> None:
    gt, rle = _gt_and_rle()
    plain = {"image_id": 1, "category_id": 3, "score": 0.5, "segmentation": rle}
    (fast,) = validate_results([plain], gt)
    variants = [
        {**plain, "score": 1},  # an integer score: not the fast path
        UserDict(plain),  # a mapping that is not a dict
        {**plain, "segmentation": {"size": (6, 8), "counts": rle["counts"]}},  # a tuple size
        {**plain, "segmentation": {"size": [6, 8], "counts": rle["counts"].encode("ascii")}},  # bytes counts
    ]
    for entry in variants:
        (got,) = validate_results([entry], gt)
        assert got["segmentation"] == fast["segmentation"], entry
        assert got["image_id"] == 1 and got["category_id"] == 3 and float(got["score"]) == float(entry["score"])
        assert got.get("mask_area") == fast.get("mask_area") == 15


@pytest.mark.parametrize("score", [0.5, 1])  # the fast path and the general checks
def test_malformed_counts_and_wrong_sizes_name_the_entry(score: float) -> None:
    gt, rle = _gt_and_rle()
    good = {"image_id": 1, "category_id": 3, "score": score, "segmentation": rle}
    bad_counts = {**good, "segmentation": {"size": [6, 8], "counts": "0000"}}
    with pytest.raises(ValueError, match=r"result #1 \(image_id=1\)"):
        validate_results([good, bad_counts], gt)
    wrong_size = {**good, "segmentation": {"size": [8, 6], "counts": rle["counts"]}}
    with pytest.raises(ValueError, match=r"result #0 \(image_id=1\).*size"):
        validate_results([wrong_size], gt)


def test_ground_truth_rles_in_any_python_form_score_alike() -> None:
    from instseg.eval.matching import matching_metrics

    _, rle = _gt_and_rle()
    forms = [
        rle,
        {"size": [6, 8], "counts": rle["counts"].encode("ascii")},  # bytes counts, as pycocotools returns them
    ]
    results = [{"image_id": 1, "category_id": 3, "score": 0.9, "segmentation": rle}]
    scores = []
    for form in forms:
        gt = load_ground_truth(
            {
                "images": [{"id": 1, "height": 6, "width": 8, "file_name": "a.png"}],
                "annotations": [
                    {"id": 1, "image_id": 1, "category_id": 3, "segmentation": form, "iscrowd": 0, "area": 15}
                ],
                "categories": [{"id": 3, "name": "c"}],
            }
        )
        scores.append(matching_metrics(gt, validate_results(results, gt))["match/PQ@0.95"])
    assert scores == [1.0, 1.0]
