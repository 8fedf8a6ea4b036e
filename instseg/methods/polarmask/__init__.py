"""PolarMask (Xie et al. 2020): instance contours as polar rays; importing this package registers its builders."""

from instseg.methods.polarmask.builders import (
    SMALL_OBJECTS,
    build_polarmask,
    polarmask_light_mobilenetv3,
    polarmask_resnet18,
    polarmask_resnet50,
)
from instseg.methods.polarmask.loss import PolarMaskLoss, point_rays
from instseg.methods.polarmask.model import PolarMask
from instseg.methods.polarmask.postprocess import PolarMaskPostprocessor, polygon_ltrb

__all__ = [
    "SMALL_OBJECTS",
    "PolarMask",
    "PolarMaskLoss",
    "PolarMaskPostprocessor",
    "build_polarmask",
    "point_rays",
    "polarmask_light_mobilenetv3",
    "polarmask_resnet18",
    "polarmask_resnet50",
    "polygon_ltrb",
]
