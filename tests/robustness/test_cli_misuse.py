"""Every command misused: one ``error:`` line naming the argument or file, exit code 2 (usage) or 1 (data), no
traceback, nothing written outside ``--out``/DST and the inputs unchanged (checksums of the whole tree)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from tiny_coco import make_coco_dir
from typer.testing import CliRunner

from instseg.cli.main import app

runner = CliRunner()


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file below ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run(args: list[str], code: int, *named: str) -> str:
    """Invoke the CLI in-process and check exit code, one error line naming ``named``, no traceback."""
    result = runner.invoke(app, args)
    output = result.output
    assert result.exit_code == code, f"{args}: exit {result.exit_code}, output:\n{output}"
    assert "Traceback" not in output, output
    for name in named:
        assert name in output, f"{args}: {name!r} not in\n{output}"
    if code == 1:
        assert output.count("error: ") == 1, output
    return output


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data[set]"  # brackets in the folder name: never read as markup
    make_coco_dir(root, split="val")
    return root


def test_unknown_commands_and_options_are_usage_errors() -> None:
    run(["nonsense"], 2, "nonsense")
    run(["eval", "--max-dets", "0"], 2, "--max-dets")
    run(["convert", "a", "b", "--from", "coco", "--to", "yolo", "--tolerance", "-1"], 2, "--tolerance")


def test_eval_misuse(data: Path, tmp_path: Path) -> None:
    gt = data / "annotations" / "instances_val.json"
    run(["eval"], 2, "--gt")
    run(["eval", "--gt", str(gt), "--pred", str(tmp_path / "none.json")], 1, "none.json")
    bad = tmp_path / "bad[1].json"
    bad.write_text("{not json")
    run(["eval", "--gt", str(gt), "--pred", str(bad)], 1, str(bad), "not a valid JSON")
    hang = tmp_path / "hang.json"
    hang.write_text(
        json.dumps(
            [
                {
                    "image_id": 10,
                    "category_id": 3,
                    "score": 0.5,
                    "segmentation": {"size": [10, 12], "counts": "zzzzzzzzzzzzzz"},
                }
            ]
        )
    )
    run(["eval", "--gt", str(gt), "--pred", str(hang)], 1, "result #0 (image_id=10)", "compressed RLE")
    size_null = tmp_path / "size.json"
    size_null.write_text(
        json.dumps(
            [{"image_id": 10, "category_id": 3, "score": 0.5, "segmentation": {"size": [None, 256], "counts": "PP"}}]
        )
    )
    run(["eval", "--gt", str(gt), "--pred", str(size_null)], 1, "result #0", "RLE size must be two integers")
    listed = tmp_path / "listed.json"
    listed.write_text(json.dumps([{"image_id": [10], "category_id": 3, "score": 0.5, "bbox": [0, 0, 2, 2]}]))
    run(["eval", "--gt", str(gt), "--pred", str(listed)], 1, "result #0", "image_id [10]")
    ok = tmp_path / "ok.json"
    ok.write_text("[]")
    before = tree_digest(tmp_path)
    run(["eval", "--gt", str(gt), "--pred", str(ok), "--out", str(tmp_path)], 2, "--out", "folder")
    run(["eval", "--gt", str(gt), "--pred", str(ok), "--out", str(ok)], 2, "--out", "input")
    assert tree_digest(tmp_path) == before


def test_eval_ground_truth_faults_exit_1(data: Path, tmp_path: Path) -> None:
    gt = json.loads((data / "annotations" / "instances_val.json").read_text())
    gt["annotations"].append({**gt["annotations"][0]})
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps(gt))
    pred = tmp_path / "pred.json"
    pred.write_text("[]")
    run(["eval", "--gt", str(dup), "--pred", str(pred)], 1, f"annotation {gt['annotations'][0]['id']}", "duplicate")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_device_cuda_without_gpu(data: Path, tmp_path: Path) -> None:
    image = data / "images" / "a.png"
    run(["predict", str(image), "--device", "cuda", "--out", str(tmp_path / "o")], 2, "--device", "CUDA")
    run(["train", "--config", "c.py", "--out", str(tmp_path / "r"), "--device", "cuda:0"], 2)
    assert not (tmp_path / "o").exists()


def test_predict_misuse(data: Path, tmp_path: Path) -> None:
    image = data / "images" / "a.png"
    run(["predict", str(tmp_path / "nonexistent.png"), "--out", str(tmp_path / "o")], 2, "nonexistent.png")
    run(["predict", str(image), "--tile", "10", "--out", str(tmp_path / "o")], 2, "--tile")
    run(["predict", str(image), str(tmp_path / "last.pt"), "--out", str(tmp_path / "o")], 2, "last.pt", "first input")
    existing = tmp_path / "existing.txt"
    existing.write_text("keep")
    run(["predict", str(image), "--out", str(existing)], 2, "existing.txt")
    assert existing.read_text() == "keep"
    assert not (tmp_path / "o").exists()


def test_info_misuse_and_brackets(data: Path, tmp_path: Path) -> None:
    run(["info"], 2, "give either")
    notjson = tmp_path / "x[1].json"
    notjson.write_text("{")
    run(["info", str(notjson)], 1, str(notjson))
    gt = json.loads((data / "annotations" / "instances_val.json").read_text())
    gt["categories"][0]["name"] = "nucleus[dapi]"
    named = data / "annotations" / "instances_val.json"
    named.write_text(json.dumps(gt))
    (data / "images" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")  # truncated: reported up front
    out = run(["info", "--data", str(data), "--split", "val"], 0, "nucleus[dapi]", str(named), "truncated PNG")
    assert "[/" not in out


def test_convert_refuses_traversal_and_writes_nothing_outside(data: Path, tmp_path: Path) -> None:
    ann = data / "annotations" / "instances_val.json"
    gt = json.loads(ann.read_text())
    victim = tmp_path / "victim.png"
    victim.write_bytes((data / "images" / "a.png").read_bytes())
    for name in (str(victim), "../../victim.png"):
        gt["images"][0]["file_name"] = name
        ann.write_text(json.dumps(gt))
        before = tree_digest(tmp_path)
        for to in ("labels", "yolo", "coco"):
            dst = tmp_path / f"out_{to}"
            run(
                ["convert", "--from", "coco", "--to", to, str(data), str(dst), "--split", "val"],
                1,
                f"image {gt['images'][0]['id']}",
                name,
            )
            assert tree_digest(tmp_path) == before, f"--to {to} wrote something"


def test_convert_destination_rules(data: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    run(["convert", "--from", "coco", "--to", "yolo", str(data), str(dst), "--split", "val"], 0)
    run(["convert", "--from", "coco", "--to", "yolo", str(data), str(dst), "--split", "val"], 1, "--overwrite")
    run(["convert", "--from", "coco", "--to", "yolo", str(data), str(dst), "--split", "val", "--overwrite"], 0)
    before = tree_digest(data)
    run(["convert", "--from", "coco", "--to", "yolo", str(data), str(data / "inside"), "--split", "val"], 1, "inside")
    run(["convert", "--from", "coco", "--to", "labels", str(data), str(data), "--split", "val", "--overwrite"], 1)
    run(["convert", "--from", "bogus", "--to", "yolo", str(data), str(dst), "--split", "val"], 1, "bogus")
    assert tree_digest(data) == before


def test_debug_switch_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    plain = runner.invoke(app, ["info", str(bad)])
    assert (plain.exit_code == 1 and plain.exception is None) or isinstance(plain.exception, SystemExit)
    monkeypatch.setenv("INSTSEG_DEBUG", "1")
    loud = runner.invoke(app, ["info", str(bad)])
    assert loud.exit_code == 1


def test_train_with_non_json_data(tmp_path: Path) -> None:
    notjson = tmp_path / "data[1].json"
    notjson.write_text("images: no")
    config = tmp_path / "c.py"
    config.write_text("from instseg.engine.config import Config\n\nconfig = Config()\n")
    run(["train", "--config", str(config), "--data", str(notjson), "--out", str(tmp_path / "run")], 2, str(notjson))
    assert not (tmp_path / "run").exists()
    existing = tmp_path / "existing.txt"
    existing.write_text("keep")
    run(["train", "--config", str(config), "--out", str(existing)], 2, "--out", "existing.txt")
    assert existing.read_text() == "keep"


def test_category_names_with_brackets_reach_the_tables(data: Path, tmp_path: Path) -> None:
    ann = data / "annotations" / "instances_val.json"
    gt = json.loads(ann.read_text())
    gt["categories"][0]["name"] = "nucleus[dapi]"
    ann.write_text(json.dumps(gt))
    perfect = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"], "score": 0.9}
        for a in gt["annotations"]
        if not a.get("iscrowd")
    ]
    pred = tmp_path / "pred[x].json"
    pred.write_text(json.dumps(perfect))
    out = run(["eval", "--gt", str(ann), "--pred", str(pred), "--per-class"], 0, "nucleus[dapi]")
    assert "1.0000" in out
