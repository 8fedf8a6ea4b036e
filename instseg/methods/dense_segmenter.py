"""``DenseSegmenter``: the base of the bottom-up methods (a dense network + a per-pixel head, objects found after).

Watershed and pixel-embedding models share everything but their head, loss and post-processor: a network maps the
image to full-resolution features, optionally after a per-image percentile normalisation, and the head turns them
into per-pixel maps. They also share the input rule their builders pick (``input_normalization``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

from torch import Tensor, nn

from instseg.methods.segmenter import IMAGENET_MEAN, IMAGENET_STD, InstanceSegmenter
from instseg.necks.unet import backbone_unet
from instseg.ops.intensity import percentile_normalize
from instseg.structures import ImageBatch, Instances

# Microscopy default: the base class divides raw 0..255 pixels by 255, then ``percentile_normalize`` maps each
# image's 1st..99.8th intensity percentiles to 0..1 (robust to 8/16-bit data, exposure and stain strength).
UNIT_MEAN = (0.0, 0.0, 0.0)
UNIT_STD = (255.0, 255.0, 255.0)
MICROSCOPY_PERCENTILES = (1.0, 99.8)

Postprocessor = Callable[[dict[str, Tensor], ImageBatch], list[Instances]]


class InputNormalization(NamedTuple):
    """Pixel statistics (0..255 scale) and per-image percentiles (None: none) a dense model normalises with."""

    pixel_mean: Sequence[float]
    pixel_std: Sequence[float]
    percentiles: tuple[float, float] | None


def input_normalization(imagenet: bool, per_image: bool = True) -> InputNormalization:
    """ImageNet statistics (for a network pretrained on ImageNet); otherwise the microscopy rule (0..255 -> 0..1,
    then the per-image 1..99.8 percentiles to 0..1 unless ``per_image`` is False)."""
    if imagenet:
        return InputNormalization(IMAGENET_MEAN, IMAGENET_STD, None)
    return InputNormalization(UNIT_MEAN, UNIT_STD, MICROSCOPY_PERCENTILES if per_image else None)


Segmenter = TypeVar("Segmenter", bound="DenseSegmenter")


def build_on_backbone_unet(
    assemble: Callable[..., Segmenter],
    backbone_name: str,
    num_classes: int,
    min_size: int | None,
    max_size: int | None,
    pretrained_backbone: bool,
    options: dict[str, Any],
) -> Segmenter:
    """``assemble(network, num_classes, min_size, max_size, imagenet_normalization, **options)`` on
    ``backbone_unet(backbone_name)``: the shared body of the bottom-up ResNet builders.

    ImageNet normalisation follows ``pretrained_backbone`` unless ``options`` set ``imagenet_normalization``; the
    choice is recorded in ``rebuild_kwargs`` so that an offline rebuild (no weights fetched) keeps it."""
    options = dict(options)
    imagenet = bool(options.pop("imagenet_normalization", pretrained_backbone))
    network = backbone_unet(backbone_name, pretrained_backbone)
    model = assemble(network, num_classes, min_size, max_size, imagenet, **options)
    model.rebuild_kwargs = {"imagenet_normalization": imagenet}
    return model


class DenseSegmenter(InstanceSegmenter):
    """Bottom-up instance segmentation from per-pixel maps.

    ``forward(images, targets=None) -> head(network(x))``, where ``x`` is ``normalize(images)`` (Tensor[B, 3, H, W]
    from the raw 0..255 pixels), then mapped by ``percentile_normalize`` when ``percentiles`` is given; ``network``
    is any module mapping it to full-resolution features (e.g. ``instseg.necks.unet.UNet``). ``loss`` is
    ``criterion(outputs, targets)`` and ``postprocess`` is
    ``postprocessor(outputs, images)``; subclasses document the output keys of their head.
    """

    inference_channels_last = True

    def __init__(
        self,
        network: nn.Module,
        head: nn.Module,
        criterion: nn.Module,
        postprocessor: Postprocessor,
        num_classes: int = 1,
        pixel_mean: Sequence[float] = UNIT_MEAN,
        pixel_std: Sequence[float] = UNIT_STD,
        percentiles: tuple[float, float] | None = MICROSCOPY_PERCENTILES,
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

    def network_input(self, images: ImageBatch) -> Tensor:
        """What the network sees: Tensor[B, 3, H, W], normalised, then per-image percentile-mapped when set."""
        x = self.normalize(images)  # [B, 3, H, W] from raw 0..255 pixels
        if self.percentiles is not None:
            x = percentile_normalize(x, images.image_sizes, *self.percentiles)
        return x

    def forward(self, images: ImageBatch, targets: list[Instances] | None = None) -> dict[str, Tensor]:
        return self.head(self.network(self.network_input(images)))

    def loss(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        return self.criterion(outputs, targets)

    def postprocess(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        return self.postprocessor(outputs, images)
