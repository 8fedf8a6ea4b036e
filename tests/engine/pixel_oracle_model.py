"""A BatchNorm-free pixel model registered as ``pixel_oracle_test``: its loss is the mean over images of each
image's mean BCE, so one batch of 2 and two batches of 1 (accumulated, or on 2 DDP ranks) give the same gradient.

Importable by name (``model.module="pixel_oracle_model"``) from subprocesses when ``tests/engine`` is on
``PYTHONPATH``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor, nn

from instseg.engine.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from instseg.methods.segmenter import InstanceSegmenter
from instseg.registry import register_model
from instseg.structures import ImageBatch, Instances


class PixelOracleModel(InstanceSegmenter):
    """A 1x1 then 3x3 conv predicting a foreground logit; one instance per image: the foreground above 0.5."""

    def __init__(self, num_classes: int = 1, size_divisibility: int = 1) -> None:
        super().__init__(num_classes=num_classes, size_divisibility=size_divisibility)
        self.body = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Tanh(), nn.Conv2d(4, 1, 3, padding=1))

    def forward(self, images: ImageBatch, targets: list[Instances] | None = None) -> dict[str, Tensor]:
        """``fg_logits`` Tensor[B, 1, H, W] (the model scales its raw 0..255 input itself)."""
        return {"fg_logits": self.body(images.tensor / 255.0)}

    def loss(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        """Per-image mean BCE (over the unpadded pixels) against the union of the masks, averaged over images."""
        per_image = []
        for logits, target in zip(outputs["fg_logits"], targets, strict=True):
            h, w = target.image_size
            goal = torch.zeros((1, h, w))
            if target.masks is not None and len(target):
                goal = target.masks.any(dim=0).float()[None]
            per_image.append(F.binary_cross_entropy_with_logits(logits[:, :h, :w], goal.to(logits.device)))
        return {"loss_fg": torch.stack(per_image).mean()}

    def postprocess(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        """Objects found by a fixed colour rule (pixels far from the image's median colour, connected components),
        each scored by the learned mean foreground probability inside it: the figures depend on the weights."""
        results = []
        sizes = zip(images.image_sizes, images.original_sizes, strict=True)
        for i, (logits, ((h, w), (oh, ow))) in enumerate(zip(outputs["fg_logits"], sizes, strict=True)):
            assert (h, w) == (oh, ow), "this model does not resize"
            pixels = images.tensor[i, :, :h, :w].cpu().numpy()  # [3, h, w]
            far = ndimage.binary_opening(np.abs(pixels - np.median(pixels, axis=(1, 2), keepdims=True)).sum(0) > 120)
            components, count = ndimage.label(far)
            masks = components[None] == np.arange(1, count + 1)[:, None, None]  # [N, h, w]
            prob = logits[0, :h, :w].sigmoid().cpu().numpy()
            scores = torch.tensor([float(prob[m].mean()) for m in masks], dtype=torch.float32)
            labels = torch.zeros(count, dtype=torch.int64)
            results.append(Instances((h, w), masks=torch.from_numpy(masks), labels=labels, scores=scores))
        return results


@register_model
def pixel_oracle_test(num_classes: int = 1, **kwargs: Any) -> PixelOracleModel:
    """The oracle tests' model (see the module docstring)."""
    return PixelOracleModel(num_classes=num_classes, **kwargs)


def ddp_config(batch_size: int, data: str | None = None) -> Config:
    """3 SGD steps of this model without augmentation (so that rank count and batch size are the only change)."""
    return Config(
        name="ddp-oracle",
        model=ModelConfig("pixel_oracle_test", {}, module="pixel_oracle_model"),
        data=DataConfig(train=data, hflip=False, batch_size=batch_size, val_batch_size=1, num_workers=0),
        train=TrainConfig(
            lr=0.5,
            momentum=0.9,
            weight_decay=1e-3,
            max_iters=3,
            warmup_iters=0,
            eval_period=0,
            checkpoint_period=0,
            log_period=1,
            seed=11,
            clip_grad_norm=1.0,
        ),
        eval=EvalConfig(max_dets=100, score_thr=0.0),
    )
