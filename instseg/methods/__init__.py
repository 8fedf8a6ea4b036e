"""One sub-package per method; importing this package registers every model builder."""

from instseg.methods import mask_rcnn  # noqa: F401  (registers mask_rcnn_* builders)
