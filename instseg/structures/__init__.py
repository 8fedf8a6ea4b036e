"""Data containers shared by data loading, models, evaluation and export."""

from instseg.structures.image_batch import ImageBatch
from instseg.structures.instances import Instances

__all__ = ["ImageBatch", "Instances"]
