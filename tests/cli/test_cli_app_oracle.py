"""The assembled ``instseg`` app (every command mounted on ``instseg.cli.main.app``), ``instseg models`` and the
demo module's main path on one sample image."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import instseg
from instseg.cli.main import app

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dsb2018_sample"
COMMANDS = ["train", "eval", "predict", "models", "info", "convert", "viz", "serve"]


def test_top_level_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    listed = {line.split()[0] for line in result.output.splitlines() if line.startswith("  ") and line.split()}
    assert set(COMMANDS) <= listed, result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help_on_the_assembled_app(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    assert f"instseg {command}" in " ".join(result.output.split()) or f"{command} [" in result.output, result.output
    assert "Traceback" not in result.output and "--help" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["segment-everything"])
    assert result.exit_code == 2 and "segment-everything" in result.output


def test_models_lists_the_registry() -> None:
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    names = result.output.split()
    assert names == instseg.list_models() and len(names) >= 5
    assert "yolact_resnet18_fpn" in names or any(n.startswith("yolact") for n in names)
    filtered = CliRunner().invoke(app, ["models", "yolact"])
    assert filtered.exit_code == 0
    assert filtered.output.split() == [n for n in names if "yolact" in n] and filtered.output.split()
    none = CliRunner().invoke(app, ["models", "no-such-model-name"])
    assert none.exit_code == 0 and none.output.strip() == ""


def _one_image_sample(root: Path) -> tuple[Path, dict]:
    """A copy of the shipped sample reduced to its first image (the demo's data layout)."""
    data = json.loads((SAMPLE / "annotations" / "instances_sample.json").read_text())
    image = data["images"][0]
    data = {**data, "images": [image], "annotations": [a for a in data["annotations"] if a["image_id"] == image["id"]]}
    (root / "annotations").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "annotations" / "instances_sample.json").write_text(json.dumps(data))
    shutil.copy(SAMPLE / "images" / image["file_name"], root / "images" / image["file_name"])
    return root, data


def paint_by_the_rule(masks: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Label map where each pixel takes the smallest object covering it (equal areas: the later one), id = index + 1."""
    out = np.zeros(shape, dtype=np.int64)
    best = np.full(shape, np.inf)
    for k, m in enumerate(masks):
        area = float(m.sum())
        take = m & (area <= best)
        out[take], best[take] = k + 1, area
    return out


def check_results_match_label_map(results: list[dict], label_map: np.ndarray) -> None:
    """Every result's RLE, area and box agree with its mask, and the label map is those masks painted by the rule."""
    from pycocotools import mask as mask_utils

    masks = [mask_utils.decode(r["segmentation"]).astype(bool) for r in results]
    for r, m in zip(results, masks, strict=True):
        ys, xs = np.nonzero(m)
        assert r["area"] == pytest.approx(m.sum())
        assert r["bbox"] == pytest.approx([xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()])
    assert np.array_equal(label_map.astype(np.int64), paint_by_the_rule(masks, label_map.shape))


def test_demo_main_path_on_one_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd) -> None:
    from instseg import demo
    from instseg.engine.checkpoint import default_weights_path

    sample, data = _one_image_sample(tmp_path / "sample")
    out = tmp_path / "demo_out"
    monkeypatch.setattr(sys, "argv", ["instseg.demo", "--out", str(out), "--sample", str(sample)])
    demo.main()
    printed = capfd.readouterr().out
    for step in ("$ instseg info", "$ instseg viz", "$ instseg convert --from coco --to labels"):
        assert step in printed
    image = data["images"][0]
    stem = Path(image["file_name"]).stem
    shape = (image["height"], image["width"])
    if default_weights_path().is_file():
        assert "$ instseg predict" in printed and "$ instseg eval" in printed and "dsb@0.5:0.95" in printed
        results = json.loads((out / "predictions" / "results.json").read_text())
        assert len(results) >= 10 and {r["image_id"] for r in results} == {image["id"]}
        # the results json and the label map written beside it describe the same objects, id i + 1 = entry i
        label_map = np.asarray(Image.open(out / "predictions" / "labels" / f"{stem}.png"))
        assert label_map.shape == shape and int(label_map.max()) == len(results)
        check_results_match_label_map(results, label_map)
    # the annotations converted to a label image and to YOLO hold every annotated object of the sample image
    label_map = np.asarray(Image.open(out / "as_label_images" / "labels" / f"{stem}.png"))
    assert label_map.shape == shape and len(np.unique(label_map)) - 1 == len(data["annotations"])
    yolo = (out / "as_yolo" / "labels" / f"{stem}.txt").read_text().splitlines()
    assert len(yolo) == len(data["annotations"])
    assert (out / "annotations_overlay" / f"{stem}_overlay.png").is_file()
