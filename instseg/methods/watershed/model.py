"""``WatershedSegmenter``: U-Net foreground + distance maps, split into objects by a seeded watershed."""

from __future__ import annotations

from instseg.methods.dense_segmenter import DenseSegmenter


class WatershedSegmenter(DenseSegmenter):
    """Bottom-up instance segmentation: a dense network predicts foreground and a per-object normalised
    distance map; ``WatershedPostprocessor`` cuts the foreground into objects along the distance valleys.

    Built from a network, a ``WatershedHead``, a ``WatershedLoss`` and a ``WatershedPostprocessor`` (see
    ``DenseSegmenter`` for the arguments). ``forward(images, targets=None) -> dict`` with ``fg_logits``
    Tensor[B, 1, H, W], ``distance`` Tensor[B, 1, H, W] in [0, 1] and, when ``num_classes > 1``, ``class_logits``
    Tensor[B, K, H, W], all at the padded input size. ``network`` is any module mapping Tensor[B, 3, H, W] to
    full-resolution features Tensor[B, head_in, H, W] (e.g. ``instseg.necks.unet.UNet``).
    """
