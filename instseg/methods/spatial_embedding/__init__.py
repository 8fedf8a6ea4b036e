"""SpatialEmbeddings method (Neven et al. 2019): offsets to object centres + learnt bandwidths, clustered by seeds."""

from instseg.methods.spatial_embedding import builders
from instseg.methods.spatial_embedding.head import SpatialEmbeddingHead, pixel_coordinates
from instseg.methods.spatial_embedding.loss import SpatialEmbeddingLoss, instance_probabilities, lovasz_hinge
from instseg.methods.spatial_embedding.model import SpatialEmbeddingSegmenter
from instseg.methods.spatial_embedding.postprocess import SpatialEmbeddingPostprocessor

__all__ = [
    "SpatialEmbeddingHead",
    "SpatialEmbeddingLoss",
    "SpatialEmbeddingPostprocessor",
    "SpatialEmbeddingSegmenter",
    "builders",
    "instance_probabilities",
    "lovasz_hinge",
    "pixel_coordinates",
]
