"""Ground-truth loading and results validation: every fault names the item."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from instseg.eval import evaluate_results, load_ground_truth, load_results, validate_results
from instseg.eval.results import to_compressed_rle
from instseg.structures.masks import masks_to_rles, rle_to_mask

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools decode under numpy 2


def small_gt() -> dict[str, Any]:
    m = np.zeros((20, 30), dtype=bool)
    m[2:8, 3:12] = True
    return {
        "images": [{"id": 3, "height": 20, "width": 30, "file_name": "3.png"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 3,
                "category_id": 2,
                "segmentation": masks_to_rles(m[None])[0],
                "area": 54,
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 2, "name": "cell"}],
    }


def good_result() -> dict[str, Any]:
    return {"image_id": 3, "category_id": 2, "segmentation": small_gt()["annotations"][0]["segmentation"], "score": 0.9}


def test_gt_dict_is_not_modified_and_boxes_are_derived() -> None:
    gt = small_gt()
    before = json.dumps(gt, sort_keys=True)
    coco = load_ground_truth(gt)
    evaluate_results(gt, [good_result()])
    assert json.dumps(gt, sort_keys=True) == before
    assert coco.anns[1]["bbox"] == [3.0, 2.0, 9.0, 6.0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image_id": 99}, r"result #0 \(image_id=99\): image_id 99 is not an image"),
        ({"category_id": 7}, r"category_id 7 is not a category"),
        ({"score": "high"}, r"score 'high' is not a finite number"),
        ({"score": float("nan")}, r"score nan"),
        ({"bbox": [1, 2, 3]}, r"bbox \[1, 2, 3\] is not 4 finite numbers"),
        ({"bbox": [1, 2, -3, 4]}, r"negative width"),
        (
            {"segmentation": {"size": [10, 10], "counts": "abc"}},
            r"RLE size \[10, 10\] differs from the image size \[20, 30\]",
        ),
        ({"segmentation": [[1, 2, 3]]}, r"polygon needs at least 3"),
        ({"segmentation": 5}, r"segmentation must be a polygon list or an RLE dict"),
    ],
)
def test_bad_result_entries(change: dict[str, Any], message: str) -> None:
    gt = load_ground_truth(small_gt())
    with pytest.raises(ValueError, match=message):
        validate_results([{**good_result(), **change}], gt, "res.json")


def test_missing_keys_and_mixed_masks() -> None:
    gt = load_ground_truth(small_gt())
    entry = good_result()
    del entry["score"]
    with pytest.raises(ValueError, match=r"res.json: result #1 \(image_id=3\): lacks \['score'\]"):
        validate_results([good_result(), entry], gt, "res.json")
    with pytest.raises(ValueError, match=r"lacks \['segmentation or bbox'\]"):
        validate_results([{"image_id": 3, "category_id": 2, "score": 1.0}], gt)
    with pytest.raises(ValueError, match=r"result #1 \(image_id=3\) has no segmentation"):
        validate_results([good_result(), {"image_id": 3, "category_id": 2, "score": 1.0, "bbox": [0, 0, 4, 4]}], gt)
    with pytest.raises(ValueError, match="not a dict"):
        validate_results([3], gt)


def test_polygon_and_uncompressed_segmentations() -> None:
    gt = load_ground_truth(small_gt())
    poly = [[3, 2, 12, 2, 12, 8, 3, 8]]
    m = rle_to_mask(good_result()["segmentation"])
    flat = m.flatten(order="F")  # uncompressed COCO RLE: column-major runs starting with zeros
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    counts = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    out = validate_results(
        [
            {**good_result(), "segmentation": poly},
            {**good_result(), "segmentation": {"size": [20, 30], "counts": counts}},
        ],
        gt,
    )
    assert isinstance(out[0]["segmentation"]["counts"], str)
    assert (rle_to_mask(out[1]["segmentation"]) == m).all()
    assert to_compressed_rle(poly, 20, 30)["size"] == [20, 30]


def test_bad_ground_truth_and_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ground-truth file not found"):
        load_ground_truth(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: not a valid JSON"):
        load_ground_truth(tmp_path / "bad.json")
    with pytest.raises(ValueError, match=r"bad\.json: not a valid JSON"):
        load_results(tmp_path / "bad.json")
    (tmp_path / "obj.json").write_text("{}")
    with pytest.raises(ValueError, match=r"obj\.json: a COCO results file is a JSON list"):
        load_results(tmp_path / "obj.json")
    with pytest.raises(ValueError, match="needs a list 'images'"):
        load_ground_truth(tmp_path / "obj.json")
    gt = small_gt()
    del gt["annotations"][0]["area"]
    with pytest.raises(ValueError, match=r"annotation #0 \(id=1\) lacks \['area'\]"):
        load_ground_truth(gt)
    gt = small_gt()
    del gt["images"][0]["height"]
    with pytest.raises(ValueError, match=r"image #0 needs integer 'id', 'height' and 'width'"):
        load_ground_truth(gt)
    gt = small_gt()
    gt["annotations"][0]["image_id"] = 4
    with pytest.raises(ValueError, match="annotation id=1 refers to image_id=4"):
        load_ground_truth(gt)


def test_numpy_ids_are_accepted() -> None:
    gt = load_ground_truth(small_gt())
    out = validate_results(
        [{**good_result(), "image_id": np.int64(3), "category_id": np.int32(2), "score": np.float32(0.5)}], gt
    )
    assert type(out[0]["image_id"]) is int and type(out[0]["category_id"]) is int


def test_box_only_results_give_bbox_ap_only() -> None:
    m = evaluate_results(small_gt(), [{"image_id": 3, "category_id": 2, "bbox": [3, 2, 9, 6], "score": 0.5}])
    assert m["bbox/AP"] == pytest.approx(1.0)
    assert "segm/AP" not in m and "match/F1@0.5" not in m


def test_empty_results() -> None:
    m = evaluate_results(small_gt(), [])
    assert m["segm/AP"] == 0.0 and m["bbox/AP"] == 0.0 and m["match/recall@0.5"] == 0.0
    boxes_only = small_gt()
    ann = boxes_only["annotations"][0]
    del ann["segmentation"]
    ann["bbox"] = [3, 2, 9, 6]
    m = evaluate_results(boxes_only, [])
    assert m["bbox/AP"] == 0.0 and "segm/AP" not in m
    with pytest.raises(ValueError, match=r"annotation id=1 \(image_id=3\) has no segmentation"):
        evaluate_results(boxes_only, [good_result()])
