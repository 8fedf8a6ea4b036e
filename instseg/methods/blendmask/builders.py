"""Registered BlendMask builders: ``blendmask_resnet50`` (the paper's layout) and ``blendmask_light_mobilenetv3``
for CPUs.

Every builder takes ``num_classes``, ``min_size``, ``max_size``, ``pretrained_backbone`` (ImageNet weights fetched
by torchvision) and ``norm`` / ``trainable_layers`` for the backbone, and passes the other keyword arguments to
``build_blendmask``. ``SMALL_OBJECTS`` holds settings for crowded images of small objects (nuclei).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from instseg.backbones import Backbone
from instseg.heads import FCOSHead
from instseg.methods.blendmask.head import BasisModule
from instseg.methods.blendmask.loss import BlendMaskLoss
from instseg.methods.blendmask.model import BlendMask
from instseg.methods.blendmask.postprocess import BlendMaskPostprocessor
from instseg.methods.torchvision_backbone import build_on_torchvision_backbone
from instseg.necks import fpn_from_stride_8
from instseg.ops.fcos import P3_P6_SIZE_RANGES
from instseg.registry import register_model

# nuclei are 5-60 px: the finest levels take them, hundreds of masks and detections per image; a nucleus spans a
# few cells of the stride-4 bases, so 7x7 attentions over 28x28 masks lose nothing and cost a quarter of 14x14
SMALL_OBJECTS: dict[str, Any] = {
    "size_ranges": ((0, 32), (32, 64), (64, 128), (128, float("inf"))),
    "attention_size": 7,
    "resolution": 28,
    "max_masks_per_image": 300,
    "pre_nms_top_k": 2000,
    "max_detections": 400,
}


def build_blendmask(
    backbone: Backbone,
    num_classes: int,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    *,
    fpn_channels: int = 256,
    fpn_norm: str | None = None,
    head_channels: int = 256,
    head_convs: int = 4,
    head_norm: str | None = "gn",
    num_bases: int = 4,
    attention_size: int = 14,
    resolution: int = 56,
    bottom_channels: int = 128,
    bottom_levels: int = 3,
    bottom_convs: int = 2,
    bottom_norm: str | None = "bn",
    size_ranges: Sequence[tuple[float, float]] = P3_P6_SIZE_RANGES,
    radius: float = 1.5,
    max_masks_per_image: int = 100,
    loss_weights: Mapping[str, float] | None = None,
    score_threshold: float = 0.05,
    pre_nms_top_k: int = 1000,
    nms_iou: float = 0.6,
    max_detections: int = 100,
    mask_threshold: float = 0.5,
) -> BlendMask:
    """Assemble BlendMask on ``backbone``: an FPN over its stride 8, 16, 32 maps plus a max-pooled P6 (levels
    P3-P6), a ``BasisModule`` of ``num_bases`` bases (K = 4 as the paper) at stride 4 from the ``bottom_levels``
    finest levels, an ``FCOSHead`` predicting ``num_bases`` ``attention_size``-square attentions per point (M = 14
    as the paper), masks blended at ``resolution`` (R = 56 as the paper); ``size_ranges`` one per level."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    neck = fpn_from_stride_8(backbone, fpn_channels, fpn_norm, top_pool=True)
    if len(size_ranges) != len(neck.feature_strides):
        raise ValueError(f"size_ranges needs one entry per level P3-P6, got {len(size_ranges)}")
    basis_stride = neck.feature_strides[0] // 2  # the bottom module upsamples the finest level x2
    bottom = BasisModule(
        fpn_channels,
        num_bases=num_bases,
        channels=bottom_channels,
        num_levels=bottom_levels,
        num_convs=bottom_convs,
        norm=bottom_norm,
    )
    head = FCOSHead(
        fpn_channels,
        num_classes,
        neck.feature_strides,
        channels=head_channels,
        num_convs=head_convs,
        norm=head_norm,
        extra_outputs=num_bases * attention_size * attention_size,
    )
    criterion = BlendMaskLoss(
        num_classes,
        resolution=resolution,
        basis_stride=basis_stride,
        size_ranges=size_ranges,
        radius=radius,
        max_masks_per_image=max_masks_per_image,
        weights=loss_weights,
    )
    postprocessor = BlendMaskPostprocessor(
        resolution=resolution,
        basis_stride=basis_stride,
        score_threshold=score_threshold,
        pre_nms_top_k=pre_nms_top_k,
        nms_iou=nms_iou,
        max_detections=max_detections,
        mask_threshold=mask_threshold,
    )
    return BlendMask(
        backbone,
        neck,
        bottom,
        head,
        criterion,
        postprocessor,
        num_classes,
        attention_size=attention_size,
        min_size=min_size,
        max_size=max_size,
    )


def _build(backbone_name: str, num_classes: int, min_size: int | None, max_size: int | None, *args: Any) -> BlendMask:
    pretrained, norm, trainable_layers, options = args
    return build_on_torchvision_backbone(
        build_blendmask, backbone_name, num_classes, min_size, max_size, pretrained, norm, trainable_layers, options
    )


@register_model
def blendmask_resnet50(
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> BlendMask:
    """BlendMask, ResNet-50-FPN: K = 4 bases, 14x14 attentions, 56x56 masks, 256-wide FCOS head of four convs per
    tower (the paper's R-50 layout)."""
    return _build("resnet50", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options)


@register_model
def blendmask_light_mobilenetv3(
    num_classes: int = 80,
    min_size: int | None = 384,
    max_size: int | None = 512,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> BlendMask:
    """A CPU BlendMask: MobileNetV3-Large, 96-wide FPN and FCOS head (GroupNorm, two convs per tower), a 64-wide
    bottom module (BatchNorm, folded for inference)."""
    options = {"fpn_channels": 96, "head_channels": 96, "head_convs": 2, "bottom_channels": 64, **options}
    return _build(
        "mobilenet_v3_large", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options
    )
