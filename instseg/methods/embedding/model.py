"""``EmbeddingSegmenter``: U-Net pixel embeddings + foreground/seed maps, clustered into objects by seed-and-grow."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from instseg.methods.embedding.head import EmbeddingHead
from instseg.methods.embedding.loss import EmbeddingLoss
from instseg.methods.embedding.postprocess import EmbeddingPostprocessor
from instseg.methods.segmenter import InstanceSegmenter
from instseg.necks.unet import percentile_normalize
from instseg.structures import ImageBatch, Instances

# Microscopy default: the base class divides raw 0..255 pixels by 255, then ``percentile_normalize`` maps each
# image's 1st..99.8th intensity percentiles to 0..1 (robust to 8/16-bit data, exposure and stain strength).
UNIT_MEAN = (0.0, 0.0, 0.0)
UNIT_STD = (255.0, 255.0, 255.0)


class EmbeddingSegmenter(InstanceSegmenter):
    """Bottom-up instance segmentation with the discriminative loss (De Brabandere et al. 2017): every pixel
    gets an embedding, pixels of one object are pulled together and objects pushed apart, and
    ``EmbeddingPostprocessor`` groups foreground pixels around seeds.

    ``forward(images, targets=None) -> dict`` with ``embedding`` Tensor[B, E, H, W], ``fg_logits`` and
    ``seed_logits`` Tensor[B, 1, H, W] and, when ``num_classes > 1``, ``class_logits`` Tensor[B, K, H, W], all
    at the padded input size. ``network`` is any module mapping Tensor[B, 3, H, W] to full-resolution features
    (e.g. ``instseg.necks.unet.UNet``).
    """

    def __init__(
        self,
        network: nn.Module,
        head: EmbeddingHead,
        criterion: EmbeddingLoss,
        postprocessor: EmbeddingPostprocessor,
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
