"""Registered watershed models: ``watershed_unet`` (from scratch), ``watershed_resnet18``, ``watershed_resnet34``."""

from __future__ import annotations

from torch import nn

from instseg.methods.dense_segmenter import build_on_backbone_unet, input_normalization
from instseg.methods.watershed.head import WatershedHead
from instseg.methods.watershed.loss import WatershedLoss
from instseg.methods.watershed.model import WatershedSegmenter
from instseg.methods.watershed.postprocess import WatershedPostprocessor
from instseg.necks.unet import SmallUNet
from instseg.registry import register_model


def build_watershed(
    network: nn.Module,
    num_classes: int = 1,
    min_size: int | None = None,
    max_size: int | None = None,
    imagenet_normalization: bool = False,
    norm: str = "bn",
    fg_threshold: float = 0.5,
    seed_threshold: float = 0.5,
    seed_method: str = "threshold",
    min_area: int = 8,
    score_threshold: float = 0.5,
    distance_weight: float = 5.0,
    per_image_normalization: bool = True,
) -> WatershedSegmenter:
    """Assemble a ``WatershedSegmenter`` around ``network`` (any module with an ``out_channels`` attribute).

    ``imagenet_normalization`` (for ImageNet-pretrained networks) normalises with ImageNet statistics; otherwise
    the microscopy rule applies
    (per-image 1..99.8 percentile normalisation, see ``instseg.methods.dense_segmenter.input_normalization``) unless
    ``per_image_normalization=False``, which keeps the fixed 0..255 -> 0..1 scaling: tiles of one large image
    then see the same intensities, and an empty dark image is not stretched until its noise looks like cells.
    """
    head = WatershedHead(int(network.out_channels), num_classes, norm=norm)  # type: ignore[arg-type]
    post = WatershedPostprocessor(
        fg_threshold, seed_threshold, seed_method, min_area=min_area, score_threshold=score_threshold
    )
    return WatershedSegmenter(
        network,
        head,
        WatershedLoss(distance_weight=distance_weight),
        post,
        num_classes=num_classes,
        **input_normalization(imagenet_normalization, per_image_normalization)._asdict(),
        min_size=min_size,
        max_size=max_size,
    )


@register_model
def watershed_unet(
    num_classes: int = 1,
    min_size: int | None = None,
    max_size: int | None = None,
    base_channels: int = 32,
    depth: int = 4,
    norm: str = "bn",
    **options: float | int | str,
) -> WatershedSegmenter:
    """Watershed on a U-Net trained from scratch (``depth`` poolings, widths ``base_channels * 2**i``).

    Native resolution by default (``min_size``/``max_size`` None), which suits microscopy; ``options`` go to
    ``build_watershed`` (thresholds, ``min_area``, ``seed_method``, ``distance_weight``).
    """
    network = SmallUNet(3, base_channels, depth, norm)
    return build_watershed(network, num_classes, min_size, max_size, norm=norm, **options)  # type: ignore[arg-type]


def _resnet_watershed(
    name: str,
    num_classes: int,
    min_size: int | None,
    max_size: int | None,
    pretrained_backbone: bool,
    options: dict[str, float | int | str],
) -> WatershedSegmenter:
    """Watershed on ``backbone_unet(name)``: a ResNet encoder under a U-Net decoder with a full-resolution skip
    (normalisation choice recorded for offline rebuilds, see ``build_on_backbone_unet``)."""
    return build_on_backbone_unet(build_watershed, name, num_classes, min_size, max_size, pretrained_backbone, options)


@register_model
def watershed_resnet18(
    num_classes: int = 1,
    min_size: int | None = None,
    max_size: int | None = None,
    pretrained_backbone: bool = False,
    **options: float | int | str,
) -> WatershedSegmenter:
    """Watershed on a ResNet-18 U-Net (ImageNet weights downloaded by torchvision only if ``pretrained_backbone``)."""
    return _resnet_watershed("resnet18", num_classes, min_size, max_size, pretrained_backbone, options)


@register_model
def watershed_resnet34(
    num_classes: int = 1,
    min_size: int | None = None,
    max_size: int | None = None,
    pretrained_backbone: bool = False,
    **options: float | int | str,
) -> WatershedSegmenter:
    """Watershed on a ResNet-34 U-Net (ImageNet weights downloaded by torchvision only if ``pretrained_backbone``)."""
    return _resnet_watershed("resnet34", num_classes, min_size, max_size, pretrained_backbone, options)
