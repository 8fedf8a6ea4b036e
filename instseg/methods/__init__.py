"""One sub-package per method; importing this package registers every model builder."""

from instseg.methods import (  # noqa: F401  (side effect: every builder registers itself)
    blendmask,
    cascade_mask_rcnn,
    centermask,
    condinst,
    embedding,
    htc,
    mask_rcnn,
    panet,
    polarmask,
    solov2,
    spatial_embedding,
    star_convex,
    watershed,
    yolact,
)
