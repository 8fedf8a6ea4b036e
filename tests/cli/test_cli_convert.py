"""``instseg convert``: option names, the summary line, and errors as exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from tiny_coco import make_coco_dir
from typer.testing import CliRunner

from instseg.cli.convert import convert

app = typer.Typer()
app.command()(convert)
runner = CliRunner()


def test_coco_to_yolo_and_back(tmp_path: Path) -> None:
    make_coco_dir(tmp_path / "src", split="val")
    result = runner.invoke(
        app, ["--from", "coco", "--to", "yolo", str(tmp_path / "src"), str(tmp_path / "y"), "--split", "val"]
    )
    assert result.exit_code == 0, result.output
    assert "3 images, 4 objects written, 1 crowd regions dropped" in result.stdout
    result = runner.invoke(
        app, ["--from", "yolo", "--to", "coco", str(tmp_path / "y"), str(tmp_path / "c"), "--split", "val"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "c" / "annotations" / "instances_val.json").read_text())
    assert len(data["annotations"]) == 4


def test_skipped_images_reported(tmp_path: Path) -> None:
    ann = make_coco_dir(tmp_path / "src")
    (tmp_path / "src" / "images" / "a.png").write_bytes(b"broken")
    result = runner.invoke(app, ["--from", "coco", "--to", "labels", str(ann), str(tmp_path / "l")])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "1 skipped" in result.stdout


def test_errors_exit_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--from", "voc", "--to", "coco", str(tmp_path), str(tmp_path / "x")])
    assert result.exit_code == 1 and "unknown data format 'voc'" in result.output
    result = runner.invoke(app, ["--from", "coco", "--to", "labels", str(tmp_path / "none"), str(tmp_path / "x")])
    assert result.exit_code == 1 and "no such file or folder" in result.output
