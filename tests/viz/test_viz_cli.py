"""``instseg viz``: overlays of annotation files and of results files, bad input reported and skipped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from instseg.cli.viz import viz
from instseg.data.synthetic import SyntheticShapes

app = typer.Typer()
app.command()(viz)
runner = CliRunner()


@pytest.fixture
def shapes_set(tmp_path: Path) -> tuple[SyntheticShapes, Path]:
    ds = SyntheticShapes(num_images=3, image_size=(40, 48), seed=0, split="val")
    return ds, ds.write_coco(tmp_path / "shapes")


def test_annotation_file_gives_one_overlay_per_image(shapes_set, tmp_path):
    ds, ann = shapes_set
    result = runner.invoke(app, [str(ann), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "out").glob("*.png"))
    assert [f.name for f in files] == [f"val_{i:06d}_overlay.png" for i in range(3)]
    overlay = np.asarray(Image.open(files[0]))
    assert overlay.shape == (40, 48, 3)
    assert not np.array_equal(overlay, ds[0][0].permute(1, 2, 0).numpy())
    assert "wrote 3 overlay(s)" in result.output


def test_results_file_needs_gt_and_is_filtered_by_score(shapes_set, tmp_path):
    import torch

    ds, ann = shapes_set
    results = []
    for i in range(len(ds)):
        _, target, meta = ds[i]
        target.scores = torch.linspace(0.9, 0.1, len(target)) if len(target) else torch.zeros(0)
        results += target.to_coco(meta["image_id"], ds.category_ids)
    res_file = tmp_path / "results.json"
    res_file.write_text(json.dumps(results))
    missing_gt = runner.invoke(app, [str(res_file), "--out", str(tmp_path / "x")])
    assert missing_gt.exit_code == 1 and "--gt" in missing_gt.output
    outputs = {}
    for thr in ("0.0", "0.95"):
        out = tmp_path / f"out{thr}"
        result = runner.invoke(app, [str(res_file), "--gt", str(ann), "--out", str(out), "--score-thr", thr])
        assert result.exit_code == 0, result.output
        outputs[thr] = np.asarray(Image.open(out / "val_000000_overlay.png"))
    image = ds[0][0].permute(1, 2, 0).numpy()
    assert np.array_equal(outputs["0.95"], image)  # every result is below 0.95: nothing drawn
    assert not np.array_equal(outputs["0.0"], image)


def test_unreadable_image_is_reported_and_skipped(shapes_set, tmp_path):
    _, ann = shapes_set
    (ann.parent.parent / "images" / "val_000001.png").write_bytes(b"not a png")
    result = runner.invoke(app, [str(ann), "--out", str(tmp_path / "out"), "--max-images", "2"])
    assert result.exit_code == 0, result.output
    assert "val_000001.png" in result.output and "skipped 1" in result.output
    # the damaged file is found while loading, so --max-images 2 draws the next two readable images
    assert sorted(f.name for f in (tmp_path / "out").glob("*.png")) == [
        "val_000000_overlay.png",
        "val_000002_overlay.png",
    ]


def test_bad_inputs_fail_with_a_message(tmp_path, shapes_set):
    _, ann = shapes_set
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = runner.invoke(app, [str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "bad.json" in result.output
    results = tmp_path / "res.json"
    results.write_text(json.dumps([{"image_id": 999, "category_id": 1, "bbox": [0, 0, 2, 2], "score": 0.9}]))
    result = runner.invoke(app, [str(results), "--gt", str(ann), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "999" in result.output


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["dsb2018", "coco128seg"])
def test_real_data_overlays(name, request, tmp_path):
    root = request.getfixturevalue("dsb2018_dir" if name == "dsb2018" else "coco128_dir")
    ann = root / "annotations" / "instances_val.json"
    result = runner.invoke(app, [str(ann), "--out", str(tmp_path), "--max-images", "2"])
    assert result.exit_code == 0, result.output
    first = json.loads(ann.read_text())["images"][0]
    overlay = np.asarray(Image.open(tmp_path / f"{Path(first['file_name']).stem}_overlay.png"))
    assert overlay.shape == (first["height"], first["width"], 3)
