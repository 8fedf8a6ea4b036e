"""Necks: multi-scale feature fusion shared by the methods (FPN, ...)."""

from instseg.necks.fpn import FPN

__all__ = ["FPN"]
