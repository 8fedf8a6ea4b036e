"""Necks: multi-scale feature fusion shared by the methods (FPN, ...)."""

from instseg.necks.fpn import FPN, fpn_from_stride_8

__all__ = ["FPN", "fpn_from_stride_8"]
