"""Star-convex nucleus model: per-pixel object probability + ray distances on a U-Net, polygons kept by NMS."""

from instseg.methods.star_convex import builders
from instseg.methods.star_convex.head import StarConvexHead
from instseg.methods.star_convex.loss import StarConvexLoss
from instseg.methods.star_convex.model import StarConvexSegmenter
from instseg.methods.star_convex.postprocess import StarConvexPostprocessor

__all__ = ["StarConvexHead", "StarConvexLoss", "StarConvexPostprocessor", "StarConvexSegmenter", "builders"]
