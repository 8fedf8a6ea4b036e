"""Per-category AP: each category's figure, -1 without ground truth, their mean is COCO's AP, and the CLI table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from instseg.cli.eval import eval_command
from instseg.eval.evaluator import evaluate_results
from instseg.structures.masks import masks_to_rles

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools decode under numpy 2


def square(y: int, x: int, size: int = 8) -> dict[str, Any]:
    """RLE of a ``size`` x ``size`` square at (y, x) in a 48 x 48 image."""
    m = np.zeros((48, 48), dtype=bool)
    m[y : y + size, x : x + size] = True
    return masks_to_rles(m[None])[0]


def data() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Two images; 'cat' found exactly, one of two 'dog's found, 'bird' has no ground truth but a false positive."""
    anns = [
        (1, 1, square(2, 2)),  # cat
        (1, 2, square(20, 20)),  # dog, found
        (2, 2, square(30, 5)),  # dog, missed
        (2, 1, square(5, 30)),  # cat
    ]
    gt = {
        "images": [{"id": i, "height": 48, "width": 48, "file_name": f"{i}.png"} for i in (1, 2)],
        "annotations": [
            {"id": k + 1, "image_id": img, "category_id": cat, "segmentation": rle, "area": 64, "iscrowd": 0}
            for k, (img, cat, rle) in enumerate(anns)
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "bird"}],
    }
    results = [
        {"image_id": 1, "category_id": 1, "segmentation": square(2, 2), "score": 0.9},
        {"image_id": 2, "category_id": 1, "segmentation": square(5, 30), "score": 0.8},
        {"image_id": 1, "category_id": 2, "segmentation": square(20, 20), "score": 0.7},
        {"image_id": 2, "category_id": 3, "segmentation": square(40, 40), "score": 0.6},
    ]
    return gt, results


def test_per_class_figures_and_their_mean_is_coco_ap() -> None:
    gt, results = data()
    metrics = evaluate_results(gt, results, per_class=True)
    assert metrics["segm/AP[cat]"] == pytest.approx(1.0)
    # one of two dogs found at score rank 1: precision 1 up to recall 0.5, nothing after -> 51 of 101 points
    assert metrics["segm/AP50[dog]"] == pytest.approx(51 / 101)
    assert metrics["segm/AP[bird]"] == -1.0  # no ground truth: excluded, as COCO does
    assert metrics["bbox/AP[cat]"] == pytest.approx(1.0)
    mean = np.mean([metrics["segm/AP[cat]"], metrics["segm/AP[dog]"]])
    assert metrics["segm/AP"] == pytest.approx(mean)
    assert not any("[" in key for key in evaluate_results(gt, results))  # off by default


def test_cli_prints_the_per_class_table(tmp_path: Path) -> None:
    gt, results = data()
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(results))
    app = typer.Typer()
    app.command()(eval_command)
    out = CliRunner().invoke(
        app, ["--gt", str(gt_path), "--pred", str(pred_path), "--per-class"], env={"COLUMNS": "120"}
    )
    assert out.exit_code == 0, out.output
    assert "Per category" in out.output
    assert "2 of 2 categories with ground truth have AP > 0" in out.output
    assert "bird" not in out.output.split("Per category")[1]
    lines = out.output.split("Per category")[1].splitlines()
    assert [i for i, line in enumerate(lines) if "cat" in line and "category" not in line] < [
        i for i, line in enumerate(lines) if "dog" in line
    ]  # best first
