"""Batching of ``(image, Instances, meta)`` items into the padded ``ImageBatch`` a model's ``forward`` takes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from instseg.structures import ImageBatch, Instances

Item = tuple[Tensor, Instances, dict[str, Any]]


def collate_batch(
    batch: Sequence[Item], size_divisibility: int = 32
) -> tuple[ImageBatch, list[Instances], list[dict[str, Any]]]:
    """Stack data-set items into ``(ImageBatch, targets, metas)``.

    The ImageBatch holds raw float pixels on the 0..255 scale (the model normalises them, see
    ``InstanceSegmenter.normalize``), Tensor[B, 3, H, W] padded bottom/right with 0 to a multiple of
    ``size_divisibility``; ``image_sizes`` are the (augmented) sizes before padding and ``original_sizes``
    the ``meta["original_size"]`` of each item (the size predictions are mapped back to). Targets and metas
    are passed through as lists, one per image.
    """
    if len(batch) == 0:
        raise ValueError("collate_batch got an empty batch")
    images, targets, metas = [], [], []
    for index, item in enumerate(batch):
        if not isinstance(item, tuple | list) or len(item) != 3:
            raise TypeError(f"batch item {index} must be (image, target, meta), got {type(item).__name__}")
        image, target, meta = item
        if image.dim() != 3:
            raise ValueError(f"image {meta.get('image_id')} must be [C, H, W], got {tuple(image.shape)}")
        if target.image_size != (int(image.shape[-2]), int(image.shape[-1])):
            raise ValueError(
                f"image {meta.get('image_id')}: target size {target.image_size} differs from image "
                f"size {tuple(image.shape[-2:])}"
            )
        images.append(image.to(torch.float32))
        targets.append(target)
        metas.append(meta)
    originals = [
        tuple(int(v) for v in meta.get("original_size", image.shape[-2:]))
        for meta, image in zip(metas, images, strict=True)
    ]
    batch_images = ImageBatch.from_tensors(
        images,
        size_divisibility=size_divisibility,
        pad_value=0.0,
        original_sizes=originals,  # type: ignore[arg-type]
    )
    return batch_images, targets, metas
