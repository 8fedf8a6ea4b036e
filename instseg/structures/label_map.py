"""The one label-map painter: objects -> one integer image (0 = background, object ``i`` -> ``i + 1``).

A label map cannot hold overlapping objects, so painting one needs a rule for shared pixels, and instseg has
exactly one: **the smaller object wins** (fewer mask pixels); between equal areas **the object listed later
wins**. Small objects such as nuclei lying on a large one then keep their pixels, and the result depends only on
the masks and their order, never on scores, tiles or the form the masks are held in. Every label map instseg
makes (training targets of bottom-up methods, converted data sets, ``instseg predict`` outputs) is painted here.

Full-frame masks (Tensor[N, H, W], any device) are painted with one scatter over their pixels; box-cropped masks
(``BoxMasks``) crop by crop, so the cost is the objects' areas plus one H x W map, never N x H x W.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from instseg.structures.box_masks import BoxMasks

PNG_MAX_LABEL = 65535


class LabelMap(NamedTuple):
    """A painted label map [H, W] (object ``i`` has value ``i + 1``), shared-pixel count and objects lost."""

    label_map: np.ndarray
    overlap_pixels: int
    lost: list[int]


def label_dtype(n: int) -> type[np.unsignedinteger]:
    """The dtype a label map of ``n`` objects is stored in: 16 bits while they fit, else 32."""
    return np.uint16 if n <= PNG_MAX_LABEL else np.uint32


def paint_order(areas: Tensor) -> Tensor:
    """Object indices (Tensor[N] int64) in painting order: largest area first, equal areas in list order, so that
    painting in this order with later objects overwriting earlier ones applies the smaller-wins rule."""
    return torch.argsort(areas, descending=True, stable=True)


def paint_masks(masks: Tensor) -> Tensor:
    """Label map Tensor[H, W] int64 of full-frame masks Tensor[N, H, W], on their device, by the module's rule.

    One scatter of the mask pixels' paint ranks keeping the highest per pixel (memory ~ total mask area plus
    H x W, not N x H x W).
    """
    if masks.dim() != 3:
        raise ValueError(f"masks must be [N, H, W], got {tuple(masks.shape)}")
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros((h, w), dtype=torch.int64, device=masks.device)
    obj, ys, xs = masks.bool().nonzero(as_tuple=True)
    # areas from the pixel list: a sum over the N x H x W bool stack costs more than the whole scatter
    order = paint_order(torch.bincount(obj, minlength=n))
    rank = torch.empty(n, dtype=torch.int64, device=masks.device)
    rank[order] = torch.arange(1, n + 1, device=masks.device)  # painted last = highest rank = wins
    winner = torch.zeros(h * w, dtype=torch.int64, device=masks.device)
    winner.scatter_reduce_(0, ys * w + xs, rank[obj], "amax")  # [H * W] rank of the winning object, 0 = bg
    rank_to_id = torch.zeros(n + 1, dtype=torch.int64, device=masks.device)
    rank_to_id[rank] = torch.arange(1, n + 1, device=masks.device)
    return rank_to_id[winner].view(h, w)


def paint_box_masks(masks: BoxMasks, count_overlaps: bool = True) -> LabelMap:
    """``LabelMap`` (numpy, uint16 up to 65535 objects, else uint32) of box-cropped masks, crop by crop.

    ``count_overlaps`` also counts the pixels covered by more than one object (two extra H x W bool maps).
    """
    h, w = masks.image_size
    n = len(masks)
    label_map = np.zeros((h, w), dtype=label_dtype(n))
    covered = np.zeros((h, w), dtype=bool) if count_overlaps else None
    shared = np.zeros((h, w), dtype=bool) if count_overlaps else None
    crops = [c.cpu().numpy() for c in masks.crops]
    windows = masks.windows.cpu().tolist()
    for i in paint_order(masks.areas()).tolist():
        x0, y0, x1, y1 = windows[i]
        crop = crops[i]
        label_map[y0:y1, x0:x1][crop] = i + 1
        if covered is not None and shared is not None:
            shared[y0:y1, x0:x1] |= covered[y0:y1, x0:x1] & crop
            covered[y0:y1, x0:x1] |= crop
    return LabelMap(label_map, int(np.count_nonzero(shared)) if shared is not None else 0, _lost(label_map, n))


def paint_label_map(masks: Tensor | BoxMasks | np.ndarray, count_overlaps: bool = True) -> LabelMap:
    """``LabelMap`` of masks in either form (full Tensor/array [N, H, W], or ``BoxMasks``) by the module's rule."""
    if isinstance(masks, BoxMasks):
        return paint_box_masks(masks, count_overlaps)
    full = torch.as_tensor(np.ascontiguousarray(masks) if isinstance(masks, np.ndarray) else masks).bool()
    n = int(full.shape[0]) if full.dim() == 3 else 0
    label_map = paint_masks(full).cpu().numpy().astype(label_dtype(n))
    overlap = int((full.sum(0) > 1).sum()) if count_overlaps and n else 0
    return LabelMap(label_map, overlap, _lost(label_map, n))


def _lost(label_map: np.ndarray, n: int) -> list[int]:
    """Objects ``0..n-1`` left without a pixel in ``label_map``."""
    present = np.bincount(label_map.reshape(-1), minlength=n + 1) > 0  # O(H x W), no sort
    return [i for i in range(n) if not present[i + 1]]
