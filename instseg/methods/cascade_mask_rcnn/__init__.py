"""Cascade Mask R-CNN (Cai & Vasconcelos, 2018); importing this package registers its builders."""

from instseg.methods.cascade_mask_rcnn.builders import (
    build_cascade_mask_rcnn,
    cascade_mask_rcnn_resnet18_fpn,
    cascade_mask_rcnn_resnet50_fpn,
)
from instseg.methods.cascade_mask_rcnn.model import CascadeMaskRCNN

__all__ = [
    "CascadeMaskRCNN",
    "build_cascade_mask_rcnn",
    "cascade_mask_rcnn_resnet18_fpn",
    "cascade_mask_rcnn_resnet50_fpn",
]
