"""Tiled prediction of images too large for one pass: overlapping tiles, objects stitched across seams.

Each tile is predicted on its own. An object is kept by the one tile whose *core* holds the centre of its
box: the core is the tile minus half of what it shares with each neighbour, so the cores partition the image
and an object narrower than half the overlap is seen whole by the tile that keeps it. A kept object whose box
touches a seam and whose pixels are mostly those of an object kept whole elsewhere is a cut-off part of that
object and is dropped. Each kept object is stored cropped to its box (``BoxMasks``), which is what makes a
gigapixel image affordable: memory grows with the objects' areas, never with (objects x image size), and
objects that overlap keep their whole masks (a label map could hold only one of them).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from instseg.structures import Instances
from instseg.structures.box_masks import BoxMasks


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap`` shared pixels."""
    if tile <= overlap:
        raise ValueError(f"tile size {tile} must be larger than the overlap {overlap}")
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def tile_cores(starts: list[int], tile: int, length: int) -> list[tuple[int, int]]:
    """The part ``[lo, hi)`` of each tile that it owns: neighbours split their shared pixels in the middle, so the
    cores partition ``[0, length)`` even where the last tile overlaps its neighbour by more than the rest."""
    ends = [min(start + tile, length) for start in starts]
    bounds = [0] + [(starts[k + 1] + ends[k]) // 2 for k in range(len(starts) - 1)] + [length]
    return [(bounds[k], bounds[k + 1]) for k in range(len(starts))]


def predict_tiled(
    predict: Callable[[np.ndarray], Instances],
    image: np.ndarray,
    tile: int = 1024,
    overlap: int = 256,
) -> Instances:
    """Predict ``image`` ([H, W, 3] uint8) tile by tile with ``predict`` and stitch the objects into compact
    ``Instances`` (masks as ``BoxMasks``; boxes, labels and scores as ``predict`` gave them, moved to the image).

    ``overlap`` should be at least twice the largest object's size for seamless results.
    """
    h, w = image.shape[:2]
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    cores_y, cores_x = (
        dict(zip(ys, tile_cores(ys, tile, h), strict=True)),
        dict(zip(xs, tile_cores(xs, tile, w), strict=True)),
    )
    boxes, labels, scores, crops, windows, at_seam = [], [], [], [], [], []
    has_masks = True
    for ty in ys:
        for tx in xs:
            th, tw = min(tile, h - ty), min(tile, w - tx)
            core_y, core_x = cores_y[ty], cores_x[tx]
            found = predict(np.ascontiguousarray(image[ty : ty + th, tx : tx + tw])).to("cpu").compact()
            if len(found) == 0:
                continue
            found_boxes = found.boxes.numpy()
            cy = ty + (found_boxes[:, 1] + found_boxes[:, 3]) / 2
            cx = tx + (found_boxes[:, 0] + found_boxes[:, 2]) / 2
            keep = (cy >= core_y[0]) & (cy < core_y[1]) & (cx >= core_x[0]) & (cx < core_x[1])
            if not keep.any():
                continue
            kept = found[torch.from_numpy(keep)]
            shift = torch.tensor([tx, ty, tx, ty])
            # a box touching a side of the tile that borders another tile may be a fragment of an object cut there
            kb = kept.boxes
            at_seam.append(
                ((kb[:, 0] <= 0) & (tx > 0))
                | ((kb[:, 1] <= 0) & (ty > 0))
                | ((kb[:, 2] >= tw) & (tx + tw < w))
                | ((kb[:, 3] >= th) & (ty + th < h))
            )
            boxes.append(kept.boxes + shift)
            labels.append(kept.labels)
            scores.append(kept.scores if kept.scores is not None else torch.ones(len(kept)))
            has_masks = has_masks and kept.has_masks
            if kept.has_masks:
                box_masks = kept.box_masks  # crops of this tile's objects only: the tile's full masks are gone
                assert box_masks is not None
                crops.extend(box_masks.crops)
                windows.append(box_masks.windows + shift)
    if not boxes:
        return Instances.empty((h, w), with_masks=True, with_scores=True).compact()
    masks = BoxMasks((h, w), crops, torch.cat(windows)) if has_masks else None
    stitched = Instances(
        (h, w), boxes=torch.cat(boxes), labels=torch.cat(labels), masks=masks, scores=torch.cat(scores)
    )
    if masks is None:
        return stitched
    return stitched[~_duplicated_fragments(masks, torch.cat(at_seam))]


def _duplicated_fragments(masks: BoxMasks, at_seam: Tensor) -> Tensor:
    """Bool Tensor[N]: objects cut by a tile seam (``at_seam``) of which at least half the pixels belong to one
    object that is not at a seam, i.e. the part of an object that the neighbouring tile has seen whole.

    Only windows that intersect are compared, crop against crop, so the cost follows the fragments' areas.
    """
    drop = torch.zeros(len(masks), dtype=torch.bool)
    candidates = at_seam.nonzero().flatten().tolist()
    if not candidates:
        return drop
    win = masks.windows.cpu().numpy()  # [N, 4]
    whole = ~at_seam.cpu().numpy()
    for i in candidates:
        x0, y0, x1, y1 = win[i]
        area = int(masks.crops[i].sum())
        if area == 0:
            continue
        near = (win[:, 0] < x1) & (win[:, 2] > x0) & (win[:, 1] < y1) & (win[:, 3] > y0) & whole
        for j in np.flatnonzero(near):
            shared = masks.crops[i] & masks.crop(int(j), (int(x0), int(y0), int(x1), int(y1)))
            if 2 * int(shared.sum()) >= area:
                drop[i] = True
                break
    return drop
