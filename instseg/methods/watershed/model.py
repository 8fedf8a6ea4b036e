"""``WatershedSegmenter``: U-Net foreground + distance maps, split into objects by a seeded watershed."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from instseg.methods.segmenter import InstanceSegmenter
from instseg.methods.watershed.head import WatershedHead
from instseg.methods.watershed.loss import WatershedLoss
from instseg.methods.watershed.postprocess import WatershedPostprocessor
from instseg.necks.unet import percentile_normalize
from instseg.structures import ImageBatch, Instances

# Microscopy default: the base class divides raw 0..255 pixels by 255, then ``percentile_normalize`` maps each
# image's 1st..99.8th intensity percentiles to 0..1 (robust to 8/16-bit data, exposure and stain strength).
UNIT_MEAN = (0.0, 0.0, 0.0)
UNIT_STD = (255.0, 255.0, 255.0)


class WatershedSegmenter(InstanceSegmenter):
    """Bottom-up instance segmentation: a dense network predicts foreground and a per-object normalised
    distance map; ``WatershedPostprocessor`` cuts the foreground into objects along the distance valleys.

    ``forward(images, targets=None) -> dict`` with ``fg_logits`` Tensor[B, 1, H, W], ``distance``
    Tensor[B, 1, H, W] in [0, 1] and, when ``num_classes > 1``, ``class_logits`` Tensor[B, K, H, W], all at
    the padded input size. ``network`` is any module mapping Tensor[B, 3, H, W] to full-resolution features
    Tensor[B, head_in, H, W] (e.g. ``instseg.necks.unet.UNet``).
    """

    def __init__(
        self,
        network: nn.Module,
        head: WatershedHead,
        criterion: WatershedLoss,
        postprocessor: WatershedPostprocessor,
        num_classes: int = 1,
        pixel_mean: Sequence[float] = UNIT_MEAN,
        pixel_std: Sequence[float] = UNIT_STD,
        percentiles: tuple[float, float] | None = (1.0, 99.8),
        min_size: int | None = None,
        max_size: int | None = None,
        size_divisibility: int = 32,
    ) -> None:
        super().__init__(num_classes, pixel_mean, pixel_std, min_size, max_size, size_divisibility)
        self.network = network
        self.head = head
        self.criterion = criterion
        self.postprocessor = postprocessor
        self.percentiles = percentiles

    def forward(self, images: ImageBatch, targets: list[Instances] | None = None) -> dict[str, Tensor]:
        x = images.tensor  # [B, 3, H, W], already normalised by ``normalize`` / ``preprocess``
        if self.percentiles is not None:
            x = percentile_normalize(x, images.image_sizes, *self.percentiles)
        return self.head(self.network(x))

    def loss(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        return self.criterion(outputs, targets)

    def postprocess(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        return self.postprocessor(outputs, images)
