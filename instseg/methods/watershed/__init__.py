"""Watershed method: U-Net foreground + normalised distance maps, objects split by a seeded watershed."""

from instseg.methods.watershed import builders
from instseg.methods.watershed.head import WatershedHead
from instseg.methods.watershed.loss import WatershedLoss
from instseg.methods.watershed.model import WatershedSegmenter
from instseg.methods.watershed.postprocess import WatershedPostprocessor

__all__ = ["WatershedHead", "WatershedLoss", "WatershedPostprocessor", "WatershedSegmenter", "builders"]
