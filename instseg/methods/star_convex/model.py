"""``StarConvexSegmenter``: objects as star-convex polygons, one per pixel, kept by polygon NMS (StarDist's idea)."""

from __future__ import annotations

from instseg.methods.dense_segmenter import DenseSegmenter


class StarConvexSegmenter(DenseSegmenter):
    """Bottom-up / single-shot hybrid after Schmidt et al. 2018 ("Cell Detection with Star-convex Polygons"):
    every pixel predicts the probability of being inside an object (high at its centre) and the distances to the
    object's edge along ``n_rays`` fixed directions, i.e. one star-convex polygon; ``StarConvexPostprocessor``
    keeps the confident polygons that do not overlap a better one (polygon NMS).

    Built from a network, a ``StarConvexHead``, a ``StarConvexLoss`` and a ``StarConvexPostprocessor`` (see
    ``DenseSegmenter`` for the arguments). ``forward(images, targets=None) -> dict`` with ``prob_logits``
    Tensor[B, 1, H, W], ``distances`` Tensor[B, n_rays, H, W] (input pixels) and, when ``num_classes > 1``,
    ``class_logits`` Tensor[B, K, H, W], all at the padded input size.
    """
