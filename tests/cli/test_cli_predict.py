"""``instseg predict``: results json, label maps and overlays; unreadable images reported and skipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from instseg.cli.predict import predict
from instseg.engine.checkpoint import save_checkpoint
from instseg.engine.config import Config, ModelConfig
from instseg.engine.config_io import config_to_dict
from instseg.registry import create_model

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dsb2018_sample"
MODEL_KWARGS = {"num_classes": 1, "base_channels": 4, "depth": 2, "fg_threshold": 0.3, "score_threshold": 0.0}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny watershed model whose foreground bias is raised so that it finds objects."""
    torch.manual_seed(0)
    model = create_model("watershed_unet", **MODEL_KWARGS)
    cfg = Config(name="predict-test", model=ModelConfig(name="watershed_unet", kwargs=dict(MODEL_KWARGS)))
    state = {
        "step": 0,
        "config": config_to_dict(cfg),
        "model": model.state_dict(),
        "classes": {"category_ids": [1], "class_names": ["nucleus"]},
    }
    return save_checkpoint(state, tmp_path_factory.mktemp("ckpt") / "model.pt")


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(predict)
    return app


def test_predict_folder_writes_outputs_and_skips_bad_images(checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    names = sorted(p.name for p in (SAMPLE / "images").iterdir())[:2]
    for name in names:
        shutil.copy(SAMPLE / "images" / name, folder / name)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    out = tmp_path / "out"
    result = CliRunner().invoke(_app(), [str(checkpoint), str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "broken.png" in result.output and "1 unreadable" in result.output
    results = json.loads((out / "results.json").read_text())
    images = json.loads((out / "images.json").read_text())
    assert len(images["images"]) == 2 and images["skipped"] and images["skipped"][0].endswith("broken.png")
    assert all(r["category_id"] == 1 and "segmentation" in r for r in results)
    for name in names:
        stem = Path(name).stem
        label_map = np.asarray(Image.open(out / "labels" / f"{stem}.png"))
        size = Image.open(folder / name).size
        assert label_map.shape == (size[1], size[0])
        assert (out / "overlays" / f"{stem}.png").is_file()
    per_image = {r["image_id"] for r in results}
    assert per_image <= {1, 2}


def test_predict_annotation_file_keeps_its_image_ids(checkpoint: Path, tmp_path: Path) -> None:
    ann = SAMPLE / "annotations" / "instances_sample.json"
    out = tmp_path / "out"
    result = CliRunner().invoke(_app(), [str(checkpoint), "--data", str(ann), "--out", str(out), "--no-overlays"])
    assert result.exit_code == 0, result.output
    gt_ids = {im["id"] for im in json.loads(ann.read_text())["images"]}
    done = json.loads((out / "images.json").read_text())["images"]
    assert {im["id"] for im in done} == gt_ids
    assert {r["image_id"] for r in json.loads((out / "results.json").read_text())} <= gt_ids
    assert not (out / "overlays").exists() or not any((out / "overlays").iterdir())


def test_predict_without_inputs_is_a_clear_error(checkpoint: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), [str(checkpoint), "--out", str(tmp_path)])
    assert result.exit_code != 0 and "give images" in result.output


def test_same_file_names_in_two_folders_and_a_reused_out(checkpoint: Path, tmp_path: Path) -> None:
    name = sorted(p.name for p in (SAMPLE / "images").iterdir())[0]
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(SAMPLE / "images" / name, tmp_path / folder / name)
    out = tmp_path / "out"
    args = [str(checkpoint), str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    stem = Path(name).stem
    assert sorted(p.name for p in (out / "labels").iterdir()) == [f"a__{stem}.png", f"b__{stem}.png"]
    assert sorted(p.name for p in (out / "overlays").iterdir()) == [f"a__{stem}.png", f"b__{stem}.png"]
    (out / "overlays" / "stale.png").write_bytes(b"old")
    again = CliRunner().invoke(_app(), args)
    assert again.exit_code == 2 and "already holds" in again.output and "--overwrite" in again.output
    assert (out / "overlays" / "stale.png").exists()
    forced = CliRunner().invoke(_app(), [*args, "--overwrite", "--no-overlays"])
    assert forced.exit_code == 0, forced.output
    assert not (out / "overlays").exists() and len(list((out / "labels").iterdir())) == 2


def test_misplaced_checkpoint_and_bad_tile_are_usage_errors(checkpoint: Path, tmp_path: Path) -> None:
    image = str(sorted((SAMPLE / "images").iterdir())[0])
    late = CliRunner().invoke(_app(), [image, str(checkpoint), "--out", str(tmp_path / "o1")])
    assert late.exit_code == 2 and "must be the first input" in late.output
    tiny = CliRunner().invoke(_app(), [str(checkpoint), image, "--tile", "10", "--out", str(tmp_path / "o2")])
    assert tiny.exit_code == 2 and "--tile 10" in tiny.output
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_missing_image_and_absent_device_are_one_line_usage_errors(checkpoint: Path, tmp_path: Path) -> None:
    missing = CliRunner().invoke(_app(), [str(checkpoint), str(tmp_path / "nope.png"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "nope.png" in missing.output and "Traceback" not in missing.output
    image = str(sorted((SAMPLE / "images").iterdir())[0])
    gpu = CliRunner().invoke(_app(), [str(checkpoint), image, "--device", "cuda:7", "--out", str(tmp_path / "o")])
    assert gpu.exit_code == 2 and "cuda:7" in gpu.output
