"""SOLOv2 (Wang et al., 2020): dynamic-kernel, box-free single-stage instance segmentation; importing this package
registers its builders."""

from instseg.methods.solov2.builders import (
    LIGHT_NUM_GRIDS,
    build_solov2,
    solov2_light_mobilenetv3,
    solov2_light_resnet18,
    solov2_resnet18,
    solov2_resnet50,
)
from instseg.methods.solov2.head import SOLOv2InstanceHead, SOLOv2MaskBranch
from instseg.methods.solov2.loss import SOLOv2Loss, assign_grid_cells, default_scale_ranges
from instseg.methods.solov2.model import SOLOv2
from instseg.methods.solov2.postprocess import SOLOv2Postprocessor

__all__ = [
    "LIGHT_NUM_GRIDS",
    "SOLOv2",
    "SOLOv2InstanceHead",
    "SOLOv2Loss",
    "SOLOv2MaskBranch",
    "SOLOv2Postprocessor",
    "assign_grid_cells",
    "build_solov2",
    "default_scale_ranges",
    "solov2_light_mobilenetv3",
    "solov2_light_resnet18",
    "solov2_resnet18",
    "solov2_resnet50",
]
