"""Mask R-CNN's two stages built from torchvision's detection parts: the RPN and the box + mask RoI heads."""

from __future__ import annotations

from collections.abc import Sequence

from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.ops import MultiScaleRoIAlign


def build_rpn(
    in_channels: int,
    anchor_sizes: Sequence[int | Sequence[int]],
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    pre_nms_top_n: tuple[int, int] = (2000, 1000),
    post_nms_top_n: tuple[int, int] = (2000, 1000),
    nms_thresh: float = 0.7,
    fg_iou_thresh: float = 0.7,
    bg_iou_thresh: float = 0.3,
    batch_size_per_image: int = 256,
    positive_fraction: float = 0.5,
    score_thresh: float = 0.0,
) -> RegionProposalNetwork:
    """Region proposal network over every pyramid level; ``anchor_sizes`` has one entry (a size or a tuple of
    sizes) per level, finest first. ``pre_nms_top_n``/``post_nms_top_n`` are ``(training, testing)`` and are per
    level / per image as in torchvision."""
    sizes = tuple((int(s),) if isinstance(s, int) else tuple(int(v) for v in s) for s in anchor_sizes)
    anchors = AnchorGenerator(sizes=sizes, aspect_ratios=(tuple(float(a) for a in aspect_ratios),) * len(sizes))
    head = RPNHead(in_channels, anchors.num_anchors_per_location()[0])
    return RegionProposalNetwork(
        anchors,
        head,
        fg_iou_thresh=fg_iou_thresh,
        bg_iou_thresh=bg_iou_thresh,
        batch_size_per_image=batch_size_per_image,
        positive_fraction=positive_fraction,
        pre_nms_top_n={"training": pre_nms_top_n[0], "testing": pre_nms_top_n[1]},
        post_nms_top_n={"training": post_nms_top_n[0], "testing": post_nms_top_n[1]},
        nms_thresh=nms_thresh,
        score_thresh=score_thresh,
    )


def build_roi_heads(
    in_channels: int,
    featmap_names: Sequence[str],
    num_classes: int,
    box_roi_size: int = 7,
    box_head_dim: int = 1024,
    mask_roi_size: int = 14,
    mask_head_channels: int = 256,
    mask_head_convs: int = 4,
    fg_iou_thresh: float = 0.5,
    bg_iou_thresh: float = 0.5,
    batch_size_per_image: int = 512,
    positive_fraction: float = 0.25,
    bbox_reg_weights: tuple[float, float, float, float] | None = None,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_img: int = 100,
) -> RoIHeads:
    """Box head (RoIAlign ``box_roi_size`` -> two FC layers -> class scores + per-class boxes) and mask head
    (RoIAlign ``mask_roi_size`` -> ``mask_head_convs`` 3x3 convs -> 2x deconv -> per-class mask logits of
    ``2 * mask_roi_size`` pixels). ``num_classes`` counts object classes; the background class is added here
    because torchvision's heads reserve index 0 for it."""
    if mask_roi_size < 1 or mask_head_convs < 1:
        raise ValueError(f"mask_roi_size ({mask_roi_size}) and mask_head_convs must be >= 1")
    names = list(featmap_names)
    box_pool = MultiScaleRoIAlign(featmap_names=names, output_size=box_roi_size, sampling_ratio=2)
    box_head = TwoMLPHead(in_channels * box_roi_size**2, box_head_dim)
    box_predictor = FastRCNNPredictor(box_head_dim, num_classes + 1)
    mask_pool = MultiScaleRoIAlign(featmap_names=names, output_size=mask_roi_size, sampling_ratio=2)
    mask_head = MaskRCNNHeads(in_channels, [mask_head_channels] * mask_head_convs, 1)
    mask_predictor = MaskRCNNPredictor(mask_head_channels, mask_head_channels, num_classes + 1)
    return RoIHeads(
        box_pool,
        box_head,
        box_predictor,
        fg_iou_thresh,
        bg_iou_thresh,
        batch_size_per_image,
        positive_fraction,
        bbox_reg_weights,
        score_thresh,
        nms_thresh,
        detections_per_img,
        mask_roi_pool=mask_pool,
        mask_head=mask_head,
        mask_predictor=mask_predictor,
    )
