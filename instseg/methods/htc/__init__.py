"""Hybrid Task Cascade (Chen et al., 2019); importing this package registers its builders."""

from instseg.methods.htc.builders import build_htc, htc_resnet18_fpn, htc_resnet50_fpn
from instseg.methods.htc.model import HybridTaskCascade

__all__ = ["HybridTaskCascade", "build_htc", "htc_resnet18_fpn", "htc_resnet50_fpn"]
