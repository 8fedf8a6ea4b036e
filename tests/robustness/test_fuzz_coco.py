"""Generated bad COCO ground truth and results: every fault is a ValueError naming the item, found before any C
decoder sees it (a malformed RLE can hang pycocotools), in the same way by every command that reads COCO."""

from __future__ import annotations

import copy
import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from instseg.data.coco_validation import validate_coco
from instseg.data.rle_check import compressed_rle_faults
from instseg.data.rle_runs import compressed_rle_counts
from instseg.eval import evaluate_results, load_ground_truth, validate_results

H, W = 20, 24


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: SIGALRM after ``seconds``."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s: a decoder hangs")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _rle(y0: int, x0: int) -> dict[str, Any]:
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[y0 : y0 + 5, x0 : x0 + 6] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [H, W], "counts": rle["counts"].decode("ascii")}


def gt_dict() -> dict[str, Any]:
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "height": H, "width": W},
            {"id": 2, "file_name": "b.png", "height": H, "width": W},
        ],
        "annotations": [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 1,
                "segmentation": _rle(2, 3),
                "area": 30,
                "bbox": [3, 2, 6, 5],
                "iscrowd": 0,
            },
            {
                "id": 11,
                "image_id": 2,
                "category_id": 2,
                "segmentation": [[1, 1, 9, 1, 9, 8, 1, 8]],
                "area": 56,
                "bbox": [1, 1, 8, 7],
                "iscrowd": 0,
            },
        ],
        "categories": [{"id": 1, "name": "nucleus[dapi]"}, {"id": 2, "name": "cell"}],
    }


def result(image_id: int = 1, category_id: int = 1) -> dict[str, Any]:
    return {"image_id": image_id, "category_id": category_id, "segmentation": _rle(2, 4), "score": 0.8}


WRONG_VALUES = [None, [1], "x", {}, -1, 1.5, float("nan"), True, [None, 256], "../x", 10**12]
IMAGE_FIELDS = ["id", "file_name", "height", "width"]
ANN_FIELDS = ["id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd"]
RESULT_FIELDS = ["image_id", "category_id", "score", "segmentation"]


def _accepts_or_names(run: Any, *names: str) -> None:
    """``run()`` either succeeds or raises ValueError whose message names one of ``names``; nothing else."""
    try:
        with deadline(20):
            run()
    except ValueError as err:
        assert any(name in str(err) for name in names), f"{err} names none of {names}"


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(IMAGE_FIELDS), value=st.sampled_from(WRONG_VALUES), which=st.sampled_from([0, 1]))
def test_every_image_field_with_a_wrong_value(field: str, value: Any, which: int) -> None:
    data = gt_dict()
    data["images"][which][field] = value
    _accepts_or_names(lambda: validate_coco(data, Path("gt.json")), "gt.json: image")
    _accepts_or_names(lambda: load_ground_truth(copy.deepcopy(data)), "image", "annotation")


@settings(max_examples=120, deadline=None)
@given(field=st.sampled_from(ANN_FIELDS), value=st.sampled_from(WRONG_VALUES), which=st.sampled_from([0, 1]))
def test_every_annotation_field_with_a_wrong_value(field: str, value: Any, which: int) -> None:
    data = gt_dict()
    data["annotations"][which][field] = value
    ann_id = data["annotations"][which]["id"]
    names = [f"annotation {ann_id!r}", f"annotation {ann_id}", f"id={ann_id!r}", "annotation #"]
    _accepts_or_names(lambda: validate_coco(data, Path("gt.json")), *names)
    _accepts_or_names(lambda: evaluate_results(copy.deepcopy(data), [result()]), *names, "image", "category")


@settings(max_examples=80, deadline=None)
@given(field=st.sampled_from(RESULT_FIELDS), value=st.sampled_from(WRONG_VALUES))
def test_every_result_field_with_a_wrong_value(field: str, value: Any) -> None:
    gt = load_ground_truth(gt_dict())
    entry = {**result(), field: value}
    _accepts_or_names(lambda: validate_results([result(), entry], gt, "res.json"), "res.json: result #1")


rle_text = st.text(alphabet=st.characters(min_codepoint=40, max_codepoint=130), min_size=0, max_size=30)


@settings(max_examples=150, deadline=None)
@given(counts=rle_text, where=st.sampled_from(["gt", "results"]))
def test_malformed_rle_strings_are_named_before_any_decoder(counts: str, where: str) -> None:
    runs = compressed_rle_counts(counts) if counts.isascii() and counts else None
    valid = runs is not None and runs.min() >= 0 and int(runs.sum()) == H * W
    assert bool(compressed_rle_faults([counts], [H * W])[0]) == (not valid)
    data = gt_dict()
    entry = result()
    if where == "gt":
        data["annotations"][0]["segmentation"] = {"size": [H, W], "counts": counts}
    else:
        entry["segmentation"] = {"size": [H, W], "counts": counts}
    try:
        with deadline(20):
            evaluate_results(data, [entry], source="res.json")
    except ValueError as err:
        assert ("annotation 10" if where == "gt" else "res.json: result #0") in str(err)
        assert not valid or "empty mask" in str(err)
    else:
        assert valid


def test_the_reported_hang_string() -> None:
    data = gt_dict()
    with deadline(10), pytest.raises(ValueError, match=r"res.json: result #0 \(image_id=1\): compressed RLE"):
        evaluate_results(
            data, [{**result(), "segmentation": {"size": [H, W], "counts": "zzzzzzzzzzzzzz"}}], source="res.json"
        )
    data["annotations"][0]["segmentation"]["counts"] = "zzzzzzzzzzzzzz"
    with deadline(10), pytest.raises(ValueError, match=r"image 1, annotation 10: compressed RLE"):
        evaluate_results(data, [result()])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["annotations"].append({**d["annotations"][0]}), "annotation 10: duplicate annotation id"),
        (lambda d: d["images"].append({**d["images"][0]}), "image 1 (a.png): duplicate image id"),
        (lambda d: d["annotations"][0].update(category_id=9), "annotation 10: category_id 9 is not among"),
        (lambda d: [a.update(area=-5) for a in d["annotations"]], "area must be a finite number >= 0"),
        (lambda d: d["annotations"][0].update(image_id=[1]), "annotation id=10 refers to image_id=[1]"),
        (lambda d: d["annotations"][0]["segmentation"].update(size=[None, 256]), "RLE size must be two integers"),
        (lambda d: d["categories"].append({"id": 1, "name": "again"}), "category 1: duplicate category id"),
    ],
    ids=["dup-ann", "dup-image", "unknown-cat", "negative-areas", "image-id-list", "size-null", "dup-cat"],
)
def test_eval_ground_truth_gets_the_same_validation(change: Any, message: str) -> None:
    data = gt_dict()
    change(data)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        evaluate_results(data, [result()])


@pytest.mark.parametrize(
    "name", ["/etc/passwd.png", "../outside.png", "a/../../b.png", "C:\\x.png", "..\\x.png", "ok/\x00.png"]
)
def test_traversal_file_names_are_refused(name: str) -> None:
    data = gt_dict()
    data["images"][0]["file_name"] = name
    with pytest.raises(ValueError, match=r"gt.json: image 1 .*file_name"):
        validate_coco(data, Path("gt.json"))


def test_results_file_round_trip_keeps_ap(tmp_path: Path) -> None:
    """The checks change no figure: a perfect result of every object scores AP 1."""
    data = gt_dict()
    perfect = [
        {"image_id": 1, "category_id": 1, "segmentation": data["annotations"][0]["segmentation"], "score": 0.9},
        {"image_id": 2, "category_id": 2, "segmentation": data["annotations"][1]["segmentation"], "score": 0.9},
    ]
    (tmp_path / "gt.json").write_text(json.dumps(data))
    metrics = evaluate_results(tmp_path / "gt.json", perfect)
    assert metrics["segm/AP"] == pytest.approx(1.0)
