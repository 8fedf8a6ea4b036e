"""Registered PANet builders: ``panet_resnet18_fpn`` (trains from scratch on small data sets) and
``panet_resnet50_fpn``.

Every builder takes ``num_classes``, ``min_size``, ``max_size``, ``pretrained_backbone`` (ImageNet weights fetched
by torchvision) and ``norm`` / ``trainable_layers`` for the backbone, and passes the other keyword arguments to
``build_panet`` (the ``rpn_*``/``anchor_sizes`` ones on to ``build_pyramid_rpn``), under Mask R-CNN's names, so
a Mask R-CNN recipe carries over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads

from instseg.backbones import Backbone, norm_layer
from instseg.heads.roi_pooling import AllLevelRoIAlign
from instseg.methods.panet.head import AdaptiveBoxHead, FusedMaskHead
from instseg.methods.panet.model import PANet
from instseg.methods.two_stage_segmenter import build_on_torchvision_backbone_with_rpn, pyramid_and_rpn
from instseg.necks import PathAugmentedFPN
from instseg.registry import register_model


def build_panet(
    backbone: Backbone,
    num_classes: int,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    *,
    fpn_channels: int = 256,
    fpn_norm: str | None = None,
    box_roi_size: int = 7,
    box_head_dim: int = 1024,
    box_score_thresh: float = 0.05,
    box_nms_thresh: float = 0.5,
    box_detections_per_img: int = 100,
    box_fg_iou_thresh: float = 0.5,
    box_bg_iou_thresh: float = 0.5,
    box_batch_size_per_image: int = 512,
    box_positive_fraction: float = 0.25,
    mask_roi_size: int = 14,
    mask_head_channels: int = 256,
    mask_head_convs: int = 4,
    mask_threshold: float = 0.5,
    loss_weights: Mapping[str, float] | None = None,
    **rpn_options: Any,
) -> PANet:
    """Assemble PANet on ``backbone``: FPN + bottom-up path (+ max-pooled top level for the RPN), RPN, then box and
    mask heads pooling every region from all four RoI levels. Defaults follow torchvision's Mask R-CNN."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    fpn, rpn = pyramid_and_rpn(backbone, fpn_channels, fpn_norm, rpn_options)
    neck = PathAugmentedFPN(fpn, norm_layer=norm_layer(fpn_norm) if fpn_norm is not None else None)
    # regions are pooled from the pyramid levels, not from the max-pooled top (which only serves the RPN)
    names, strides = neck.feature_names[:-1], neck.feature_strides[:-1]
    box_pool = AllLevelRoIAlign(names, strides, box_roi_size)
    mask_pool = AllLevelRoIAlign(names, strides, mask_roi_size)
    roi_heads = RoIHeads(
        box_pool,
        AdaptiveBoxHead(len(names), fpn_channels, box_roi_size, box_head_dim),
        FastRCNNPredictor(box_head_dim, num_classes + 1),
        box_fg_iou_thresh,
        box_bg_iou_thresh,
        box_batch_size_per_image,
        box_positive_fraction,
        None,
        box_score_thresh,
        box_nms_thresh,
        box_detections_per_img,
        mask_roi_pool=mask_pool,
        # the fused head returns the logits itself: its fully-connected branch joins the FCN path at the end
        mask_head=FusedMaskHead(
            len(names), fpn_channels, num_classes, mask_roi_size, mask_head_channels, mask_head_convs
        ),
        mask_predictor=nn.Identity(),
    )
    return PANet(
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


def _build(backbone_name: str, num_classes: int, min_size: int | None, max_size: int | None, *args: Any) -> PANet:
    return build_on_torchvision_backbone_with_rpn(build_panet, backbone_name, num_classes, min_size, max_size, *args)


@register_model
def panet_resnet18_fpn(
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> PANet:
    """PANet, ResNet-18-FPN with the bottom-up path: a light model that trains from scratch on small data sets."""
    return _build("resnet18", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options)


@register_model
def panet_resnet50_fpn(
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> PANet:
    """PANet, ResNet-50-FPN with the bottom-up path (the paper's backbone)."""
    return _build("resnet50", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options)
