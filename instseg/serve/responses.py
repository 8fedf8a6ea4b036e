"""Predicted ``Instances`` as the JSON body of ``POST /v1/predict``, with masks as RLE, polygons or a PNG label map.

Masks are never sent dense: a full-frame mask per instance costs N x H x W values (hundreds of megabytes for a
crowded image), while a COCO compressed RLE costs a few bytes per boundary pixel. The RLEs come from the one
codec that also writes ``instseg predict``'s results json (``box_masks_to_rles``, from each object's box crop),
and the label map from the one painter (``paint_label_map``), so the server and the files never disagree.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import torch

from instseg.structures import Instances
from instseg.structures.label_map import PNG_MAX_LABEL, paint_label_map
from instseg.structures.masks import box_masks_to_rles, mask_to_polygons


def select_instances(found: Instances, score_thr: float | None, max_instances: int) -> Instances:
    """The instances to send: score >= ``score_thr``, best first (stable), at most ``max_instances``."""
    if found.scores is None or len(found) == 0:
        return found[:max_instances]
    order = torch.argsort(found.scores, descending=True, stable=True)
    if score_thr is not None:
        order = order[found.scores[order] >= score_thr]
    return found[order[:max_instances]]


def label_map_png(found: Instances) -> str:
    """Base64 16-bit PNG label map of ``found`` (object ``i`` -> value ``i + 1``, the one overlap rule)."""
    from PIL import Image

    box_masks = found.box_masks
    assert box_masks is not None and len(found) <= PNG_MAX_LABEL
    label_map = paint_label_map(box_masks, count_overlaps=False).label_map.astype(np.uint16)  # [H, W]
    buf = io.BytesIO()
    Image.fromarray(label_map).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _polygons(crop: np.ndarray, x0: int, y0: int) -> list[list[float]]:
    """COCO polygons in image pixels of a crop (bool [h, w]) whose top-left is at ``(x0, y0)``."""
    return [[v + (x0 if k % 2 == 0 else y0) for k, v in enumerate(poly)] for poly in mask_to_polygons(crop)]


def encode_prediction(
    found: Instances,
    class_names: list[str],
    category_ids: list[int] | None,
    mask_format: str,
    score_thr: float | None,
    max_instances: int,
) -> dict[str, Any]:
    """``{"width", "height", "instances": [...], "label_map"?}`` for the kept instances of ``found``.

    Each instance: ``id`` (1-based, response order = best score first), ``label`` (0..K-1), ``label_name``,
    ``category_id``, ``score``, ``box`` ([x0, y0, x1, y1] pixels, exclusive end), ``area`` (mask pixels) and
    ``mask``: a COCO RLE ``{"size": [h, w], "counts": str}`` for ``rle``; a list of flat ``[x0, y0, x1, y1, ...]``
    polygons in image pixels for ``polygon``; ``{"value": id}`` (its value in the top-level ``label_map`` PNG,
    where overlaps follow the one painter's rule) for ``png``.
    """
    h, w = found.image_size
    if mask_format == "png":
        max_instances = min(max_instances, PNG_MAX_LABEL)
    kept = select_instances(found, score_thr, max_instances)
    n = len(kept)
    box_masks = kept.box_masks
    masks: list[Any] = [None] * n
    areas: list[int | None] = [None] * n
    if box_masks is not None:
        areas = [int(a) for a in box_masks.areas().tolist()]
        if mask_format == "rle":
            masks = list(box_masks_to_rles(box_masks))
        elif mask_format == "polygon":
            masks = [_polygons(crop.numpy(), x0, y0) for crop, (x0, y0, _, _) in box_masks]
        else:
            masks = [{"value": i + 1} for i in range(n)]
    labels = kept.labels.tolist()
    scores = kept.scores.tolist() if kept.scores is not None else [1.0] * n
    boxes = kept.boxes.tolist()
    instances = []
    for i in range(n):
        label = int(labels[i])
        instances.append(
            {
                "id": i + 1,
                "label": label,
                "label_name": class_names[label] if label < len(class_names) else str(label),
                "category_id": int(category_ids[label]) if category_ids is not None else label + 1,
                "score": float(scores[i]),
                "box": [float(v) for v in boxes[i]],
                "area": areas[i],
                "mask": masks[i],
            }
        )
    body: dict[str, Any] = {"width": int(w), "height": int(h), "instances": instances}
    if mask_format == "png" and box_masks is not None:
        body["label_map"] = {"format": "png", "dtype": "uint16", "data": label_map_png(kept)}
    return body
