"""``SpatialEmbeddingSegmenter``: pixels vote for their object's centre with a learnt bandwidth, then get clustered."""

from __future__ import annotations

from torch import Tensor

from instseg.methods.dense_segmenter import DenseSegmenter
from instseg.structures import ImageBatch, Instances


class SpatialEmbeddingSegmenter(DenseSegmenter):
    """Bottom-up instance segmentation with spatial embeddings (Neven et al. 2019, "Instance Segmentation by Jointly
    Optimizing Spatial Embeddings and Clustering Bandwidth"): every pixel predicts an offset to its object's centre
    and a bandwidth sigma; a Lovasz-hinge loss on the Gaussian "belongs to this object" probability learns both,
    and ``SpatialEmbeddingPostprocessor`` clusters pixels around the most confident seeds.

    Built from a network, a ``SpatialEmbeddingHead``, a ``SpatialEmbeddingLoss`` and a
    ``SpatialEmbeddingPostprocessor`` (see ``DenseSegmenter`` for the arguments). ``network`` is any module
    mapping Tensor[B, 3, H, W] to full-resolution features (e.g. ``instseg.necks.unet.UNet``).
    """

    def forward(self, images: ImageBatch, targets: list[Instances] | None = None) -> dict[str, Tensor]:
        """Per-pixel maps at the padded input size (``targets`` unused: the loss builds its own).

        - ``embedding``: Tensor[B, 2, H, W], pixel coordinates + predicted offsets (y, x), in units of the head's
          ``coord_scale`` pixels;
        - ``sigma``: Tensor[B, S, H, W] > 0, clustering bandwidth in the same unit (S = 1 or 2);
        - ``seed``: Tensor[B, K, H, W] in [0, 1], per-class seediness (K = ``num_classes``).
        """
        return super().forward(images, targets)
