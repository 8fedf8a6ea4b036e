"""BlendMask (Chen et al. 2020): FCOS attentions blending image-wide bases; importing this package registers its
builders."""

from instseg.methods.blendmask.builders import (
    SMALL_OBJECTS,
    blendmask_light_mobilenetv3,
    blendmask_resnet50,
    build_blendmask,
)
from instseg.methods.blendmask.head import BasisModule
from instseg.methods.blendmask.loss import BlendMaskLoss, box_mask_targets
from instseg.methods.blendmask.model import BlendMask
from instseg.methods.blendmask.postprocess import BlendMaskPostprocessor

__all__ = [
    "SMALL_OBJECTS",
    "BasisModule",
    "BlendMask",
    "BlendMaskLoss",
    "BlendMaskPostprocessor",
    "blendmask_light_mobilenetv3",
    "blendmask_resnet50",
    "box_mask_targets",
    "build_blendmask",
]
