"""``instseg info``: tables, ``--json``, ``--data/--split``, and errors as exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from tiny_coco import make_coco_dir
from typer.testing import CliRunner

from instseg.cli.info import info

app = typer.Typer()
app.command()(info)
runner = CliRunner()


def test_json_output_is_one_object(tmp_path: Path) -> None:
    ann = make_coco_dir(tmp_path, split="val")
    result = runner.invoke(app, [str(ann), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["images"] == 3 and stats["instances"] == 4 and stats["crowd"] == 1
    result = runner.invoke(app, ["--data", str(tmp_path), "--split", "val", "--json"])
    assert json.loads(result.stdout)["ann_file"] == str(ann)


def test_tables_and_missing_images_folder(tmp_path: Path) -> None:
    ann = make_coco_dir(tmp_path)
    result = runner.invoke(app, [str(ann)])
    assert result.exit_code == 0 and "instances" in result.stdout and "cat" in result.stdout
    (tmp_path / "x" / "alone").mkdir(parents=True)
    lonely = tmp_path / "x" / "alone" / "lonely.json"
    lonely.write_text(ann.read_text())
    result = runner.invoke(app, [str(lonely), "--json"])  # no images folder: statistics from the json alone
    assert result.exit_code == 0 and json.loads(result.stdout)["notes"]


def test_errors_exit_1(tmp_path: Path) -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == 2 and "give either" in result.output  # a usage fault
    result = runner.invoke(app, [str(tmp_path / "none.json")])
    assert result.exit_code == 1 and "no such file" in result.output
    ann = make_coco_dir(tmp_path)
    result = runner.invoke(app, [str(ann), "--split", "val"])
    assert result.exit_code == 1 and "--split goes with --data" in result.output


@pytest.mark.shared_data
def test_dsb2018_val_acceptance(dsb2018_dir: Path) -> None:
    result = runner.invoke(app, [str(dsb2018_dir / "annotations" / "instances_val.json"), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["images"] == 121 and stats["instances"] == 5302 and stats["invalid"] == []
    assert stats["instances_per_image"]["min"] == 1 and stats["instances_per_image"]["max"] == 313
    result = runner.invoke(app, ["--data", str(dsb2018_dir), "--split", "val"])
    assert "5,302" in result.stdout and "121" in result.stdout


@pytest.mark.shared_data
def test_coco128_counts(coco128_dir: Path) -> None:
    result = runner.invoke(app, ["--data", str(coco128_dir), "--split", "train", "--json"])
    stats = json.loads(result.stdout)
    assert stats["images"] == 102 and stats["instances"] == 757 and stats["images_without_annotations"] == 2
    assert sum(1 for c in stats["classes"] if c["count"]) == 68
