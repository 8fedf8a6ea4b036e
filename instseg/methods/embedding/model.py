"""``EmbeddingSegmenter``: U-Net pixel embeddings + foreground/seed maps, clustered into objects by seed-and-grow."""

from __future__ import annotations

from instseg.methods.dense_segmenter import DenseSegmenter


class EmbeddingSegmenter(DenseSegmenter):
    """Bottom-up instance segmentation with the discriminative loss (De Brabandere et al. 2017): every pixel
    gets an embedding, pixels of one object are pulled together and objects pushed apart, and
    ``EmbeddingPostprocessor`` groups foreground pixels around seeds.

    Built from a network, an ``EmbeddingHead``, an ``EmbeddingLoss`` and an ``EmbeddingPostprocessor`` (see
    ``DenseSegmenter`` for the arguments). ``forward(images, targets=None) -> dict`` with ``embedding``
    Tensor[B, E, H, W], ``fg_logits`` and ``seed_logits`` Tensor[B, 1, H, W] and, when ``num_classes > 1``,
    ``class_logits`` Tensor[B, K, H, W], all at the padded input size. ``network`` is any module mapping
    Tensor[B, 3, H, W] to full-resolution features (e.g. ``instseg.necks.unet.UNet``).
    """
