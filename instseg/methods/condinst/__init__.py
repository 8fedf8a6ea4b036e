"""CondInst (Tian, Shen & Chen 2020): conditional convolutions for instance segmentation; importing this package
registers its builders."""

from instseg.methods.condinst.builders import (
    SMALL_OBJECTS,
    build_condinst,
    condinst_light_mobilenetv3,
    condinst_resnet50,
)
from instseg.methods.condinst.head import DynamicMaskHead, MaskBranch, sizes_of_interest
from instseg.methods.condinst.loss import CondInstLoss
from instseg.methods.condinst.model import CondInst
from instseg.methods.condinst.postprocess import CondInstPostprocessor

__all__ = [
    "SMALL_OBJECTS",
    "CondInst",
    "CondInstLoss",
    "CondInstPostprocessor",
    "DynamicMaskHead",
    "MaskBranch",
    "build_condinst",
    "condinst_light_mobilenetv3",
    "condinst_resnet50",
    "sizes_of_interest",
]
