"""Detections given as polygons (PolarMask's exported files): rasterised in numpy at the image's size.

The exported graph stops at each detection's polygon vertices; rasterising them here with the one rasteriser
of ``instseg_runtime.polygons`` (the PyTorch post-processor calls the same function) gives the same pixels
both ways, which a point-in-polygon test written in the graph would not at every edge.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from instseg_runtime.instances import RuntimeInstances, masks_to_boxes
from instseg_runtime.polygons import rasterize_polygon


def polygon_instances(outputs: Mapping[str, np.ndarray], size: tuple[int, int]) -> RuntimeInstances:
    """Objects of one image of ``size`` (H, W) from its ``vertices`` [D, n, 2] ``(y, x)`` (pixels of the image
    as given), ``scores`` [D] and ``labels`` [D]: masks full-frame [N, H, W], boxes their tight boxes, polygons
    covering no pixel centre dropped."""
    h, w = size
    vertices = outputs["vertices"].reshape(-1, *outputs["vertices"].shape[-2:]).astype(np.float64)
    masks = np.zeros((len(vertices), h, w), dtype=bool)
    for i, v in enumerate(vertices):
        (x0, y0, x1, y1), crop = rasterize_polygon(v, (h, w))
        masks[i, y0:y1, x0:x1] = crop
    keep = masks.any(axis=(1, 2))
    return RuntimeInstances(
        (h, w),
        masks_to_boxes(masks[keep]),
        outputs["labels"].astype(np.int64).reshape(-1)[keep],
        outputs["scores"].astype(np.float32).reshape(-1)[keep],
        masks[keep],
    )
