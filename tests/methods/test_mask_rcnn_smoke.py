"""Smoke training: Mask R-CNN ResNet-18-FPN from scratch learns synthetic ellipses (mask AP50 >= 0.5) on CPU.

The recipe (tuned for ~2-3 minutes on one CPU core): one class (ellipses) on 128-pixel images, 800 fresh training
images seen about once (with 64 images the model over-fitted: train AP50 0.93, val 0.37), GroupNorm in the backbone
(batch of 4, from scratch), narrow heads, AdamW 1e-3 with warm-up and cosine decay, 200 steps, through
``instseg.engine.Trainer``; evaluated by ``InstanceEvaluator`` on 24 held-out images.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import instseg
from instseg.data.synthetic import SyntheticShapes
from instseg.engine import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig, Trainer
from instseg.eval import InstanceEvaluator

SHAPES = {"image_size": 128, "num_classes": 1, "min_objects": 2, "max_objects": 5, "size_range": (0.12, 0.25)}
MODEL_KWARGS = {
    "num_classes": 1,
    "min_size": 128,
    "max_size": 128,
    "norm": "gn",
    "fpn_channels": 64,
    "box_head_dim": 256,
    "mask_head_channels": 64,
    "box_batch_size_per_image": 64,
    "anchor_sizes": (16, 32, 64, 128, 256),
    "rpn_pre_nms_top_n_train": 600,
    "rpn_post_nms_top_n_train": 300,
    "rpn_pre_nms_top_n_test": 300,
    "rpn_post_nms_top_n_test": 100,
    "box_detections_per_img": 20,
}


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: the test suite runs two pytest workers on two cores, and oversubscribed OpenMP
    threads made each step several times slower; denormals are flushed (they slowed CPU training ~3x)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_mask_rcnn_r18_learns_synthetic_ellipses(tmp_path: Path, one_thread: None) -> None:
    start = time.perf_counter()
    train_set = SyntheticShapes(num_images=800, seed=1, split="train", **SHAPES)
    val_set = SyntheticShapes(num_images=24, seed=2, split="val", **SHAPES)
    ann_file = val_set.write_coco(tmp_path / "val")
    torch.manual_seed(0)
    model = instseg.create_model("mask_rcnn_resnet18_fpn", **MODEL_KWARGS)
    cfg = Config(
        name="mask_rcnn_smoke",
        model=ModelConfig(name="mask_rcnn_resnet18_fpn", kwargs=dict(MODEL_KWARGS)),
        data=DataConfig(hflip=False, batch_size=4, val_batch_size=8),
        train=TrainConfig(
            optimizer="adamw",
            lr=1e-3,
            weight_decay=1e-4,
            max_iters=200,
            warmup_iters=20,
            warmup_factor=0.01,
            schedule="cosine",
            clip_grad_norm=10.0,
            eval_period=0,
            checkpoint_period=0,
            log_period=50,
        ),
        eval=EvalConfig(max_dets=100, score_thr=0.5),
    )
    evaluator = InstanceEvaluator(ann_file, val_set.category_ids)
    trainer = Trainer(cfg, model, train_set, tmp_path / "run", val_set=val_set, evaluator=evaluator)
    metrics = trainer.train()
    elapsed = time.perf_counter() - start
    print(f"smoke training: {elapsed:.0f} s, segm/AP50 {metrics['segm/AP50']:.3f}, segm/AP {metrics['segm/AP']:.3f}")
    assert metrics["segm/AP50"] >= 0.5, metrics
