"""The star-convex model's grouping in numpy: per-pixel probability + ray distances -> objects.

The numpy form of ``instseg.methods.star_convex.postprocess``: both call the one polygon NMS of
``instseg_runtime.polygons``, with the parameters stored in the exported file's ``grouping`` metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from instseg_runtime.instances import RuntimeInstances, masks_to_boxes
from instseg_runtime.polygons import polygon_nms


def star_convex_grouping(maps: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> RuntimeInstances:
    """Objects of one image's maps (``prob`` [H, W], ray ``distances`` [n, H, W] in pixels, ``class_prob``
    [K, H, W] optional) by ``polygon_nms`` with ``params``: score = probability at the polygon's centre pixel,
    label = its likeliest class, masks full-frame [N, H, W]."""
    prob = maps["prob"]
    h, w = prob.shape
    kept, windows, crops = polygon_nms(
        prob,
        maps["distances"],
        params["prob_threshold"],
        params["nms_threshold"],
        int(params["min_area"]),
        int(params["max_candidates"]),
        int(params["max_detections"]),
        int(params.get("candidate_stride", 1)),
        bool(params.get("skip_covered", False)),
    )
    full = np.zeros((len(kept), h, w), dtype=bool)
    for i, ((x0, y0, x1, y1), crop) in enumerate(zip(windows, crops, strict=True)):
        full[i, y0:y1, x0:x1] = crop
    class_prob = maps.get("class_prob")
    labels = (
        class_prob.reshape(class_prob.shape[0], -1)[:, kept].argmax(0)
        if class_prob is not None
        else np.zeros(len(kept))
    )
    scores = prob.reshape(-1)[kept].astype(np.float32)
    return RuntimeInstances((h, w), masks_to_boxes(full), labels.astype(np.int64), scores, full)
