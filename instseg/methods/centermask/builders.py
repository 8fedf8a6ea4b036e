"""Registered CenterMask builders: ``centermask_resnet18_fpn`` (from scratch on small data sets) and
``centermask_resnet50_fpn``.

Every builder takes ``num_classes``, ``min_size``, ``max_size``, ``pretrained_backbone`` (ImageNet weights fetched
by torchvision) and ``norm`` / ``trainable_layers`` for the backbone, and passes the other keyword arguments to
``build_centermask``. ``SMALL_OBJECTS`` holds settings for crowded images of small objects (nuclei).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torchvision.ops import MultiScaleRoIAlign

from instseg.backbones import Backbone
from instseg.heads import FCOSHead, FCOSLoss, FCOSSelector
from instseg.methods.centermask.head import SpatialAttentionMaskHead
from instseg.methods.centermask.model import CenterMask
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


def build_centermask(
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
    size_ranges: Sequence[tuple[float, float]] = P3_P6_SIZE_RANGES,
    radius: float = 1.5,
    mask_roi_size: int = 14,
    mask_head_channels: int = 256,
    mask_head_convs: int = 4,
    max_masks_per_image: int = 100,
    loss_weights: Mapping[str, float] | None = None,
    score_threshold: float = 0.05,
    pre_nms_top_k: int = 1000,
    nms_iou: float = 0.6,
    max_detections: int = 100,
    mask_threshold: float = 0.5,
) -> CenterMask:
    """Assemble CenterMask on ``backbone``: an FPN over its stride 8, 16, 32 maps plus a max-pooled P6, an
    ``FCOSHead`` (``size_ranges`` one per level), and a ``SpatialAttentionMaskHead`` on ``mask_roi_size`` RoIs
    pooled from P3-P5 (``2 * mask_roi_size`` mask pixels per side); ``max_masks_per_image`` caps its training
    regions."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    neck = fpn_from_stride_8(backbone, fpn_channels, fpn_norm, top_pool=True)
    strides = neck.feature_strides
    if len(size_ranges) != len(strides):
        raise ValueError(f"size_ranges needs one entry per level P3-P6, got {len(size_ranges)}")
    head = FCOSHead(fpn_channels, num_classes, strides, channels=head_channels, num_convs=head_convs, norm=head_norm)
    # P6 is a max-pool of P5 with no detail of its own: masks are pooled from P3-P5, as Mask R-CNN's P2-P5
    pool = MultiScaleRoIAlign(featmap_names=neck.feature_names[:-1], output_size=mask_roi_size, sampling_ratio=2)
    return CenterMask(
        backbone,
        neck,
        head,
        FCOSLoss(num_classes, size_ranges, radius),  # unweighted: CenterMask.loss weights every term
        FCOSSelector(score_threshold, pre_nms_top_k, nms_iou, max_detections),
        pool,
        SpatialAttentionMaskHead(fpn_channels, num_classes, mask_head_channels, mask_head_convs),
        num_classes,
        max_masks_per_image=max_masks_per_image,
        min_size=min_size,
        max_size=max_size,
        mask_threshold=mask_threshold,
        loss_weights=loss_weights,
    )


def _build(backbone_name: str, num_classes: int, min_size: int | None, max_size: int | None, *args: Any) -> CenterMask:
    pretrained, norm, trainable_layers, options = args
    return build_on_torchvision_backbone(
        build_centermask, backbone_name, num_classes, min_size, max_size, pretrained, norm, trainable_layers, options
    )


@register_model
def centermask_resnet18_fpn(
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> CenterMask:
    """CenterMask, ResNet-18-FPN: a light model that trains from scratch on small data sets."""
    return _build("resnet18", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options)


@register_model
def centermask_resnet50_fpn(
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> CenterMask:
    """CenterMask, ResNet-50-FPN (the paper's ResNet backbone; its VoVNet is not built)."""
    return _build("resnet50", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options)
