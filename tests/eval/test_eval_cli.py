"""``instseg eval``: results files, the checkpoint path, errors, and the DSB2018 gt-as-results acceptance check."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from instseg.cli.eval import eval_command
from instseg.structures.masks import masks_to_rles

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools decode under numpy 2

app = typer.Typer()
app.command()(eval_command)  # the sub-command alone, so the test does not depend on the other commands
runner = CliRunner()


def gt_as_results(gt: dict[str, Any]) -> list[dict[str, Any]]:
    """The ground truth written as a results file: score 1.0, RLE masks."""
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"], "score": 1.0}
        for a in gt["annotations"]
        if not a.get("iscrowd", 0)
    ]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for i in range(3):
        images.append({"id": i + 1, "height": 32, "width": 40, "file_name": f"{i}.png"})
        for _ in range(4):
            m = np.zeros((32, 40), dtype=bool)
            y, x = int(rng.integers(0, 24)), int(rng.integers(0, 30))
            m[y : y + 8, x : x + 9] = True
            rle = masks_to_rles(m[None])[0]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": 1,
                    "segmentation": rle,
                    "area": 72,
                    "iscrowd": 0,
                }
            )
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "cell"}]}
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(gt_as_results(gt)))
    return gt_path, pred_path


def test_json_output_and_out_file(files: tuple[Path, Path], tmp_path: Path) -> None:
    gt, pred = files
    out = tmp_path / "sub" / "metrics.json"
    result = runner.invoke(app, ["--gt", str(gt), "--pred", str(pred), "--json", "--max-dets", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["segm/AP"] == 1.0 and metrics["match/F1@0.5"] == 1.0
    assert metrics["max_dets"] == 20 and "segm/AR@20" in metrics
    assert json.loads(out.read_text()) == metrics


def test_table_output(files: tuple[Path, Path]) -> None:
    gt, pred = files
    result = runner.invoke(app, ["--gt", str(gt), "--pred", str(pred), "--score-thr", "0.3"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "max_dets=100, score_thr=0.3" in result.stdout
    assert "dsb@0.5:0.95" in result.stdout


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r[1].pop("score"), "result #1 (image_id=1): lacks ['score']"),
        (lambda r: r[2].update(image_id=42), "result #2 (image_id=42): image_id 42 is not an image"),
        (lambda r: r[0].update(category_id=8), "result #0 (image_id=1): category_id 8 is not a category"),
    ],
)
def test_bad_results_file(files: tuple[Path, Path], edit: Any, message: str) -> None:
    gt, pred = files
    results = json.loads(pred.read_text())
    edit(results)
    pred.write_text(json.dumps(results))
    result = runner.invoke(app, ["--gt", str(gt), "--pred", str(pred)])
    assert result.exit_code == 1
    assert f"{pred}: {message}" in result.output.replace("\n", "")


def test_usage_errors(files: tuple[Path, Path], tmp_path: Path) -> None:
    gt, pred = files
    assert runner.invoke(app, ["--gt", str(gt)]).exit_code == 2
    assert runner.invoke(app, [str(tmp_path / "m.pt"), "--gt", str(gt), "--pred", str(pred)]).exit_code == 2
    assert runner.invoke(app, [str(tmp_path / "m.pt")]).exit_code == 2
    result = runner.invoke(app, ["--gt", str(tmp_path / "none.json"), "--pred", str(pred)])
    assert result.exit_code == 1 and "ground-truth file not found" in result.output


def test_checkpoint_path_calls_the_engine(
    files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gt, _ = files
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"")
    calls: list[tuple] = []
    splits: list[str | None] = []

    def evaluate_checkpoint(checkpoint: Any, ann_file: Any, images_dir: Any, **kw: Any) -> dict[str, float]:
        calls.append((checkpoint, ann_file, images_dir, kw))
        return {"segm/AP": 0.25, "max_dets": float(kw["max_dets"])}

    def resolve_annotations(data: Any, split: Any = None, images: Any = None) -> tuple[Path, Path]:
        splits.append(split)
        return Path(data), Path(images) if images else Path(data).parent.parent / "images"

    monkeypatch.setitem(
        sys.modules, "instseg.engine.evaluate", types.SimpleNamespace(evaluate_checkpoint=evaluate_checkpoint)
    )
    monkeypatch.setitem(
        sys.modules, "instseg.data.paths", types.SimpleNamespace(resolve_annotations=resolve_annotations)
    )
    args = [str(ckpt), "--data", str(gt), "--images", str(tmp_path), "--max-dets", "300", "--device", "cpu", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"segm/AP": 0.25, "max_dets": 300.0}
    assert calls == [
        (ckpt, gt, tmp_path, {"max_dets": 300, "score_thr": 0.5, "device": "cpu", "per_class": False, "batch_size": 1})
    ]
    assert splits == [None]  # a json file: no default split
    result = runner.invoke(app, [str(ckpt), "--data", str(tmp_path), "--device", "cpu", "--json"])
    assert result.exit_code == 0 and splits == [None, "val"]  # a data folder: val by default
    result = runner.invoke(app, args[:-1], env={"COLUMNS": "160"})  # table of partial metrics
    assert result.exit_code == 0, result.output
    assert "0.2500" in result.stdout


def test_checkpoint_path_without_engine(
    files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gt, _ = files
    monkeypatch.setitem(sys.modules, "instseg.engine.evaluate", None)  # makes the import fail
    result = runner.invoke(app, [str(tmp_path / "best.pt"), "--data", str(gt)])
    assert result.exit_code == 1
    assert "needs instseg.engine.evaluate" in result.output


@pytest.mark.shared_data
def test_dsb2018_val_gt_as_results_scores_one(dsb2018_dir: Path, tmp_path: Path) -> None:
    ann = dsb2018_dir / "annotations" / "instances_val.json"
    pred = tmp_path / "val_results.json"
    pred.write_text(json.dumps(gt_as_results(json.loads(ann.read_text()))))
    result = runner.invoke(app, ["--gt", str(ann), "--pred", str(pred), "--max-dets", "1000", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["segm/AP"] == 1.0
    assert metrics["bbox/AP"] == 1.0
    assert metrics["match/F1@0.5"] == 1.0
    assert metrics["match/dsb@0.5:0.95"] == 1.0
    # with COCO's default of 100 detections per image the crowded images lose recall
    result = runner.invoke(app, ["--gt", str(ann), "--pred", str(pred), "--json"])
    assert json.loads(result.stdout)["segm/AP"] < 1.0


@pytest.mark.shared_data
def test_coco128_val_polygon_gt_as_results(coco128_dir: Path, tmp_path: Path) -> None:
    ann = coco128_dir / "annotations" / "instances_val.json"
    pred = tmp_path / "val_results.json"
    pred.write_text(json.dumps(gt_as_results(json.loads(ann.read_text()))))  # polygons, converted to RLE on load
    result = runner.invoke(app, ["--gt", str(ann), "--pred", str(pred), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["segm/AP"] == 1.0 and metrics["match/F1@0.5"] == 1.0
    # boxes are derived from the rasterised masks, the gt boxes are the polygons' float extents: close, not equal
    assert 0.9 < metrics["bbox/AP"] <= 1.0
