"""Label maps <-> instances: the bridge between the dense maps of bottom-up methods and ``Instances``.

A label map is an integer image (Tensor[H, W]) where 0 is background and each object owns one positive id.
Bottom-up methods (watershed, pixel embeddings) train on label maps built from ``Instances`` and turn their
clustered label maps back into ``Instances``; every function here is vectorised over pixels (a loop over
objects is the most any of them does).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage as ndi
from torch import Tensor

from instseg.structures.box_masks import BoxMasks
from instseg.structures.instances import Instances
from instseg.structures.label_map import paint_box_masks, paint_masks


def _check_label_map(label_map: Tensor) -> None:
    """Raise if ``label_map`` is not a 2-D integer tensor."""
    if label_map.dim() != 2:
        raise ValueError(f"label map must be [H, W], got {tuple(label_map.shape)}")
    if label_map.is_floating_point() or label_map.dtype == torch.bool:
        raise TypeError(f"label map must hold integers, got {label_map.dtype}")


def _foreground(label_map: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Flat indices of the foreground pixels (Tensor[P]), the object ids (Tensor[N], increasing) and each
    foreground pixel's object index 0..N-1 (Tensor[P]): one ``unique`` shared by masks, boxes and scores."""
    _check_label_map(label_map)
    flat = label_map.reshape(-1).long()
    if flat.numel() > 0 and int(flat.min()) < 0:
        raise ValueError(f"label map has negative id {int(flat.min())}")
    pixels = torch.nonzero(flat > 0).squeeze(1)  # [P]
    ids, index = torch.unique(flat[pixels], return_inverse=True)
    return pixels, ids, index


def _masks(pixels: Tensor, index: Tensor, n: int, shape: tuple[int, int]) -> Tensor:
    """Bool masks Tensor[N, H, W] filled by one scatter of the foreground pixels (cost: zeroing + one pass)."""
    h, w = shape
    masks = torch.zeros((n, h * w), dtype=torch.bool, device=pixels.device)
    masks[index, pixels] = True
    return masks.view(n, h, w)


def _boxes(pixels: Tensor, index: Tensor, n: int, shape: tuple[int, int]) -> Tensor:
    """Tight ``xyxy`` boxes Tensor[N, 4] by ``scatter_reduce`` over the foreground pixels: O(H x W) instead of the
    O(N x H x W) of ``ops.boxes.masks_to_boxes`` on full masks; same convention (exclusive right/bottom edge)."""
    h, w = shape
    ys, xs = pixels // w, pixels % w
    low = torch.full((n,), max(h, w), dtype=torch.int64, device=pixels.device)
    high = torch.full((n,), -1, dtype=torch.int64, device=pixels.device)
    x0 = low.scatter_reduce(0, index, xs, "amin")
    y0 = low.scatter_reduce(0, index, ys, "amin")
    x1 = high.scatter_reduce(0, index, xs, "amax") + 1
    y1 = high.scatter_reduce(0, index, ys, "amax") + 1
    return torch.stack([x0, y0, x1, y1], dim=1).float()


def label_map_to_masks(label_map: Tensor) -> tuple[Tensor, Tensor]:
    """Ids (Tensor[N] int64, increasing, 0 left out) and bool masks (Tensor[N, H, W]) of a label map Tensor[H, W]."""
    pixels, ids, index = _foreground(label_map)
    return ids, _masks(pixels, index, ids.numel(), tuple(label_map.shape))  # type: ignore[arg-type]


def label_map_boxes(label_map: Tensor) -> tuple[Tensor, Tensor]:
    """Ids (Tensor[N] int64, increasing, 0 left out) and tight ``xyxy`` boxes (Tensor[N, 4]) of a label map."""
    pixels, ids, index = _foreground(label_map)
    return ids, _boxes(pixels, index, ids.numel(), tuple(label_map.shape))  # type: ignore[arg-type]


def label_map_to_instances(
    label_map: Tensor,
    scores: Tensor | None = None,
    labels: Tensor | None = None,
    compact: bool = False,
) -> Instances:
    """``Instances`` (masks and tight boxes) of the objects of a label map Tensor[H, W].

    Objects come in increasing id order; ``scores`` / ``labels`` (Tensor[N]) are given in that same order.
    ``compact=True`` gives the masks cropped to their boxes (``BoxMasks``: cost H x W plus the boxes' areas)
    instead of the N x H x W full-frame stack.
    """
    pixels, ids, index = _foreground(label_map)
    shape: tuple[int, int] = (int(label_map.shape[0]), int(label_map.shape[1]))
    n = ids.numel()
    boxes = _boxes(pixels, index, n, shape)
    if compact:
        windows = boxes.long()
        pairs = zip(ids.tolist(), windows.tolist(), strict=True)
        crops = [label_map[y0:y1, x0:x1] == k for k, (x0, y0, x1, y1) in pairs]
        box_masks = BoxMasks(shape, crops, windows)
        return Instances(shape, boxes=boxes, labels=labels, masks=box_masks, scores=scores)
    return Instances(shape, boxes=boxes, labels=labels, masks=_masks(pixels, index, n, shape), scores=scores)


def instances_to_label_map(instances: Instances | Tensor) -> Tensor:
    """Label map (Tensor[H, W] int64) where object ``i`` (of masks Tensor[N, H, W]) gets id ``i + 1``.

    Painted by ``instseg.structures.label_map`` (the one painter): where masks overlap the smallest object wins
    (equal areas: the one listed later), so that a small object lying on a large one keeps its pixels. Masks of
    area zero simply never appear. Compact instances (``BoxMasks``) are painted crop by crop.
    """
    if isinstance(instances, Instances):
        if not instances.has_masks:
            raise ValueError("instances_to_label_map needs instances with masks")
        if instances.is_compact:
            painted = paint_box_masks(instances.box_masks, count_overlaps=False)  # type: ignore[arg-type]
            return torch.from_numpy(painted.label_map.astype(np.int64)).to(instances.device)
        masks = instances.masks
    else:
        masks = instances
    assert masks is not None
    return paint_masks(masks)


def label_means(label_map: Tensor, values: Tensor, num_labels: int | None = None) -> Tensor:
    """Mean of ``values`` (Tensor[H, W] or Tensor[C, H, W]) over each id 0..num_labels of ``label_map`` Tensor[H, W].

    Returns Tensor[num_labels + 1] (or Tensor[num_labels + 1, C]); ids without pixels get 0. One ``index_add``
    for all objects, which is what per-object scores and class votes need.
    """
    flat = label_map.reshape(-1).long()
    n = int(flat.max()) if num_labels is None and flat.numel() > 0 else int(num_labels or 0)
    squeeze = values.dim() == 2
    vals = values.reshape(1 if squeeze else values.shape[0], -1).t().float()  # [P, C]
    counts = torch.zeros(n + 1, dtype=torch.float32, device=values.device).index_add_(
        0, flat, torch.ones_like(flat, dtype=torch.float32)
    )
    sums = torch.zeros((n + 1, vals.shape[1]), dtype=torch.float32, device=values.device).index_add_(0, flat, vals)
    means = sums / counts.clamp(min=1.0)[:, None]
    return means[:, 0] if squeeze else means


def normalized_distance_map(label_map: np.ndarray) -> np.ndarray:
    """Per-object distance transform divided by each object's maximum (float32 [H, W] in [0, 1], 0 on background).

    Each pixel gets its Euclidean distance to the nearest pixel *not* of its own object (background or a
    touching neighbour), divided by the largest such distance inside its object, so that small and large cells
    both peak at 1 in their centre and touching cells are separated by a valley. Computed with
    ``scipy.ndimage.distance_transform_edt`` on each object's bounding-box crop (found for all objects at once
    by ``scipy.ndimage.find_objects``), which keeps the cost proportional to the objects' area; pixels outside
    the image count as not belonging to the object.
    """
    label_map = np.asarray(label_map)
    if label_map.ndim != 2:
        raise ValueError(f"label map must be [H, W], got shape {label_map.shape}")
    out = np.zeros(label_map.shape, dtype=np.float32)
    if label_map.size == 0 or label_map.max() <= 0:
        return out
    for index, window in enumerate(ndi.find_objects(label_map.astype(np.int64, copy=False))):
        if window is None:
            continue
        own = label_map[window] == index + 1  # [h, w] crop of this object
        dist = ndi.distance_transform_edt(np.pad(own, 1))[1:-1, 1:-1]
        peak = dist.max()
        if peak > 0:
            crop = out[window]
            crop[own] = dist[own] / peak
    return out


def batch_label_maps(targets: Sequence[Instances], shape: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Label maps (Tensor[B, H, W] int64) and valid-pixel masks (Tensor[B, H, W] bool) of targets on a padded batch.

    Image ``i`` occupies the top-left ``targets[i].image_size`` of the padded ``shape``; padding is background
    and not valid (losses skip it). Object ``j`` of image ``i`` gets id ``j + 1`` (see ``instances_to_label_map``).
    """
    h, w = (int(v) for v in shape)
    device = targets[0].device if len(targets) > 0 else torch.device("cpu")
    maps = torch.zeros((len(targets), h, w), dtype=torch.int64, device=device)
    valid = torch.zeros((len(targets), h, w), dtype=torch.bool, device=device)
    for i, target in enumerate(targets):
        th, tw = target.image_size
        if th > h or tw > w:
            raise ValueError(f"target {i} is {th}x{tw}, larger than the {h}x{w} batch it belongs to")
        valid[i, :th, :tw] = True
        if len(target) > 0:
            if target.masks is None:
                raise ValueError(f"target {i} has boxes but no masks; bottom-up methods need masks")
            maps[i, :th, :tw] = instances_to_label_map(target.masks.to(device))
    return maps, valid


def batch_distance_maps(label_maps: Tensor) -> Tensor:
    """``normalized_distance_map`` of each label map of Tensor[B, H, W] (computed on the CPU), as Tensor[B, H, W]."""
    cpu = label_maps.detach().cpu().numpy()
    out = np.stack([normalized_distance_map(m) for m in cpu]) if len(cpu) else np.zeros(cpu.shape, np.float32)
    return torch.from_numpy(out).to(label_maps.device)


def batch_class_maps(
    label_maps: Tensor, valid: Tensor, targets: Sequence[Instances], ignore_index: int = -100
) -> Tensor:
    """Per-pixel class index (Tensor[B, H, W] int64) of label maps Tensor[B, H, W] built by ``batch_label_maps``.

    Object ``j`` of image ``i`` (id ``j + 1``) gets ``targets[i].labels[j]``; background and padding (``~valid``)
    get ``ignore_index``, so a per-pixel cross-entropy only scores object pixels.
    """
    out = []
    for label_map, target in zip(label_maps, targets, strict=True):
        lookup = torch.cat([target.labels.new_full((1,), ignore_index), target.labels]).to(label_map.device)
        out.append(lookup[label_map])
    return torch.where(valid, torch.stack(out), ignore_index)


def scored_instances(
    label_map: Tensor, score_map: Tensor, class_prob: Tensor | None = None, compact: bool = False
) -> Instances:
    """``Instances`` of a label map Tensor[H, W] scored by the mean of ``score_map`` Tensor[H, W] over each object
    and labelled with the class of highest mean ``class_prob`` Tensor[K, H, W] (class 0 without it); ``compact``
    as in ``label_map_to_instances``."""
    n = int(label_map.max()) if label_map.numel() else 0
    ids = torch.unique(label_map)
    ids = ids[ids > 0].long()
    scores = label_means(label_map, score_map, n)[ids]
    labels = label_means(label_map, class_prob, n)[ids].argmax(1) if class_prob is not None else None
    return label_map_to_instances(label_map, scores=scores, labels=labels, compact=compact)
