"""The training loop's bookkeeping against equivalences: accumulate 2 x batch 1 == batch 2, resume keeps the best
value and the earlier metrics.csv rows, ``best_mode="min"`` keeps the lowest figure.

A BatchNorm-free model with a per-image mean loss makes the accumulation equivalence exact (BatchNorm's batch
statistics differ between one batch of 2 and two batches of 1), and a scripted evaluator decides which step is
best, so that a later, worse evaluation must not overwrite ``best.pt``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import torch
from pixel_oracle_model import PixelOracleModel
from torch import Tensor

from instseg.engine.checkpoint import load_checkpoint
from instseg.engine.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from instseg.engine.trainer import Trainer
from instseg.structures import Instances

SIZE = 16


class _Squares(torch.utils.data.Dataset):
    """``count`` random 16 x 16 images, each with one square object (no augmentation: the same pixels every time)."""

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


class _Scripted:
    """An evaluator returning the next figure of a script at each evaluation (what "best" is, decided by the test)."""

    def __init__(self, values: list[float]) -> None:
        self.values = list(values)
        self.processed = 0

    def reset(self) -> None:
        self.processed = 0

    def process(self, metas: Any, predictions: Any) -> None:
        self.processed += len(predictions)

    def evaluate(self) -> dict[str, float]:
        return {"score": self.values.pop(0), "images": float(self.processed)}


def _config(**train: Any) -> Config:
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


def _trainer(cfg: Config, out: Path, script: list[float] | None = None) -> Trainer:
    torch.manual_seed(0)  # the same initial weights in every trainer of a test
    model = PixelOracleModel()
    data = _Squares()
    evaluator = _Scripted(script) if script is not None else None
    return Trainer(cfg, model, data, out, val_set=data if script is not None else None, evaluator=evaluator)


@pytest.mark.parametrize("clip", [None, 0.05])
def test_accumulating_two_batches_of_one_equals_one_batch_of_two(tmp_path: Path, clip: float | None) -> None:
    big = _trainer(_config(batch_size=2, accumulate=1, clip_grad_norm=clip), tmp_path / "big")
    small = _trainer(_config(batch_size=1, accumulate=2, clip_grad_norm=clip), tmp_path / "small")
    start = {k: v.clone() for k, v in big.model.state_dict().items()}
    for _ in range(3):
        a, b = big.train_step(), small.train_step()
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    moved = 0.0
    for key, value in big.model.state_dict().items():
        torch.testing.assert_close(small.model.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)
        moved += float((value - start[key]).abs().sum())
    assert moved > 1e-2  # the steps did change the weights
    assert big.step == small.step == 3


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_resume_keeps_the_best_value_and_the_earlier_rows(tmp_path: Path) -> None:
    cfg = _config()
    straight = tmp_path / "straight"
    _trainer(cfg, straight, [0.9, 0.5]).train()
    best = load_checkpoint(straight / "best.pt")
    assert best["step"] == 2 and best["best"] == {"metric": "score", "value": 0.9, "step": 2}

    split = tmp_path / "split"
    _trainer(cfg, split, [0.9]).train(stop_at=2)
    resumed = _trainer(cfg, split, [0.5])  # fresh weights and a fresh evaluator: everything comes from last.pt
    resumed.train(resume=True)
    assert resumed.best == {"metric": "score", "value": 0.9, "step": 2}
    assert load_checkpoint(split / "best.pt")["step"] == 2  # the worse evaluation at step 4 did not overwrite it
    assert load_checkpoint(split / "last.pt")["best"] == best["best"]
    # metrics.csv keeps the rows written before the interruption: the same steps, losses and figures
    a, b = _rows(straight), _rows(split)
    assert [r["step"] for r in a] == [r["step"] for r in b] == ["1", "2", "2", "3", "4", "4"]
    for ra, rb in zip(a, b, strict=True):
        for key in ("loss", "loss_fg", "lr", "score", "images"):
            if ra.get(key):
                assert float(rb[key]) == pytest.approx(float(ra[key]), rel=1e-6), (ra["step"], key)
            else:
                assert not rb.get(key)
    assert [float(r["images"]) for r in b if r["images"]] == [4.0, 4.0]  # every validation image was processed


@pytest.mark.parametrize(("script", "best_step"), [([0.9, 0.5], 4), ([0.5, 0.9], 2), ([0.5, 0.5], 2)])
def test_best_mode_min_keeps_the_lowest(tmp_path: Path, script: list[float], best_step: int) -> None:
    run = tmp_path / "run"
    trainer = _trainer(_config(best_mode="min"), run, script)
    trainer.train()
    assert trainer.best == {"metric": "score", "value": min(script), "step": best_step}
    assert load_checkpoint(run / "best.pt")["step"] == best_step  # a tie keeps the earlier checkpoint
