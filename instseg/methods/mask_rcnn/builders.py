"""Registered Mask R-CNN builders: ResNet-50/18 and MobileNetV3 FPN from torchvision, any timm backbone + FPN.

Every builder takes ``num_classes``, ``min_size``, ``max_size``, ``pretrained_backbone`` (ImageNet weights through
torchvision's weight enums, downloaded on first use) and ``norm`` / ``trainable_layers`` for the backbone, and
passes the remaining keyword arguments to ``build_mask_rcnn`` (anchor sizes, proposal and detection counts,
sampling sizes, mask resolution...). ``CROWDED`` holds settings for images with hundreds of small objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from instseg.backbones import Backbone, backbone_choices, build_backbone
from instseg.methods.mask_rcnn import weights as mask_rcnn_weights
from instseg.methods.mask_rcnn.head import build_roi_heads
from instseg.methods.mask_rcnn.model import MaskRCNN
from instseg.methods.torchvision_backbone import keyword_defaults
from instseg.methods.two_stage_segmenter import pyramid_and_rpn
from instseg.registry import register_model

# settings for crowded images (nuclei, cells: up to ~500 small objects per image); pass as **CROWDED
CROWDED: dict[str, Any] = {
    "anchor_sizes": (16, 32, 64, 128, 256),
    "rpn_pre_nms_top_n_test": 3000,
    "rpn_post_nms_top_n_test": 2000,
    "rpn_post_nms_top_n_train": 3000,
    "rpn_batch_size_per_image": 512,
    "box_batch_size_per_image": 512,
    "box_detections_per_img": 500,
    "mask_roi_size": 14,
}


def build_mask_rcnn(
    backbone: Backbone,
    num_classes: int,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    *,
    fpn_channels: int = 256,
    fpn_norm: str | None = None,
    anchor_sizes: Sequence[int | Sequence[int]] | None = None,
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    rpn_pre_nms_top_n_train: int = 2000,
    rpn_pre_nms_top_n_test: int = 1000,
    rpn_post_nms_top_n_train: int = 2000,
    rpn_post_nms_top_n_test: int = 1000,
    rpn_nms_thresh: float = 0.7,
    rpn_fg_iou_thresh: float = 0.7,
    rpn_bg_iou_thresh: float = 0.3,
    rpn_batch_size_per_image: int = 256,
    rpn_positive_fraction: float = 0.5,
    box_score_thresh: float = 0.05,
    box_nms_thresh: float = 0.5,
    box_detections_per_img: int = 100,
    box_fg_iou_thresh: float = 0.5,
    box_bg_iou_thresh: float = 0.5,
    box_batch_size_per_image: int = 512,
    box_positive_fraction: float = 0.25,
    box_head_dim: int = 1024,
    mask_roi_size: int = 14,
    mask_head_channels: int = 256,
    mask_head_convs: int = 4,
    mask_threshold: float = 0.5,
    loss_weights: Mapping[str, float] | None = None,
) -> MaskRCNN:
    """Assemble Mask R-CNN on ``backbone``: FPN (+ max-pooled top level), RPN, box and mask heads.

    Defaults are torchvision's ``maskrcnn_resnet50_fpn``. ``anchor_sizes`` has one entry per pyramid level
    (default 8 x the level's stride: 32..512 for strides 4..64); ``mask_roi_size=28`` doubles the mask resolution
    to 56 pixels; ``fpn_norm`` ("gn", "bn" or None) adds a norm after each FPN conv (useful from scratch).
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    rpn_options = {
        "anchor_sizes": anchor_sizes,
        "aspect_ratios": aspect_ratios,
        "rpn_pre_nms_top_n_train": rpn_pre_nms_top_n_train,
        "rpn_pre_nms_top_n_test": rpn_pre_nms_top_n_test,
        "rpn_post_nms_top_n_train": rpn_post_nms_top_n_train,
        "rpn_post_nms_top_n_test": rpn_post_nms_top_n_test,
        "rpn_nms_thresh": rpn_nms_thresh,
        "rpn_fg_iou_thresh": rpn_fg_iou_thresh,
        "rpn_bg_iou_thresh": rpn_bg_iou_thresh,
        "rpn_batch_size_per_image": rpn_batch_size_per_image,
        "rpn_positive_fraction": rpn_positive_fraction,
    }
    neck, rpn = pyramid_and_rpn(backbone, fpn_channels, fpn_norm, rpn_options)
    roi_heads = build_roi_heads(
        fpn_channels,
        neck.feature_names[:-1],  # RoIs are pooled from the FPN levels, not from the max-pooled top
        num_classes,
        box_head_dim=box_head_dim,
        mask_roi_size=mask_roi_size,
        mask_head_channels=mask_head_channels,
        mask_head_convs=mask_head_convs,
        fg_iou_thresh=box_fg_iou_thresh,
        bg_iou_thresh=box_bg_iou_thresh,
        batch_size_per_image=box_batch_size_per_image,
        positive_fraction=box_positive_fraction,
        score_thresh=box_score_thresh,
        nms_thresh=box_nms_thresh,
        detections_per_img=box_detections_per_img,
    )
    return MaskRCNN(
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


def _offline(model: MaskRCNN, **kwargs: Any) -> MaskRCNN:
    """Record on ``model`` the builder keyword arguments that rebuild the same architecture without fetching any
    weights (``rebuild_kwargs``), so that a checkpoint can be loaded on a machine without internet; with every
    keyword default of ``build_mask_rcnn``, so that a later change of a default keeps old checkpoints' architecture."""
    model.rebuild_kwargs = {**keyword_defaults(build_mask_rcnn), **kwargs}  # register_model adds the rest
    return model


def _torchvision_mask_rcnn(
    name: str,
    num_classes: int,
    min_size: int | None,
    max_size: int | None,
    pretrained_backbone: bool,
    norm: str | None,
    trainable_layers: int | None,
    options: dict[str, Any],
    coco_weights: bool = False,
) -> MaskRCNN:
    """Mask R-CNN on the torchvision backbone ``name`` (norm and trainable stages by ``backbone_choices``), with
    torchvision's COCO-trained weights loaded when ``coco_weights``, and the offline ``rebuild_kwargs`` recorded."""
    choices = backbone_choices(pretrained_backbone or coco_weights, norm, trainable_layers)
    # the COCO checkpoint replaces the backbone too, so ImageNet weights are not fetched for it
    backbone = build_backbone(name, pretrained=pretrained_backbone and not coco_weights, **choices)
    model = build_mask_rcnn(backbone, num_classes, min_size, max_size, **options)
    if coco_weights:
        mask_rcnn_weights.load_torchvision_weights(model, mask_rcnn_weights.coco_state_dict())
    return _offline(model, num_classes=num_classes, min_size=min_size, max_size=max_size, **choices, **options)


@register_model
def mask_rcnn_resnet50_fpn(
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    weights: str | None = None,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> MaskRCNN:
    """Mask R-CNN, ResNet-50-FPN. ``weights="coco"`` loads torchvision's COCO model (mask AP 34.6): with
    ``num_classes=80`` label k is COCO category ``COCO_CATEGORY_IDS[k]``; with another count only the class
    predictors start fresh (fine-tuning)."""
    if weights not in (None, "coco"):
        raise ValueError(f"weights must be None or 'coco', got {weights!r}")
    coco = weights == "coco"
    return _torchvision_mask_rcnn(
        "resnet50", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options, coco
    )


@register_model
def mask_rcnn_resnet18_fpn(
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> MaskRCNN:
    """Mask R-CNN, ResNet-18-FPN: a light model that trains from scratch on small data sets."""
    return _torchvision_mask_rcnn(
        "resnet18", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options
    )


@register_model
def mask_rcnn_mobilenetv3_fpn(
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> MaskRCNN:
    """Mask R-CNN, MobileNetV3-Large-FPN (strides 4..32 + pooled top): for CPUs and small devices."""
    return _torchvision_mask_rcnn(
        "mobilenet_v3_large", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options
    )


@register_model
def mask_rcnn_timm_fpn(
    backbone: str = "resnet18",
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    out_indices: Sequence[int] | None = None,
    timm_kwargs: Mapping[str, Any] | None = None,
    **options: Any,
) -> MaskRCNN:
    """Mask R-CNN on any timm ``features_only`` model (``backbone`` is its timm name; needs ``pip install timm``).
    ``out_indices`` picks timm's feature levels (default the last four); ``timm_kwargs`` go to
    ``timm.create_model``."""
    extra = dict(timm_kwargs or {})
    body = build_backbone(f"timm:{backbone}", pretrained=pretrained_backbone, out_indices=out_indices, **extra)
    model = build_mask_rcnn(body, num_classes, min_size, max_size, **options)
    return _offline(
        model,
        backbone=backbone,
        num_classes=num_classes,
        min_size=min_size,
        max_size=max_size,
        out_indices=out_indices,
        timm_kwargs=extra,
        **options,
    )
