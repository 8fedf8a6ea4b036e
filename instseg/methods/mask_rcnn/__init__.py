"""Mask R-CNN (He et al., 2017) on torchvision's detection heads; importing this package registers its builders."""

from instseg.methods.mask_rcnn.builders import (
    CROWDED,
    build_mask_rcnn,
    mask_rcnn_mobilenetv3_fpn,
    mask_rcnn_resnet18_fpn,
    mask_rcnn_resnet50_fpn,
    mask_rcnn_timm_fpn,
)
from instseg.methods.mask_rcnn.model import MaskRCNN
from instseg.methods.mask_rcnn.weights import COCO_CATEGORY_IDS, COCO_CLASS_NAMES, load_torchvision_weights

__all__ = [
    "COCO_CATEGORY_IDS",
    "COCO_CLASS_NAMES",
    "CROWDED",
    "MaskRCNN",
    "build_mask_rcnn",
    "load_torchvision_weights",
    "mask_rcnn_mobilenetv3_fpn",
    "mask_rcnn_resnet18_fpn",
    "mask_rcnn_resnet50_fpn",
    "mask_rcnn_timm_fpn",
]
