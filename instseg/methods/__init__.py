"""One sub-package per method; importing this package registers every model builder."""

from instseg.methods import mask_rcnn  # noqa: F401  (registers mask_rcnn_* builders)
from instseg.methods import embedding, watershed  # noqa: F401  (registers embedding_* and watershed_* builders)
