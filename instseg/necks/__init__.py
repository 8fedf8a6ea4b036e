"""Necks: multi-scale feature fusion shared by the methods (FPN, PANet's bottom-up path, ...)."""

from instseg.necks.fpn import FPN, fpn_from_stride_8
from instseg.necks.panet import PathAugmentedFPN

__all__ = ["FPN", "PathAugmentedFPN", "fpn_from_stride_8"]
