"""Mask R-CNN's RoI heads built from torchvision's detection parts: the box head, then the mask head."""

from __future__ import annotations

from collections.abc import Sequence

from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import MultiScaleRoIAlign


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
