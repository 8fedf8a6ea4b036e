"""One rank of the in-process 2-rank DDP oracle (``test_distributed_oracle.py``), started by ``mp.start_processes``.

Each rank checks the
collective helpers by value, then trains the pixel oracle model with ``batch 1 x accumulate 2`` and evaluates with
an evaluator that records which images this rank processed; what only one rank knows goes to ``rank{r}.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from pixel_oracle_model import PixelOracleModel

from instseg.data.coco import CocoDataset
from instseg.engine.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from instseg.engine.distributed import (
    all_gather_object,
    any_true,
    barrier,
    broadcast_object,
    cleanup_distributed,
    get_rank,
    get_world_size,
    init_distributed,
    is_distributed,
    is_main_process,
    launched_by_torchrun,
)
from instseg.engine.rng import seed_everything
from instseg.engine.trainer import Trainer
from instseg.eval.evaluator import InstanceEvaluator


class CountingEvaluator(InstanceEvaluator):
    """The trainer's default evaluator, recording the image ids this rank was given (to check the sharding)."""

    def reset(self) -> None:
        super().reset()
        self.seen: list[int] = []

    def process(self, metas: Any, predictions: Any) -> None:
        self.seen.extend(int(m["image_id"]) for m in metas)
        super().process(metas, predictions)


def oracle_config(batch_size: int, accumulate: int) -> Config:
    """3 SGD steps with momentum, weight decay and clipping; no augmentation; evaluation at steps 2 and 3."""
    return Config(
        name="ddp-oracle",
        model=ModelConfig("pixel_oracle_test", {}),
        data=DataConfig(hflip=False, batch_size=batch_size, val_batch_size=2, num_workers=0),
        train=TrainConfig(
            lr=0.5,
            momentum=0.9,
            weight_decay=1e-3,
            max_iters=3,
            warmup_iters=1,
            eval_period=2,
            checkpoint_period=0,
            log_period=1,
            seed=11,
            clip_grad_norm=0.5,
            accumulate=accumulate,
            best_metric="match/F1@0.5",
        ),
        eval=EvalConfig(max_dets=100, score_thr=0.0),
    )


def build_trainer(cfg: Config, data: Path, out: Path) -> tuple[Trainer, CountingEvaluator]:
    """A trainer over ``data``'s train split, evaluated on its val split, with rank-independent initial weights."""
    train_set = CocoDataset(data / "annotations" / "instances_train.json", data / "images")
    val_set = CocoDataset(data / "annotations" / "instances_val.json", data / "images")
    seed_everything(cfg.train.seed)
    model = PixelOracleModel()
    evaluator = CountingEvaluator(val_set.to_coco_dict(), val_set.category_ids, max_dets=100, score_thr=0.0)
    return Trainer(cfg, model, train_set, out, val_set=val_set, evaluator=evaluator), evaluator


def run_rank(rank: int, port: int, data: str, out: str) -> None:
    """The body of rank ``rank`` of 2 (``mp.start_processes`` passes the rank first); raises on any wrong value."""
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    device = init_distributed("cpu")
    try:
        assert device == torch.device("cpu") and launched_by_torchrun() and is_distributed()
        assert (get_rank(), get_world_size(), is_main_process()) == (rank, 2, rank == 0)
        assert init_distributed("cpu") == device  # a second call is harmless
        assert all_gather_object({"rank": rank, "items": [rank] * rank}) == [
            {"rank": 0, "items": []},
            {"rank": 1, "items": [1]},
        ]
        assert any_true(rank == 1) is True and any_true(rank == 0) is True
        assert any_true(False) is False
        assert broadcast_object(f"from {rank}", src=1) == "from 1" and broadcast_object(rank) == 0
        barrier()
        trainer, evaluator = build_trainer(oracle_config(batch_size=1, accumulate=2), Path(data), Path(out) / "ddp")
        assert trainer.ddp is not None and trainer.stream.sampler.world_size == 2
        metrics = trainer.train()
        Path(out, f"rank{rank}.json").write_text(json.dumps({"seen": evaluator.seen, "metrics": metrics}))
    finally:
        cleanup_distributed()
