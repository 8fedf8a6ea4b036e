"""Data containers shared by data loading, models, evaluation and export."""

from instseg.structures.box_masks import BoxMasks
from instseg.structures.image_batch import ImageBatch
from instseg.structures.instances import Instances

__all__ = ["BoxMasks", "ImageBatch", "Instances"]
