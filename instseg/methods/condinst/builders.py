"""Registered CondInst builders: ``condinst_resnet50`` (the paper's layout) and ``condinst_light_mobilenetv3`` for
CPUs.

Every builder takes ``num_classes``, ``min_size``, ``max_size``, ``pretrained_backbone`` (ImageNet weights fetched
by torchvision) and ``norm`` / ``trainable_layers`` for the backbone, and passes the other keyword arguments to
``build_condinst``. ``SMALL_OBJECTS`` holds settings for crowded images of small objects (nuclei).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from instseg.backbones import Backbone
from instseg.heads import FCOSHead
from instseg.methods.condinst.head import DynamicMaskHead, MaskBranch, sizes_of_interest
from instseg.methods.condinst.loss import CondInstLoss
from instseg.methods.condinst.model import CondInst
from instseg.methods.condinst.postprocess import CondInstPostprocessor
from instseg.methods.torchvision_backbone import build_on_torchvision_backbone
from instseg.necks import fpn_from_stride_8
from instseg.ops.fcos import P3_P6_SIZE_RANGES
from instseg.registry import register_model

# nuclei are 5-60 px: the finest levels take them, and hundreds of detections per image are kept; the mask loss
# samples 100 positives per image (each mask covers the whole stride-4 map: 300 made a CPU step of four 512 px
# images take 7-8 s, two thirds of it in the dynamic masks and their Dice loss)
SMALL_OBJECTS: dict[str, Any] = {
    "size_ranges": ((0, 32), (32, 64), (64, 128), (128, float("inf"))),
    "max_masks_per_image": 100,
    "pre_nms_top_k": 2000,
    "max_detections": 400,
}


def build_condinst(
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
    mask_branch_channels: int = 128,
    mask_branch_convs: int = 4,
    mask_branch_norm: str | None = "bn",
    mask_channels: int = 8,
    dynamic_channels: int = 8,
    dynamic_layers: int = 3,
    size_ranges: Sequence[tuple[float, float]] = P3_P6_SIZE_RANGES,
    radius: float = 1.5,
    max_masks_per_image: int = 100,
    loss_weights: Mapping[str, float] | None = None,
    score_threshold: float = 0.05,
    pre_nms_top_k: int = 1000,
    nms_iou: float = 0.6,
    max_detections: int = 100,
    mask_threshold: float = 0.5,
) -> CondInst:
    """Assemble CondInst on ``backbone``: an FPN over its stride 8, 16, 32 maps plus a max-pooled P6 (levels
    P3-P6), an ``FCOSHead`` predicting each point's dynamic filters (``dynamic_layers`` 1x1 convs of
    ``dynamic_channels``: 169 parameters by default, as the paper), a ``MaskBranch`` of ``mask_branch_convs``
    convs on P3 giving ``mask_channels`` features, ``size_ranges`` one per level (the largest side distance each
    level learns; they also set the relative coordinates' scale, ``sizes_of_interest``)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    neck = fpn_from_stride_8(backbone, fpn_channels, fpn_norm, top_pool=True)
    strides = neck.feature_strides
    if len(size_ranges) != len(strides):
        raise ValueError(f"size_ranges needs one entry per level P3-P6, got {len(size_ranges)}")
    mask_head = DynamicMaskHead(mask_channels, dynamic_channels, dynamic_layers, stride=strides[0])
    head = FCOSHead(
        fpn_channels,
        num_classes,
        strides,
        channels=head_channels,
        num_convs=head_convs,
        norm=head_norm,
        extra_outputs=mask_head.num_params,
    )
    mask_branch = MaskBranch(
        fpn_channels,
        mask_branch_channels,
        out_channels=mask_channels,
        num_convs=mask_branch_convs,
        norm=mask_branch_norm,
    )
    return CondInst(
        backbone,
        neck,
        head,
        mask_branch,
        mask_head,
        CondInstLoss(num_classes, size_ranges, radius, max_masks_per_image, loss_weights),
        CondInstPostprocessor(score_threshold, pre_nms_top_k, nms_iou, max_detections, mask_threshold),
        num_classes,
        sizes_of_interest(size_ranges),
        min_size=min_size,
        max_size=max_size,
    )


def _build(backbone_name: str, num_classes: int, min_size: int | None, max_size: int | None, *args: Any) -> CondInst:
    pretrained, norm, trainable_layers, options = args
    return build_on_torchvision_backbone(
        build_condinst, backbone_name, num_classes, min_size, max_size, pretrained, norm, trainable_layers, options
    )


@register_model
def condinst_resnet50(
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> CondInst:
    """CondInst, ResNet-50-FPN: 256-wide head of four convs per tower, a mask branch of four 128-wide convs, three
    dynamic 1x1 convs of 8 channels (the paper's layout)."""
    return _build("resnet50", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options)


@register_model
def condinst_light_mobilenetv3(
    num_classes: int = 80,
    min_size: int | None = 384,
    max_size: int | None = 512,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> CondInst:
    """A CPU CondInst: MobileNetV3-Large, 96-wide FPN and head of two convs per tower, a mask branch of two
    64-wide convs (BatchNorm: one level, folded for inference); the paper's dynamic head."""
    options = {
        "fpn_channels": 96,
        "head_channels": 96,
        "head_convs": 2,
        "mask_branch_channels": 64,
        "mask_branch_convs": 2,
        **options,
    }
    return _build(
        "mobilenet_v3_large", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options
    )
