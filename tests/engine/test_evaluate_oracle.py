"""``evaluate_model`` by value: it feeds the model what ``predict`` would (the model's own resize), scores at
the original sizes, runs in eval mode on the model's own device and leaves the training mode as it found it;
``evaluate_checkpoint`` refuses data whose categories are not the model's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from engine_testdata import write_synthetic
from oracle_squares import SIZE, Squares
from pixel_oracle_model import PixelOracleModel

from instseg.data.collate import collate_batch
from instseg.engine.checkpoint import save_checkpoint
from instseg.engine.config import Config, ModelConfig
from instseg.engine.config_io import config_to_dict
from instseg.engine.evaluate import evaluate_checkpoint, evaluate_model


class _Recorder:
    """An evaluator keeping every (meta, prediction) pair it was given."""

    def __init__(self) -> None:
        self.resets = 0
        self.seen: list[tuple[dict[str, Any], Any]] = []

    def reset(self) -> None:
        self.resets += 1
        self.seen = []

    def process(self, metas: Any, predictions: Any) -> None:
        self.seen.extend(zip(metas, predictions, strict=True))

    def evaluate(self) -> dict[str, float]:
        return {"images": float(len(self.seen))}


class _Resizing(PixelOracleModel):
    """The pixel oracle model with a resize rule: records the input sizes and mode it ran with."""

    def __init__(self) -> None:
        super().__init__()
        self.min_size, self.max_size, self.size_divisibility = 32, 64, 32
        self.calls: list[tuple[bool, tuple[int, ...], list[tuple[int, int]]]] = []

    def forward(self, images: Any, targets: Any = None) -> dict[str, torch.Tensor]:
        self.calls.append((self.training, tuple(images.tensor.shape), list(images.image_sizes)))
        return super().forward(images, targets)

    def postprocess(self, outputs: dict[str, torch.Tensor], images: Any) -> list[Any]:
        from instseg.structures import Instances

        return [Instances(tuple(size), labels=torch.zeros(0, dtype=torch.int64)) for size in images.original_sizes]


@pytest.mark.parametrize("training", [True, False])
def test_inputs_follow_the_models_rule_and_the_mode_is_restored(training: bool) -> None:
    data = Squares(3)
    loader = [collate_batch([data[0], data[1]]), collate_batch([data[2]])]
    model = _Resizing().train(training)
    evaluator = _Recorder()
    assert evaluate_model(model, loader, evaluator) == {"images": 3.0}  # no device given: the model's own
    assert model.training is training and evaluator.resets == 1
    # 16 x 16 images: short side to 32 (model rule), padded to a multiple of 32
    assert model.calls == [(False, (2, 3, 32, 32), [(32, 32), (32, 32)]), (False, (1, 3, 32, 32), [(32, 32)])]
    assert [m["image_id"] for m, _ in evaluator.seen] == [1, 2, 3]
    assert all(p.image_size == (SIZE, SIZE) for _, p in evaluator.seen)  # scored at the original size


def test_checkpoint_categories_must_be_the_datas(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "data", num_train=1, num_val=2, size=32)
    state = {
        "config": config_to_dict(Config(model=ModelConfig("pixel_oracle_test", {}))),
        "model": PixelOracleModel().state_dict(),
        "classes": {"category_ids": [9], "class_names": ["x"]},
    }
    ckpt = save_checkpoint(state, tmp_path / "m.pt")
    ann = data / "annotations" / "instances_val.json"
    with pytest.raises(ValueError, match=r"category ids \[1\] differ from those checkpoint .*m\.pt was trained on"):
        evaluate_checkpoint(ckpt, ann)
    state["classes"] = {"category_ids": [1], "class_names": ["ellipse"]}
    figures = evaluate_checkpoint(save_checkpoint(state, tmp_path / "ok.pt"), ann, score_thr=0.0)
    assert 0.0 <= figures["segm/AP"] <= 1.0 and "match/F1@0.5" in figures
