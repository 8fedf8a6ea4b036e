"""``InstanceSegmenter``: the base every method shares (normalisation, resize, the three-step contract)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from instseg.ops.resize import resized_shape
from instseg.structures import ImageBatch, Instances

# ImageNet statistics on the 0..255 scale: what pretrained backbones expect.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


class InstanceSegmenter(nn.Module):
    # feed inference batches in channels_last layout: oneDNN convolutions run ~1.5x faster on CPU for plain
    # conv nets (U-Nets); off by default because detectors with RoI ops gain nothing measured
    inference_channels_last: bool = False

    """Base class of every instseg model.

    Subclasses implement the three steps shared by training, evaluation and export:
      - ``forward(images: ImageBatch, targets: list[Instances] | None) -> dict[str, Tensor]`` (raw tensors);
      - ``loss(outputs, targets) -> dict[str, Tensor]`` (``loss_*`` scalars, weights applied inside);
      - ``postprocess(outputs, images) -> list[Instances]`` (at ``images.original_sizes``).
    This class owns what comes before them: pixel normalisation (``pixel_mean``/``pixel_std`` buffers, on the
    0..255 scale) and the resize/padding rule (short side ``min_size``, long side at most ``max_size``, padded
    to ``size_divisibility``); ``predict`` chains everything for one numpy image.
    """

    def __init__(
        self,
        num_classes: int,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
        min_size: int | None = None,
        max_size: int | None = None,
        size_divisibility: int = 32,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.min_size = min_size
        self.max_size = max_size
        self.size_divisibility = size_divisibility
        self.pixel_mean: Tensor
        self.pixel_std: Tensor
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1), False)

    # -- the three steps (subclasses) -------------------------------------------------------------
    def forward(self, images: ImageBatch, targets: list[Instances] | None = None) -> dict[str, Tensor]:
        raise NotImplementedError

    def loss(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        raise NotImplementedError

    def postprocess(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        raise NotImplementedError

    # -- shared pre-processing --------------------------------------------------------------------
    def normalize(self, batch: ImageBatch) -> ImageBatch:
        """Normalise a batch of raw pixels (0..255, as the data loader's collate gives it); padding stays 0."""
        x = (batch.tensor.to(self.pixel_mean.device, torch.float32) - self.pixel_mean) / self.pixel_std
        for i, (h, w) in enumerate(batch.image_sizes):
            x[i, :, h:, :] = 0.0
            x[i, :, :, w:] = 0.0
        return ImageBatch(x, batch.image_sizes, batch.original_sizes)

    def preprocess(self, images: Sequence[Tensor]) -> ImageBatch:
        """Resize (model's rule), normalise and pad images for inference (each Tensor[3, H, W] on 0..255)."""
        device = self.pixel_mean.device
        tensors, originals = [], []
        for image in images:
            h, w = int(image.shape[-2]), int(image.shape[-1])
            originals.append((h, w))
            new_h, new_w = resized_shape(h, w, self.min_size, self.max_size)
            x = image.to(device=device, dtype=torch.float32)
            if (new_h, new_w) != (h, w):
                x = F.interpolate(x[None], size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)[0]
            tensors.append((x - self.pixel_mean) / self.pixel_std)
        batch = ImageBatch.from_tensors(tensors, self.size_divisibility, 0.0, originals)
        if self.inference_channels_last:
            batch.tensor = batch.tensor.contiguous(memory_format=torch.channels_last)
        return batch

    @torch.no_grad()
    def predict(self, image: np.ndarray | Tensor) -> Instances:
        """Segment one image (numpy HxWx3 uint8, HxW 8/16-bit grey, or Tensor[3, H, W] on 0..255)."""
        from instseg.data.image_io import to_rgb_uint8  # the one documented conversion rule

        was_training = self.training
        self.eval()
        try:
            tensor = image if isinstance(image, Tensor) else torch.from_numpy(to_rgb_uint8(image)).permute(2, 0, 1)
            batch = self.preprocess([tensor])
            return self.postprocess(self(batch), batch)[0]
        finally:
            self.train(was_training)

    def fuse_for_inference(self) -> InstanceSegmenter:
        """Fold BatchNorm layers into their convolutions for faster inference (eval mode; returns ``self``).

        The result predicts the same up to rounding but can no longer be trained; see
        ``instseg.methods.batchnorm_folding``.
        """
        from instseg.methods.batchnorm_folding import fuse_conv_batchnorm

        fuse_conv_batchnorm(self, 2 * self.size_divisibility)
        return self
