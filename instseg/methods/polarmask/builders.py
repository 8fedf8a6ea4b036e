"""Registered PolarMask builders: ``polarmask_resnet50`` (the paper's layout), ``polarmask_resnet18`` and
``polarmask_light_mobilenetv3`` for CPUs.

Every builder takes ``num_classes``, ``min_size``, ``max_size``, ``pretrained_backbone`` (ImageNet weights fetched
by torchvision) and ``norm`` / ``trainable_layers`` for the backbone, and passes the other keyword arguments to
``build_polarmask``. ``SMALL_OBJECTS`` holds settings for crowded images of small objects (nuclei).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from instseg.backbones import Backbone
from instseg.heads import FCOSHead
from instseg.methods.polarmask.loss import PolarMaskLoss
from instseg.methods.polarmask.model import PolarMask
from instseg.methods.polarmask.postprocess import PolarMaskPostprocessor
from instseg.methods.torchvision_backbone import build_on_torchvision_backbone
from instseg.necks import fpn_from_stride_8
from instseg.ops.fcos import P3_P6_SIZE_RANGES
from instseg.registry import register_model

# nuclei are 5-60 px: the finest levels take them, and hundreds of detections per image are kept
SMALL_OBJECTS: dict[str, Any] = {
    "size_ranges": ((0, 32), (32, 64), (64, 128), (128, float("inf"))),
    "pre_nms_top_k": 2000,
    "max_detections": 400,
}


def build_polarmask(
    backbone: Backbone,
    num_classes: int,
    min_size: int | None = 512,
    max_size: int | None = 512,
    *,
    n_rays: int = 36,
    fpn_channels: int = 256,
    fpn_norm: str | None = None,
    head_channels: int = 256,
    head_convs: int = 4,
    head_norm: str | None = "gn",
    size_ranges: Sequence[tuple[float, float]] = P3_P6_SIZE_RANGES,
    radius: float = 1.5,
    loss_weights: Mapping[str, float] | None = None,
    score_threshold: float = 0.05,
    pre_nms_top_k: int = 1000,
    nms_iou: float = 0.5,
    max_detections: int = 100,
) -> PolarMask:
    """Assemble PolarMask on ``backbone``: an FPN over its stride 8, 16, 32 maps plus a max-pooled P6 (levels
    P3-P6; the paper's P7 only serves objects over 512 px), an ``FCOSHead`` with ``n_rays`` extra outputs
    (36 as the paper), ``size_ranges`` one per level (the largest side distance each level learns)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    neck = fpn_from_stride_8(backbone, fpn_channels, fpn_norm, top_pool=True)
    if len(size_ranges) != len(neck.feature_strides):
        raise ValueError(f"size_ranges needs one entry per level P3-P6, got {len(size_ranges)}")
    head = FCOSHead(fpn_channels, num_classes, neck.feature_strides, head_channels, head_convs, head_norm, n_rays)
    return PolarMask(
        backbone,
        neck,
        head,
        PolarMaskLoss(num_classes, n_rays, size_ranges, radius, loss_weights),
        PolarMaskPostprocessor(score_threshold, pre_nms_top_k, nms_iou, max_detections),
        num_classes,
        min_size=min_size,
        max_size=max_size,
    )


def _build(backbone_name: str, num_classes: int, min_size: int | None, max_size: int | None, *args: Any) -> PolarMask:
    pretrained, norm, trainable_layers, options = args
    return build_on_torchvision_backbone(
        build_polarmask, backbone_name, num_classes, min_size, max_size, pretrained, norm, trainable_layers, options
    )


@register_model
def polarmask_resnet50(
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> PolarMask:
    """PolarMask, ResNet-50-FPN, 36 rays, 256-wide head of four convs per tower (the paper's layout)."""
    return _build("resnet50", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options)


@register_model
def polarmask_resnet18(
    num_classes: int = 80,
    min_size: int | None = 512,
    max_size: int | None = 512,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> PolarMask:
    """PolarMask, ResNet-18-FPN, 128-wide head of two convs per tower."""
    options = {"fpn_channels": 128, "head_channels": 128, "head_convs": 2, **options}
    return _build("resnet18", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options)


@register_model
def polarmask_light_mobilenetv3(
    num_classes: int = 80,
    min_size: int | None = 384,
    max_size: int | None = 512,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> PolarMask:
    """A CPU PolarMask: MobileNetV3-Large, 96-wide FPN and head, two convs per tower."""
    options = {"fpn_channels": 96, "head_channels": 96, "head_convs": 2, **options}
    return _build(
        "mobilenet_v3_large", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options
    )
