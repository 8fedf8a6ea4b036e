"""CenterMask (Lee & Park, 2020): FCOS plus a spatial attention-guided mask head; importing this package registers
its builders."""

from instseg.methods.centermask.builders import (
    SMALL_OBJECTS,
    build_centermask,
    centermask_resnet18_fpn,
    centermask_resnet50_fpn,
)
from instseg.methods.centermask.model import CenterMask

__all__ = ["SMALL_OBJECTS", "CenterMask", "build_centermask", "centermask_resnet18_fpn", "centermask_resnet50_fpn"]
