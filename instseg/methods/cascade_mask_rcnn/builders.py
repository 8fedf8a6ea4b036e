"""Registered Cascade Mask R-CNN builders: ``cascade_mask_rcnn_resnet18_fpn`` (from scratch on small data sets) and
``cascade_mask_rcnn_resnet50_fpn``.

Every builder takes ``num_classes``, ``min_size``, ``max_size``, ``pretrained_backbone`` (ImageNet weights fetched
by torchvision) and ``norm`` / ``trainable_layers`` for the backbone, and passes the other keyword arguments to
``build_cascade_mask_rcnn`` (the ``rpn_*``/``anchor_sizes`` ones on to ``build_pyramid_rpn``), under Mask R-CNN's
names, so a Mask R-CNN recipe carries over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from instseg.backbones import Backbone
from instseg.heads.cascade import (
    STAGE_BOX_WEIGHTS,
    STAGE_IOUS,
    STAGE_LOSS_WEIGHTS,
    CascadeRoIHeads,
    build_cascade_stages,
)
from instseg.methods.cascade_mask_rcnn.model import CascadeMaskRCNN
from instseg.methods.two_stage_segmenter import build_on_torchvision_backbone_with_rpn, pyramid_and_rpn
from instseg.registry import register_model


def build_cascade_mask_rcnn(
    backbone: Backbone,
    num_classes: int,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    *,
    fpn_channels: int = 256,
    fpn_norm: str | None = None,
    stage_ious: Sequence[float] = STAGE_IOUS,
    stage_box_weights: Sequence[Sequence[float]] = STAGE_BOX_WEIGHTS,
    stage_loss_weights: Sequence[float] = STAGE_LOSS_WEIGHTS,
    box_roi_size: int = 7,
    box_head_dim: int = 1024,
    box_score_thresh: float = 0.05,
    box_nms_thresh: float = 0.5,
    box_detections_per_img: int = 100,
    box_batch_size_per_image: int = 512,
    box_positive_fraction: float = 0.25,
    mask_roi_size: int = 14,
    mask_head_channels: int = 256,
    mask_head_convs: int = 4,
    mask_threshold: float = 0.5,
    loss_weights: Mapping[str, float] | None = None,
    **rpn_options: Any,
) -> CascadeMaskRCNN:
    """Assemble Cascade Mask R-CNN on ``backbone``: FPN (+ max-pooled top level), RPN, one box head per stage
    (``stage_ious``, ``stage_box_weights`` and ``stage_loss_weights`` have one entry per stage; the paper's three by
    default) and Mask R-CNN's mask head on the last stage."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    neck, rpn = pyramid_and_rpn(backbone, fpn_channels, fpn_norm, rpn_options)
    names = neck.feature_names[:-1]  # regions are pooled from the FPN levels, not from the max-pooled top
    stages = build_cascade_stages(
        fpn_channels, box_roi_size, box_head_dim, num_classes, stage_ious, stage_box_weights, stage_loss_weights
    )
    roi_heads = CascadeRoIHeads(
        MultiScaleRoIAlign(featmap_names=names, output_size=box_roi_size, sampling_ratio=2),
        stages,
        MultiScaleRoIAlign(featmap_names=names, output_size=mask_roi_size, sampling_ratio=2),
        MaskRCNNHeads(fpn_channels, [mask_head_channels] * mask_head_convs, 1),
        MaskRCNNPredictor(mask_head_channels, mask_head_channels, num_classes + 1),
        batch_size_per_image=box_batch_size_per_image,
        positive_fraction=box_positive_fraction,
        score_thresh=box_score_thresh,
        nms_thresh=box_nms_thresh,
        detections_per_img=box_detections_per_img,
    )
    return CascadeMaskRCNN(
        backbone,
        neck,
        rpn,
        roi_heads,
        num_classes,
        min_size=min_size,
        max_size=max_size,
        mask_threshold=mask_threshold,
        loss_weights=loss_weights,
    )


def _build(
    backbone_name: str, num_classes: int, min_size: int | None, max_size: int | None, *args: Any
) -> CascadeMaskRCNN:
    return build_on_torchvision_backbone_with_rpn(
        build_cascade_mask_rcnn, backbone_name, num_classes, min_size, max_size, *args
    )


@register_model
def cascade_mask_rcnn_resnet18_fpn(
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> CascadeMaskRCNN:
    """Cascade Mask R-CNN, ResNet-18-FPN: a light model that trains from scratch on small data sets."""
    return _build("resnet18", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options)


@register_model
def cascade_mask_rcnn_resnet50_fpn(
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> CascadeMaskRCNN:
    """Cascade Mask R-CNN, ResNet-50-FPN (the paper's backbone)."""
    return _build("resnet50", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options)
