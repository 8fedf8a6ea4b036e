"""A padded batch of images plus the sizes needed to undo padding and resizing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class ImageBatch:
    """Images padded to one shape, with each image's size before padding and before any resize.

    ``tensor`` is Tensor[B, C, H, W]; ``image_sizes[i]`` is ``(h, w)`` of image ``i`` inside the padded
    tensor (top-left aligned); ``original_sizes[i]`` is ``(h, w)`` of the image as the user gave it, which
    is where ``postprocess`` maps predictions back to.
    """

    tensor: Tensor
    image_sizes: list[tuple[int, int]]
    original_sizes: list[tuple[int, int]]

    def __post_init__(self) -> None:
        assert self.tensor.dim() == 4, f"ImageBatch.tensor must be [B, C, H, W], got {tuple(self.tensor.shape)}"
        assert len(self.image_sizes) == len(self.original_sizes) == self.tensor.shape[0]

    def __len__(self) -> int:
        return self.tensor.shape[0]

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ImageBatch:
        """Move the pixel tensor to ``device``; sizes stay Python ints."""
        return ImageBatch(self.tensor.to(device, non_blocking=non_blocking), self.image_sizes, self.original_sizes)

    @classmethod
    def from_tensors(
        cls,
        images: Sequence[Tensor],
        size_divisibility: int = 32,
        pad_value: float = 0.0,
        original_sizes: Sequence[tuple[int, int]] | None = None,
    ) -> ImageBatch:
        """Pad images (each Tensor[C, H, W]) bottom/right to a common shape divisible by ``size_divisibility``."""
        if len(images) == 0:
            raise ValueError("ImageBatch.from_tensors needs at least one image")
        channels = {int(im.shape[0]) for im in images}
        if len(channels) != 1:
            raise ValueError(f"images in one batch must have the same number of channels, got {sorted(channels)}")
        sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
        max_h = max(h for h, _ in sizes)
        max_w = max(w for _, w in sizes)
        if size_divisibility > 1:
            max_h = (max_h + size_divisibility - 1) // size_divisibility * size_divisibility
            max_w = (max_w + size_divisibility - 1) // size_divisibility * size_divisibility
        batch = images[0].new_full((len(images), images[0].shape[0], max_h, max_w), pad_value)
        for i, im in enumerate(images):
            batch[i, :, : im.shape[-2], : im.shape[-1]] = im
        originals = list(original_sizes) if original_sizes is not None else list(sizes)
        return cls(batch, sizes, [(int(h), int(w)) for h, w in originals])

    def unpadded(self, index: int) -> Tensor:
        """Image ``index`` without its padding (Tensor[C, h, w])."""
        h, w = self.image_sizes[index]
        return self.tensor[index, :, :h, :w]

    @staticmethod
    def pad_to(tensor: Tensor, height: int, width: int, value: float = 0.0) -> Tensor:
        """Pad the last two dims of ``tensor`` bottom/right to ``(height, width)``."""
        return F.pad(tensor, (0, width - tensor.shape[-1], 0, height - tensor.shape[-2]), value=value)
