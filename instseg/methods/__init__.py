"""One sub-package per method; importing this package registers every model builder."""

from instseg.methods import (  # noqa: F401  (registers embedding_* and watershed_* builders)
    embedding,
    mask_rcnn,
    watershed,
)
