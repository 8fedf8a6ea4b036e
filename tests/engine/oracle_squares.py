"""Shared pieces of the training-loop oracles: a fixed 16 x 16 squares data set, a scripted evaluator, a config.

The data set has no augmentation (the same pixels every epoch) and the pixel oracle model has no BatchNorm, so
two trainers built alike step identically and a test can compute what the loop must log, save and keep.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from instseg.engine.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from instseg.structures import Instances

SIZE = 16


class Squares(torch.utils.data.Dataset):
    """``count`` random 16 x 16 images, each with one rectangular object."""

    def __init__(self, count: int = 4) -> None:
        g = torch.Generator().manual_seed(5)
        self.images = [torch.rand(3, SIZE, SIZE, generator=g) * 255 for _ in range(count)]
        self.masks = []
        for i in range(count):
            m = torch.zeros(1, SIZE, SIZE, dtype=torch.bool)
            m[0, i : i + 8, 2 * i : 2 * i + 6] = True
            self.masks.append(m)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, Instances, dict[str, Any]]:
        target = Instances((SIZE, SIZE), labels=torch.zeros(1, dtype=torch.int64), masks=self.masks[i].clone())
        return self.images[i].clone(), target, {"image_id": i + 1, "original_size": (SIZE, SIZE)}


class Scripted:
    """An evaluator returning the next figure of a script at each evaluation (what "best" is, decided by the test)."""

    def __init__(self, values: list[float]) -> None:
        self.values = list(values)
        self.processed = 0
        self.calls = 0

    def reset(self) -> None:
        self.processed = 0

    def process(self, metas: Any, predictions: Any) -> None:
        self.processed += len(predictions)

    def evaluate(self) -> dict[str, float]:
        self.calls += 1
        return {"score": self.values.pop(0), "images": float(self.processed)}


def squares_config(**train: Any) -> Config:
    """SGD on the pixel oracle model, 4 steps, evaluation and ``last.pt`` every 2 steps, a log row every step."""
    batch_size = train.pop("batch_size", 1)
    settings: dict[str, Any] = {
        "optimizer": "sgd", "lr": 0.5, "momentum": 0.9, "weight_decay": 1e-3, "max_iters": 4, "warmup_iters": 0,
        "eval_period": 2, "checkpoint_period": 2, "log_period": 1, "seed": 7, "best_metric": "score",
    }  # fmt: skip
    settings.update(train)
    return Config(
        name="oracle",
        model=ModelConfig("pixel_oracle_test", {}),
        data=DataConfig(batch_size=batch_size, val_batch_size=2, num_workers=0),
        train=TrainConfig(**settings),
        eval=EvalConfig(),
    )
