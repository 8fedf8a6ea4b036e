"""Registered star-convex models: ``star_convex_unet`` (from scratch, light) and ``star_convex_resnet18``."""

from __future__ import annotations

from torch import nn

from instseg.methods.dense_segmenter import build_on_backbone_unet, input_normalization
from instseg.methods.star_convex.head import StarConvexHead
from instseg.methods.star_convex.loss import StarConvexLoss
from instseg.methods.star_convex.model import StarConvexSegmenter
from instseg.methods.star_convex.postprocess import StarConvexPostprocessor
from instseg.necks.unet import SmallUNet
from instseg.registry import register_model


def build_star_convex(
    network: nn.Module,
    num_classes: int = 1,
    min_size: int | None = None,
    max_size: int | None = None,
    imagenet_normalization: bool = False,
    n_rays: int = 32,
    norm: str = "bn",
    prob_threshold: float = 0.5,
    nms_threshold: float = 0.4,
    min_area: int = 8,
    max_detections: int = 1000,
    candidate_stride: int = 2,
    skip_covered: bool = True,
    distance_weight: float = 0.2,
    target_stride: int = 2,
    per_image_normalization: bool = True,
) -> StarConvexSegmenter:
    """Assemble a ``StarConvexSegmenter`` around ``network`` (any module with an ``out_channels`` attribute).

    ``n_rays`` directions per pixel (32 as in the paper's 2-D nuclei models); ``prob_threshold`` and
    ``nms_threshold`` (polygon IoU) drive ``StarConvexPostprocessor``, which takes every ``candidate_stride``-th
    pixel per axis as a candidate (and skips those inside kept masks: ``skip_covered``); ``distance_weight`` and
    ``target_stride`` go to ``StarConvexLoss``. The input rule is that of the other bottom-up models
    (``input_normalization``).
    """
    head = StarConvexHead(int(network.out_channels), n_rays=n_rays, num_classes=num_classes, norm=norm)  # type: ignore[arg-type]
    post = StarConvexPostprocessor(prob_threshold, nms_threshold, min_area=min_area, max_detections=max_detections)
    return StarConvexSegmenter(
        network,
        head,
        StarConvexLoss(distance_weight=distance_weight, target_stride=target_stride),
        post,
        num_classes=num_classes,
        **input_normalization(imagenet_normalization, per_image_normalization)._asdict(),
        min_size=min_size,
        max_size=max_size,
    )


@register_model
def star_convex_unet(
    num_classes: int = 1,
    min_size: int | None = None,
    max_size: int | None = None,
    base_channels: int = 32,
    depth: int = 4,
    norm: str = "bn",
    **options: float | int | str,
) -> StarConvexSegmenter:
    """Star-convex polygons on a U-Net trained from scratch (``depth`` poolings, widths ``base_channels * 2**i``).

    Native resolution by default (``min_size``/``max_size`` None), which suits microscopy; ``options`` go to
    ``build_star_convex`` (``n_rays``, thresholds, ``min_area``, loss settings).
    """
    network = SmallUNet(3, base_channels, depth, norm)
    return build_star_convex(network, num_classes, min_size, max_size, norm=norm, **options)  # type: ignore[arg-type]


@register_model
def star_convex_resnet18(
    num_classes: int = 1,
    min_size: int | None = None,
    max_size: int | None = None,
    pretrained_backbone: bool = False,
    **options: float | int | str,
) -> StarConvexSegmenter:
    """Star-convex polygons on a ResNet-18 U-Net (ImageNet weights fetched by torchvision only if
    ``pretrained_backbone``; the normalisation choice is recorded for offline rebuilds)."""
    return build_on_backbone_unet(
        build_star_convex, "resnet18", num_classes, min_size, max_size, pretrained_backbone, options
    )
