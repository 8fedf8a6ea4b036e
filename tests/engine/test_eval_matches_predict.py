"""One input rule: ``instseg eval CKPT --data D`` scores exactly what ``instseg predict CKPT --data D.json`` writes.

For one model of each family (bottom-up: the shipped default; single-shot: YOLACT; top-down: Mask R-CNN, the last
two resizing their input), the checkpoint's own evaluation and the predict-then-evaluate path must agree to the last
digit: both resize by the model's rule and the model normalises inside ``forward``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

import instseg
from instseg.cli.main import app
from instseg.engine.checkpoint import default_weights_path, save_checkpoint
from instseg.engine.config import Config, ModelConfig
from instseg.engine.config_io import config_to_dict

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dsb2018_sample"
KEEP_IMAGES = (1, 3)  # 256x256 and 256x320: different sizes in one run


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sample nuclei images in the COCO folder layout, split ``val``."""
    root = tmp_path_factory.mktemp("dsb_two")
    gt = json.loads((SAMPLE / "annotations" / "instances_sample.json").read_text())
    gt["images"] = [im for im in gt["images"] if im["id"] in KEEP_IMAGES]
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in KEEP_IMAGES]
    (root / "annotations").mkdir()
    (root / "images").mkdir()
    (root / "annotations" / "instances_val.json").write_text(json.dumps(gt))
    for image in gt["images"]:
        shutil.copy(SAMPLE / "images" / image["file_name"], root / "images" / image["file_name"])
    return root


def _checkpoint(name: str, kwargs: dict[str, Any], path: Path) -> Path:
    """A fixed-seed, untrained model saved the way the trainer saves (config + rebuild kwargs + classes)."""
    torch.manual_seed(0)
    model = instseg.create_model(name, **kwargs)
    cfg = Config(model=ModelConfig(name, kwargs))
    state = {
        "config": config_to_dict(cfg),
        "rebuild_kwargs": dict(model.rebuild_kwargs),
        "model": model.state_dict(),
        "classes": {"category_ids": [1], "class_names": ["nucleus"]},
    }
    return save_checkpoint(state, path)


CASES = {
    "bottom-up (shipped default)": None,
    "single-shot (YOLACT)": (
        "yolact_light_mobilenetv3",
        {"num_classes": 1, "min_size": 192, "max_size": 224, "score_threshold": 0.001},
    ),
    "top-down (Mask R-CNN)": ("mask_rcnn_resnet18_fpn", {"num_classes": 1, "min_size": 160, "max_size": 200}),
}


def _run(args: list[str]) -> str:
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_eval_of_checkpoint_equals_eval_of_its_predictions(case: str, data_dir: Path, tmp_path: Path) -> None:
    spec = CASES[case]
    ckpt = default_weights_path() if spec is None else _checkpoint(*spec, tmp_path / "model.pt")
    direct = json.loads(_run(["eval", str(ckpt), "--data", str(data_dir), "--split", "val", "--json"]))
    gt = data_dir / "annotations" / "instances_val.json"
    _run(["predict", str(ckpt), "--data", str(gt), "--out", str(tmp_path / "pred"), "--no-overlays"])
    results = json.loads((tmp_path / "pred" / "results.json").read_text())
    assert results, "the model should detect something on nuclei images, or the comparison proves little"
    two_step = json.loads(_run(["eval", "--gt", str(gt), "--pred", str(tmp_path / "pred" / "results.json"), "--json"]))
    assert direct.keys() == two_step.keys()
    # identical up to float summation order (PQ sums IoUs in a different order across images)
    assert direct == pytest.approx(two_step, rel=1e-12, abs=1e-12)
