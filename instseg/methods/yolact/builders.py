"""Registered YOLACT builders: ``yolact_resnet50``, ``yolact_resnet18``, ``yolactpp_resnet18``, and
``yolact_light_mobilenetv3`` for CPUs.

Every builder takes ``num_classes``, ``min_size``, ``max_size``, ``pretrained_backbone`` (ImageNet weights fetched by
torchvision) and ``norm`` / ``trainable_layers`` for the backbone (default: frozen BatchNorm and the top three
stages trained with pretrained weights, trainable BatchNorm and every stage from scratch), and passes the other
keyword arguments to ``build_yolact``. ``SMALL_OBJECTS`` holds settings for crowded images of small objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from instseg.backbones import Backbone
from instseg.methods.torchvision_backbone import build_on_torchvision_backbone
from instseg.methods.yolact.anchors import DEFAULT_ANCHOR_SIZES, YOLACTPP_SCALES, AnchorGrid
from instseg.methods.yolact.deform import make_backbone_deformable
from instseg.methods.yolact.head import ExtraLevels, MaskIoUNet, PredictionHead, ProtoNet
from instseg.methods.yolact.loss import YolactLoss
from instseg.methods.yolact.model import Yolact
from instseg.methods.yolact.postprocess import YolactPostprocessor
from instseg.necks import fpn_from_stride_8
from instseg.registry import register_model

# crowded images of small objects (nuclei, cells): small anchors, many masks and detections; pass as **SMALL_OBJECTS
SMALL_OBJECTS: dict[str, Any] = {
    "anchor_sizes": (12, 24, 48, 96, 192),
    "anchor_scales": YOLACTPP_SCALES,
    "max_masks_per_image": 300,
    "top_k": 500,
    "max_candidates": 2000,
    "max_detections": 400,
}


def build_yolact(
    backbone: Backbone,
    num_classes: int,
    min_size: int | None = 550,
    max_size: int | None = 550,
    *,
    fpn_channels: int = 256,
    fpn_norm: str | None = None,
    num_prototypes: int = 32,
    proto_channels: int = 256,
    head_channels: int = 256,
    head_norm: str | None = None,
    proto_norm: str | None = None,
    anchor_sizes: Sequence[float] = DEFAULT_ANCHOR_SIZES,
    aspect_ratios: Sequence[float] = (1.0, 0.5, 2.0),
    anchor_scales: Sequence[float] = (1.0,),
    semantic_loss: bool = True,
    mask_rescoring: bool = False,
    deformable: bool = False,
    deformable_stages: Sequence[str] = ("layer2", "layer3", "layer4"),
    deformable_interval: int = 3,
    pos_iou: float = 0.5,
    neg_iou: float = 0.4,
    neg_pos_ratio: int = 3,
    min_negatives: int = 16,
    max_masks_per_image: int = 100,
    loss_weights: Mapping[str, float] | None = None,
    score_threshold: float = 0.05,
    nms_iou: float = 0.5,
    top_k: int = 200,
    max_candidates: int = 1000,
    max_detections: int = 100,
    mask_threshold: float = 0.5,
) -> Yolact:
    """Assemble YOLACT on ``backbone`` (its stride 8, 16, 32 maps feed the FPN; P6, P7 come from P5).

    ``anchor_sizes`` has one entry per level P3..P7 (the paper's 24..384 suit 550 px COCO images; small objects
    need smaller ones), ``anchor_scales`` multiplies each (YOLACT++ uses ``YOLACTPP_SCALES``). ``head_norm`` ("gn"
    or None as in the paper; never "bn": the head is shared by every level) adds a norm after the head convs,
    ``proto_norm`` (default ``head_norm``) after the protonet convs, where "bn" folds into the convs for
    inference. YOLACT++: ``mask_rescoring`` adds the mask-IoU branch, ``deformable`` turns the 3x3 convs of every
    ``deformable_interval``-th block of the ResNet ``deformable_stages`` into modulated deformable convs.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if len(anchor_sizes) != 5:
        raise ValueError(f"anchor_sizes needs one entry per level P3..P7, got {len(anchor_sizes)}")
    if deformable:
        make_backbone_deformable(backbone, deformable_stages, deformable_interval)
    neck = fpn_from_stride_8(backbone, fpn_channels, fpn_norm, top_pool=False)
    anchors = AnchorGrid(anchor_sizes, aspect_ratios, anchor_scales)
    head = PredictionHead(fpn_channels, num_classes, anchors.num_anchors, num_prototypes, head_channels, head_norm)
    return Yolact(
        backbone,
        neck,
        ExtraLevels(fpn_channels, 2),
        ProtoNet(
            fpn_channels, proto_channels, num_prototypes, norm=proto_norm if proto_norm is not None else head_norm
        ),
        head,
        anchors,
        YolactLoss(num_classes, 4, pos_iou, neg_iou, neg_pos_ratio, min_negatives, max_masks_per_image, loss_weights),
        YolactPostprocessor(score_threshold, nms_iou, top_k, max_candidates, max_detections, mask_threshold, 4),
        num_classes,
        semantic_head=nn.Conv2d(fpn_channels, num_classes, 1) if semantic_loss else None,
        mask_iou_net=MaskIoUNet(num_classes) if mask_rescoring else None,
        min_size=min_size,
        max_size=max_size,
    )


@register_model
def yolact_resnet50(
    num_classes: int = 80,
    min_size: int | None = 550,
    max_size: int | None = 550,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> Yolact:
    """YOLACT, ResNet-50-FPN (the paper's YOLACT-550 R-50 layout: 32 prototypes, 256-wide head)."""
    return build_on_torchvision_backbone(
        build_yolact, "resnet50", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options
    )


@register_model
def yolact_resnet18(
    num_classes: int = 80,
    min_size: int | None = 550,
    max_size: int | None = 550,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> Yolact:
    """YOLACT, ResNet-18-FPN: a light model that trains from scratch on small data sets."""
    return build_on_torchvision_backbone(
        build_yolact, "resnet18", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options
    )


@register_model
def yolactpp_resnet18(
    num_classes: int = 80,
    min_size: int | None = 550,
    max_size: int | None = 550,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> Yolact:
    """YOLACT++, ResNet-18-FPN: mask re-scoring, deformable convs in C3..C5 (every third block), 3 anchor scales."""
    options = {"mask_rescoring": True, "deformable": True, "anchor_scales": YOLACTPP_SCALES, **options}
    return build_on_torchvision_backbone(
        build_yolact, "resnet18", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options
    )


@register_model
def yolact_light_mobilenetv3(
    num_classes: int = 80,
    min_size: int | None = 384,
    max_size: int | None = 512,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> Yolact:
    """A CPU YOLACT: MobileNetV3-Large, 96-wide FPN and head, 16 prototypes; GroupNorm in the prediction head
    (shared by the levels), BatchNorm in the protonet (folded for inference)."""
    options = {
        "fpn_channels": 96,
        "head_channels": 96,
        "proto_channels": 64,
        "num_prototypes": 16,
        "head_norm": "gn",
        "proto_norm": "bn",
        **options,
    }
    return build_on_torchvision_backbone(
        build_yolact,
        "mobilenet_v3_large",
        num_classes,
        min_size,
        max_size,
        pretrained_backbone,
        norm,
        trainable_layers,
        options,
    )
