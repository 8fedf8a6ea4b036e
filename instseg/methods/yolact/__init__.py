"""YOLACT (Bolya et al. 2019) and YOLACT++ options; importing this package registers its builders."""

from instseg.methods.yolact.anchors import AnchorGrid, match_anchors
from instseg.methods.yolact.builders import (
    SMALL_OBJECTS,
    build_yolact,
    yolact_light_mobilenetv3,
    yolact_resnet18,
    yolact_resnet50,
    yolactpp_resnet18,
)
from instseg.methods.yolact.deform import DeformConv2d, make_backbone_deformable
from instseg.methods.yolact.head import ExtraLevels, MaskIoUNet, PredictionHead, ProtoNet
from instseg.methods.yolact.loss import YolactLoss
from instseg.methods.yolact.model import Yolact
from instseg.methods.yolact.postprocess import YolactPostprocessor

__all__ = [
    "SMALL_OBJECTS",
    "AnchorGrid",
    "DeformConv2d",
    "ExtraLevels",
    "MaskIoUNet",
    "PredictionHead",
    "ProtoNet",
    "Yolact",
    "YolactLoss",
    "YolactPostprocessor",
    "build_yolact",
    "make_backbone_deformable",
    "match_anchors",
    "yolact_light_mobilenetv3",
    "yolact_resnet18",
    "yolact_resnet50",
    "yolactpp_resnet18",
]
