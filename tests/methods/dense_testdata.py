"""Synthetic disc images, an F1 score and a short training run, shared by the tests of the bottom-up methods."""

from __future__ import annotations

import numpy as np
import torch

from instseg.methods.segmenter import InstanceSegmenter
from instseg.structures import ImageBatch, Instances


def discs(num_images: int, size: int = 64, seed: int = 0) -> list[tuple[torch.Tensor, Instances]]:
    """Bright discs (radius 5..9, may touch or overlap) on a noisy dark background, like fluorescent nuclei."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    items = []
    for _ in range(num_images):
        label_map = np.zeros((size, size), np.int64)
        for k in range(1, int(rng.integers(3, 7)) + 1):
            r = rng.uniform(5, 9)
            cy, cx = rng.uniform(r, size - r, 2)
            label_map[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = k
        masks = label_map[None] == np.arange(1, label_map.max() + 1)[:, None, None]
        masks = masks[masks.reshape(len(masks), -1).sum(1) >= 20]
        image = np.clip(40 + 150 * (label_map > 0) + rng.normal(0, 15, label_map.shape), 0, 255).astype(np.float32)
        items.append(
            (torch.from_numpy(image)[None].repeat(3, 1, 1), Instances((size, size), masks=torch.from_numpy(masks)))
        )
    return items


def f1_at_half(predictions: list[Instances], truths: list[Instances]) -> float:
    """F1 at IoU > 0.5 (matches at IoU > 0.5 are one-to-one, so counting them is the optimal matching)."""
    tp = fp = fn = 0
    for pred, truth in zip(predictions, truths, strict=True):
        assert pred.masks is not None and truth.masks is not None
        p, t = pred.masks.flatten(1).float(), truth.masks.flatten(1).float()
        inter = p @ t.T
        iou = inter / (p.sum(1)[:, None] + t.sum(1)[None] - inter).clamp(min=1)
        matched = int((iou > 0.5).sum())
        tp, fp, fn = tp + matched, fp + len(pred) - matched, fn + len(truth) - matched
    return 2 * tp / max(1, 2 * tp + fp + fn)


def batch_with_an_empty_image() -> tuple[ImageBatch, list[Instances]]:
    """A padded batch (64 x 64) of a 48 x 48 disc image and a 40 x 30 image without objects, and their targets."""
    ((image, target),) = discs(1, size=48)
    batch = ImageBatch.from_tensors([image, torch.full((3, 40, 30), 60.0)], 32)
    return batch, [target, Instances.empty((40, 30))]


def train_and_score(model: InstanceSegmenter, steps: int = 100) -> float:
    """Train ``model`` with Adam on ``steps`` batches of 4 synthetic disc images, then its F1 at IoU 0.5 on 8 more."""
    train, test = discs(4 * steps, seed=1), discs(8, seed=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for step in range(steps):
        items = train[step * 4 : step * 4 + 4]
        batch = ImageBatch.from_tensors([image for image, _ in items], 32)
        losses = model.loss(model(batch), [target for _, target in items])
        optimizer.zero_grad()
        sum(losses.values()).backward()  # type: ignore[union-attr]
        optimizer.step()
    model.eval()
    batch = ImageBatch.from_tensors([image for image, _ in test], 32)
    with torch.no_grad():
        predictions = model.postprocess(model(batch), batch)
    return f1_at_half(predictions, [target for _, target in test])
