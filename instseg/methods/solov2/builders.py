"""Registered SOLOv2 builders: ``solov2_resnet50``, ``solov2_resnet18`` and the light ``solov2_light_resnet18`` and
``solov2_light_mobilenetv3`` (the real-time CPU model).

Every builder takes ``num_classes``, ``min_size``, ``max_size``, ``pretrained_backbone`` (ImageNet weights through
torchvision, downloaded on first use) and ``norm`` / ``trainable_layers`` for the backbone (frozen BatchNorm and
three trained stages from ImageNet weights, trainable BatchNorm and every stage from scratch), and passes the
remaining keyword arguments to ``build_solov2`` (grids, scale ranges, head widths and depths, thresholds...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from instseg.backbones import Backbone, norm_layer
from instseg.methods.solov2.head import SOLOv2InstanceHead, SOLOv2MaskBranch
from instseg.methods.solov2.loss import PAPER_NUM_GRIDS, SOLOv2Loss, default_scale_ranges
from instseg.methods.solov2.model import SOLOv2
from instseg.methods.solov2.postprocess import SOLOv2Postprocessor
from instseg.methods.torchvision_backbone import build_on_torchvision_backbone
from instseg.necks import FPN
from instseg.registry import register_model

# the light variant: fewer, narrower head convs and coarser grids for 448-512 px inputs
LIGHT_NUM_GRIDS = (32, 28, 20, 14, 10)


def build_solov2(
    backbone: Backbone,
    num_classes: int,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    *,
    fpn_channels: int = 256,
    fpn_norm: str | None = None,
    num_grids: Sequence[int] = PAPER_NUM_GRIDS,
    scale_ranges: Sequence[Sequence[float]] | None = None,
    head_channels: int = 512,
    head_convs: int = 4,
    head_norm: str = "gn",
    mask_norm: str | None = None,
    mask_channels: int = 256,
    mask_mid_channels: int = 128,
    center_sampling: float = 0.2,
    prior_prob: float = 0.01,
    cls_weight: float = 1.0,
    mask_weight: float = 3.0,
    score_threshold: float = 0.1,
    mask_threshold: float = 0.5,
    pre_nms_top_k: int = 500,
    update_threshold: float = 0.05,
    max_per_image: int = 100,
    nms_kernel: str = "gaussian",
    nms_sigma: float = 0.5,
    min_area: float = 0.0,
) -> SOLOv2:
    """Assemble SOLOv2 on ``backbone``: FPN P2..P6 (P6 max-pooled), instance head, mask branch, loss, postprocess.

    ``num_grids`` gives S per level (P2..P6). ``scale_ranges`` (sqrt of box area in input pixels, one
    ``(low, high)`` per level) default to the paper's ranges scaled by the input short side over 800
    (``default_scale_ranges``). ``mask_channels`` is E, the mask-feature width and so the kernel size.
    ``head_norm`` is the norm of the instance head, which is shared by every level: ``"gn"`` (paper), never
    ``"bn"``. ``mask_norm`` (default ``head_norm``) is the mask branch's, which has its own convs per level:
    ``"bn"`` there folds into the convs (``SOLOv2.fuse_for_inference``).
    """
    if num_classes < 1:
        raise ValueError(f"methods/solov2/builders.py: num_classes must be >= 1, got {num_classes}")
    neck = FPN(
        backbone.feature_names,
        backbone.feature_channels,
        backbone.feature_strides,
        out_channels=fpn_channels,
        top_pool=True,
        norm_layer=norm_layer(fpn_norm) if fpn_norm is not None else None,
    )
    if len(num_grids) != len(neck.feature_names):
        raise ValueError(
            f"methods/solov2/builders.py: num_grids needs one entry per pyramid level ({len(neck.feature_names)}), "
            f"got {len(num_grids)}"
        )
    ranges = (
        tuple((float(lo), float(hi)) for lo, hi in scale_ranges)
        if scale_ranges is not None
        else default_scale_ranges(min_size, max_size, len(num_grids))
    )
    if neck.feature_strides[0] != 4:
        raise ValueError(f"methods/solov2/builders.py: the finest level must have stride 4, got {neck.feature_strides}")
    head = SOLOv2InstanceHead(
        fpn_channels, num_classes, mask_channels, num_grids, head_channels, head_convs, head_norm, prior_prob
    )
    mask_branch = SOLOv2MaskBranch(
        fpn_channels, 4, mask_mid_channels, mask_channels, mask_norm if mask_norm is not None else head_norm
    )
    criterion = SOLOv2Loss(
        num_classes,
        num_grids,
        ranges,
        mask_stride=4,
        center_sampling=center_sampling,
        cls_weight=cls_weight,
        mask_weight=mask_weight,
    )
    post = SOLOv2Postprocessor(
        num_grids,
        mask_stride=4,
        score_threshold=score_threshold,
        mask_threshold=mask_threshold,
        pre_nms_top_k=pre_nms_top_k,
        update_threshold=update_threshold,
        max_per_image=max_per_image,
        nms_kernel=nms_kernel,
        nms_sigma=nms_sigma,
        min_area=min_area,
    )
    return SOLOv2(backbone, neck, head, mask_branch, criterion, post, num_classes, min_size, max_size)


@register_model
def solov2_resnet50(
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> SOLOv2:
    """SOLOv2, ResNet-50-FPN, the paper's head (4 convs of 512 channels, GroupNorm, grids 40..12, E = 256)."""
    return build_on_torchvision_backbone(
        build_solov2, "resnet50", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options
    )


@register_model
def solov2_resnet18(
    num_classes: int = 80,
    min_size: int | None = 800,
    max_size: int | None = 1333,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> SOLOv2:
    """SOLOv2, ResNet-18-FPN: the paper's grids with a narrower head (4 convs of 256 channels, GroupNorm)."""
    options = {"head_channels": 256, **options}
    return build_on_torchvision_backbone(
        build_solov2, "resnet18", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options
    )


@register_model
def solov2_light_resnet18(
    num_classes: int = 80,
    min_size: int | None = 448,
    max_size: int | None = 768,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> SOLOv2:
    """Real-time SOLOv2 for 448-512 px inputs: ResNet-18-FPN of 128 channels, 2 head convs of 128 channels with
    GroupNorm (on the small grids, cheap), a mask branch with BatchNorm (``fuse_for_inference`` folds it), E = 128,
    coarser grids ``LIGHT_NUM_GRIDS``."""
    options = {
        "fpn_channels": 128,
        "head_channels": 128,
        "head_convs": 2,
        "head_norm": "gn",
        "mask_norm": "bn",
        "mask_channels": 128,
        "mask_mid_channels": 64,
        "num_grids": LIGHT_NUM_GRIDS,
        **options,
    }
    return build_on_torchvision_backbone(
        build_solov2, "resnet18", num_classes, min_size, max_size, pretrained_backbone, norm, trainable_layers, options
    )


@register_model
def solov2_light_mobilenetv3(
    num_classes: int = 80,
    min_size: int | None = 512,
    max_size: int | None = 640,
    pretrained_backbone: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **options: Any,
) -> SOLOv2:
    """Real-time SOLOv2 for CPUs: MobileNetV3-Large-FPN of 64 channels, 2 head convs of 96 channels with GroupNorm,
    E = 64, BatchNorm elsewhere (``fuse_for_inference`` folds it), coarser grids ``LIGHT_NUM_GRIDS``.

    About 4x fewer multiply-adds than ``solov2_light_resnet18``. Measured on one CPU thread at 640 x 640 (folded,
    channels_last): 110 ms for the network, 580 ms end to end on a crowded image (305 nuclei), most of it Matrix NMS
    over 600 candidates and the full-size masks; the YOLACT light model is the faster one.
    """
    options = {
        "fpn_channels": 64,
        "head_channels": 96,
        "head_convs": 2,
        "head_norm": "gn",
        "mask_norm": "bn",
        "mask_channels": 64,
        "mask_mid_channels": 32,
        "num_grids": LIGHT_NUM_GRIDS,
        **options,
    }
    return build_on_torchvision_backbone(
        build_solov2,
        "mobilenet_v3_large",
        num_classes,
        min_size,
        max_size,
        pretrained_backbone,
        norm,
        trainable_layers,
        options,
    )
