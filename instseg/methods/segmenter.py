"""``InstanceSegmenter``: the base every method shares (normalisation, resize, the three-step contract)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
    """Base class of every instseg model.

    Subclasses implement the three steps shared by training, evaluation and export:
      - ``forward(images: ImageBatch, targets: list[Instances] | None) -> dict[str, Tensor]`` (raw tensors);
      - ``loss(outputs, targets) -> dict[str, Tensor]`` (``loss_*`` scalars, weights applied inside);
      - ``postprocess(outputs, images) -> list[Instances]`` (at ``images.original_sizes``).
    This class owns what comes before them: pixel normalisation (``pixel_mean``/``pixel_std`` buffers, on the
    0..255 scale) and the resize/padding rule (short side ``min_size``, long side at most ``max_size``, padded
    to ``size_divisibility``); ``predict`` chains everything for one numpy image. ``forward`` takes the raw
    0..255 pixels (``preprocess`` or the data loader's collate pads them with 0) and normalises them itself
    (``normalize``), so training, evaluation, prediction and export share one input rule.

    What the model is, declared as attributes and stored in checkpoints:
      - ``class_names`` / ``category_ids``: the training data's categories (label k is ``category_ids[k]``),
        None until a trainer or a checkpoint sets them;
      - ``rebuild_kwargs``: the builder keyword arguments that rebuild this architecture offline, recorded by
        ``instseg.registry.register_model`` for every registered builder.
    """

    # feed inference batches in channels_last layout: oneDNN convolutions run ~1.5x faster on CPU for plain
    # conv nets (U-Nets); off by default because detectors with RoI ops gain nothing measured
    inference_channels_last: bool = False

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
        self.class_names: list[str] | None = None
        self.category_ids: list[int] | None = None
        self.rebuild_kwargs: dict[str, Any] = {}
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

    # -- the input rule ------------------------------------------------------------------------------
    def normalize(self, images: ImageBatch) -> Tensor:
        """Tensor[B, C, H, W] of ``images``' raw 0..255 pixels normalised by ``pixel_mean``/``pixel_std``.

        Called by every subclass's ``forward`` (and nowhere else), so training, evaluation, prediction and export
        see one rule; padding (beyond ``image_sizes``) stays 0 after normalisation.
        """
        x = (images.tensor.to(self.pixel_mean.device, torch.float32) - self.pixel_mean) / self.pixel_std
        for i, (h, w) in enumerate(images.image_sizes):
            x[i, :, h:, :] = 0.0
            x[i, :, :, w:] = 0.0
        return x

    def preprocess(self, images: Sequence[Tensor]) -> ImageBatch:
        """Resize (the model's rule) and pad raw images (each Tensor[3, H, W] on 0..255) into one batch.

        Pixels stay on the 0..255 scale: ``forward`` normalises.
        """
        device = self.pixel_mean.device
        tensors, originals = [], []
        for image in images:
            h, w = int(image.shape[-2]), int(image.shape[-1])
            originals.append((h, w))
            new_h, new_w = resized_shape(h, w, self.min_size, self.max_size)
            x = image.to(device=device, dtype=torch.float32)
            if (new_h, new_w) != (h, w):
                x = F.interpolate(x[None], size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)[0]
            tensors.append(x)
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
