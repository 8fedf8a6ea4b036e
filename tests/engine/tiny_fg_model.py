"""A tiny foreground-map model, registered as ``tiny_fg_test``, so engine tests do not depend on a real method.

Importable by name (``model.module="tiny_fg_model"``) from subprocesses when ``tests/engine`` is on
``PYTHONPATH``, which is how the DDP test and the reload-from-checkpoint tests rebuild it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor, nn

from instseg.methods.segmenter import InstanceSegmenter
from instseg.registry import register_model
from instseg.structures import ImageBatch, Instances


class TinyFgSegmenter(InstanceSegmenter):
    """conv-BN-ReLU-conv predicting a foreground logit per pixel; instances are its connected components.

    BatchNorm is there on purpose: it gives the EMA buffers to average and the optimiser norm parameters to
    exempt from weight decay. ``nan_at_call`` makes ``loss`` return NaN from that call on (tests of the guard).
    """

    def __init__(
        self,
        num_classes: int = 1,
        hidden: int = 8,
        nan_at_call: int | None = None,
        min_size: int | None = None,
        max_size: int | None = None,
    ) -> None:
        super().__init__(
            num_classes, pixel_mean=(110.0,) * 3, pixel_std=(60.0,) * 3, min_size=min_size, max_size=max_size
        )
        self.body = nn.Sequential(
            nn.Conv2d(3, hidden, 3, padding=1), nn.BatchNorm2d(hidden), nn.ReLU(), nn.Conv2d(hidden, 1, 1)
        )
        self.nan_at_call = nan_at_call
        self.loss_calls = 0

    def forward(self, images: ImageBatch, targets: list[Instances] | None = None) -> dict[str, Tensor]:
        """``fg_logits``: Tensor[B, 1, H, W] over the padded batch."""
        return {"fg_logits": self.body(self.normalize(images))}

    def loss(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        """Binary cross-entropy against the union of the target masks, over the unpadded pixels."""
        logits = outputs["fg_logits"]  # [B, 1, H, W]
        goal = torch.zeros_like(logits)
        valid = torch.zeros_like(logits)
        for i, target in enumerate(targets):
            h, w = target.image_size
            valid[i, :, :h, :w] = 1.0
            if target.masks is not None and len(target) > 0:
                goal[i, 0, :h, :w] = target.masks.any(dim=0).float()
        per_pixel = F.binary_cross_entropy_with_logits(logits.float(), goal, reduction="none")
        loss = (per_pixel * valid).sum() / valid.sum().clamp(min=1.0)
        self.loss_calls += 1
        if self.nan_at_call is not None and self.loss_calls >= self.nan_at_call:
            loss = loss * float("nan")
        return {"loss_fg": loss, "loss_zero": logits.sum() * 0.0}

    def postprocess(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        """One instance per connected foreground component (score: its mean probability), at the original size."""
        probs = outputs["fg_logits"].float().sigmoid()
        results = []
        for i, ((h, w), (oh, ow)) in enumerate(zip(images.image_sizes, images.original_sizes, strict=True)):
            prob = probs[i : i + 1, :, :h, :w]
            if (h, w) != (oh, ow):
                prob = F.interpolate(prob, size=(oh, ow), mode="bilinear", align_corners=False)
            prob_np = prob[0, 0].cpu().numpy()
            components, count = ndimage.label(prob_np > 0.5)
            count = min(count, 50)
            masks = components[None] == np.arange(1, count + 1)[:, None, None]  # [N, oh, ow]
            scores = [float(prob_np[m].mean()) for m in masks]
            results.append(
                Instances(
                    (oh, ow),
                    masks=torch.from_numpy(masks),
                    labels=torch.zeros(count, dtype=torch.int64),
                    scores=torch.tensor(scores, dtype=torch.float32),
                )
            )
        return results


@register_model
def tiny_fg_test(num_classes: int = 1, **kwargs: Any) -> TinyFgSegmenter:
    """The engine tests' model (see the module docstring)."""
    return TinyFgSegmenter(num_classes=num_classes, **kwargs)
