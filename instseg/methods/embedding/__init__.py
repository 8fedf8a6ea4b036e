"""Embedding method: per-pixel embeddings trained with the discriminative loss, clustered by seed-and-grow."""

from instseg.methods.embedding import builders
from instseg.methods.embedding.head import EmbeddingHead
from instseg.methods.embedding.loss import EmbeddingLoss, discriminative_loss
from instseg.methods.embedding.model import EmbeddingSegmenter
from instseg.methods.embedding.postprocess import EmbeddingPostprocessor

__all__ = [
    "EmbeddingHead",
    "EmbeddingLoss",
    "EmbeddingPostprocessor",
    "EmbeddingSegmenter",
    "builders",
    "discriminative_loss",
]
