"""Mask encodings, the one RLE codec of instseg: bitmask / box-cropped mask <-> COCO RLE <-> polygons.

Every COCO RLE instseg writes comes from here: full bitmasks through pycocotools' C encoder, and masks known only
by their crops (``BoxMasks``, label-map objects, run indices) through ``rle_from_indices``, which builds the runs
from the object's own pixels so that no full-frame mask is ever made. Both give byte-identical strings.

Bitmasks are numpy ``bool`` arrays [H, W] (or [N, H, W]); RLEs are COCO dicts ``{"size": [h, w], "counts": ...}``
with ``counts`` a ``str`` (compressed) or a ``list[int]`` (uncompressed); polygons are lists of flat
``[x0, y0, x1, y1, ...]`` float lists in absolute pixels, one per part, unioned as COCO does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pycocotools import mask as mask_utils

if TYPE_CHECKING:
    from instseg.structures.box_masks import BoxMasks

Rle = dict[str, Any]


def mask_to_rle(mask: np.ndarray) -> Rle:
    """Encode one bitmask [H, W] as a compressed COCO RLE with ``counts`` as ``str`` (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"]}


def masks_to_rles(masks: np.ndarray) -> list[Rle]:
    """Encode bitmasks [N, H, W] as compressed COCO RLEs (one pycocotools call for all)."""
    if masks.shape[0] == 0:
        return []
    encoded = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")} for r in encoded]


def rle_from_indices(index: np.ndarray, height: int, width: int) -> Rle:
    """Compressed COCO RLE of the mask whose foreground is the column-major flat pixel ``index`` (``x * H + y``,
    ascending, [A]) of a ``height x width`` image: cost follows the object's area, not the image.

    The runs are read off the index (a new run starts wherever it jumps) and pycocotools compresses them, so the
    string equals what ``mask_utils.encode`` gives for the full mask.
    """
    total = int(height) * int(width)
    index = np.asarray(index, dtype=np.int64).reshape(-1)
    if index.size == 0:
        counts = [total]
    else:
        if index[0] < 0 or index[-1] >= total or (index.size > 1 and np.any(np.diff(index) <= 0)):
            raise ValueError(f"pixel indices must be ascending, distinct and inside the {height}x{width} image")
        breaks = np.flatnonzero(np.diff(index) != 1) + 1
        run_starts = index[np.concatenate([[0], breaks])]
        run_ends = index[np.concatenate([breaks - 1, [index.size - 1]])] + 1
        gaps = run_starts - np.concatenate([[0], run_ends[:-1]])  # background before each foreground run
        counts = np.stack([gaps, run_ends - run_starts], axis=1).reshape(-1).tolist()
        if run_ends[-1] < total:  # trailing background (pycocotools writes no empty last run)
            counts.append(total - int(run_ends[-1]))
    rle = mask_utils.frPyObjects({"size": [int(height), int(width)], "counts": counts}, int(height), int(width))
    return {"size": [int(height), int(width)], "counts": rle["counts"].decode("ascii")}


def crop_indices(crop: np.ndarray, x0: int, y0: int, height: int) -> np.ndarray:
    """Column-major flat indices [A] (ascending) in a ``height``-row image of the pixels of ``crop`` (bool
    [h, w]) placed with its top-left at ``(x0, y0)``."""
    cols, rows = np.nonzero(np.asarray(crop, dtype=bool).T)  # column-major order: ascending flat index
    return (cols.astype(np.int64) + x0) * int(height) + rows + y0


def crop_to_rle(crop: np.ndarray, x0: int, y0: int, height: int, width: int) -> Rle:
    """Compressed COCO RLE of a full ``height x width`` mask that is empty outside ``crop`` (bool [h, w]) placed
    with its top-left at ``(x0, y0)``; no full-frame array is built."""
    h, w = np.shape(crop)
    if x0 < 0 or y0 < 0 or x0 + w > width or y0 + h > height:
        raise ValueError(f"a {h}x{w} crop at (x={x0}, y={y0}) does not fit a {height}x{width} image")
    return rle_from_indices(crop_indices(crop, x0, y0, height), height, width)


def box_masks_to_rles(masks: BoxMasks) -> list[Rle]:
    """Compressed COCO RLEs of every mask of a ``BoxMasks``, each encoded from its crop alone."""
    height, width = masks.image_size
    return [crop_to_rle(crop.cpu().numpy(), x0, y0, height, width) for crop, (x0, y0, _, _) in masks]


def _to_compressed(rle: Rle) -> Rle:
    """Return a pycocotools-ready compressed RLE from a compressed (str/bytes) or uncompressed (list) one."""
    if "size" not in rle or "counts" not in rle:
        raise ValueError(f"RLE must have 'size' and 'counts', got keys {sorted(rle)}")
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        if sum(counts) != h * w:
            raise ValueError(f"uncompressed RLE counts sum to {sum(counts)}, expected {h}*{w}={h * w}")
        return mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [h, w], "counts": counts}


def rle_to_mask(rle: Rle) -> np.ndarray:
    """Decode a compressed or uncompressed COCO RLE to a bool bitmask [H, W]."""
    return mask_utils.decode(_to_compressed(rle)).astype(bool)


def rle_area(rle: Rle) -> int:
    """Pixel count of a COCO RLE without decoding it."""
    return int(mask_utils.area(_to_compressed(rle)))


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Rasterise COCO polygons (parts unioned) to a bool bitmask [height, width] with pycocotools."""
    parts = [list(map(float, p)) for p in polygons]
    for p in parts:
        if len(p) < 6 or len(p) % 2:
            raise ValueError(f"a polygon needs at least 3 (x, y) points, got {len(p)} numbers")
    rles = mask_utils.frPyObjects(parts, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def segmentation_to_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Decode any COCO ``segmentation`` (polygon list, compressed or uncompressed RLE) to a bitmask [H, W]."""
    if isinstance(segmentation, list):
        return polygons_to_mask(segmentation, height, width)
    if isinstance(segmentation, dict):
        size = [int(v) for v in segmentation.get("size", [])]
        if size != [height, width]:
            raise ValueError(f"RLE size {size} differs from the image size [{height}, {width}]")
        return rle_to_mask(segmentation)
    raise ValueError(f"segmentation must be a polygon list or an RLE dict, got {type(segmentation).__name__}")


def merge_polygons(polygons: Sequence[Sequence[float]]) -> list[float]:
    """Join polygons into one flat ``[x0, y0, ...]`` polygon by zero-width bridges between their nearest vertices.

    Each bridge is walked there and back along the same segment, so an even-odd rasteriser (pycocotools, and
    Ultralytics' YOLO segment format which stores one polygon per object) gives back the union of disjoint parts
    and keeps holes given as inner contours. Parts are inserted in the order given.
    """
    from scipy.spatial.distance import cdist

    parts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons if len(p) >= 2]
    if not parts:
        return []
    merged = parts[0]
    for part in parts[1:]:
        dist = cdist(merged, part)  # [len(merged), len(part)]
        i, j = np.unravel_index(int(np.argmin(dist)), dist.shape)
        # ..., P, Q, (part from Q around back to Q), P, ... : the bridge P-Q is walked twice
        merged = np.concatenate([merged[: i + 1], part[j:], part[: j + 1], merged[i:]])
    return [float(v) for v in merged.reshape(-1)]


def _drop_collinear(points: np.ndarray) -> np.ndarray:
    """Remove repeated and collinear vertices of a closed polygon [K, 2] (exact test: coordinates are quarters)."""
    keep = np.any(points != np.roll(points, 1, axis=0), axis=1)
    points = points[keep]
    if len(points) < 3:
        return points
    prev_d = points - np.roll(points, 1, axis=0)
    next_d = np.roll(points, -1, axis=0) - points
    cross = prev_d[:, 0] * next_d[:, 1] - prev_d[:, 1] * next_d[:, 0]
    return points[cross != 0]


def mask_to_polygons(mask: np.ndarray, tolerance: float = 0.0) -> list[list[float]]:
    """COCO polygons (absolute pixels) of a bitmask [H, W]: one polygon per 4-connected part, holes kept.

    Contours are traced with ``skimage.measure.find_contours`` on the mask upsampled 2x, so they run along the
    pixel edges (corners cut by a quarter pixel) in the convention of pycocotools' rasteriser, where pixel
    ``(x, y)`` spans ``[x, x + 1) x [y, y + 1)`` and is filled when its centre ``(x + .5, y + .5)`` is inside:
    rasterising the result with ``polygons_to_mask`` gives the mask back exactly (``tolerance=0``). Each hole
    contour is joined to its part's outer contour by a zero-width bridge (``merge_polygons``), which the even-odd
    fill of pycocotools leaves empty. ``tolerance > 0`` simplifies each contour (Douglas-Peucker, in pixels) for
    smaller files at the cost of exactness.
    """
    from scipy import ndimage
    from skimage.measure import approximate_polygon, find_contours, label

    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 2:
        raise ValueError(f"mask_to_polygons needs a mask [H, W], got shape {tuple(mask.shape)}")
    parts = label(mask, connectivity=1)  # [H, W] int, 0 = background
    polygons: list[list[float]] = []
    for k, window in enumerate(ndimage.find_objects(parts), start=1):
        if window is None:
            continue
        y0, x0 = window[0].start, window[1].start
        part = np.pad(parts[window] == k, 1)
        up = np.repeat(np.repeat(part, 2, axis=0), 2, axis=1).astype(np.float32)
        # fully_connected="low": background 8-connected, so each 4-connected part gives one outer contour
        contours = find_contours(up, 0.5, fully_connected="low")
        rings = []
        for c in contours:
            # upsampled centre coordinate u -> pixel-edge coordinate (u + .5) / 2, minus the 1-pixel pad
            xy = np.stack([(c[:, 1] + 0.5) / 2 - 1 + x0, (c[:, 0] + 0.5) / 2 - 1 + y0], axis=1)[:-1]
            if tolerance > 0:
                xy = approximate_polygon(np.concatenate([xy, xy[:1]]), tolerance)[:-1]
            xy = _drop_collinear(xy)
            if len(xy) >= 3:
                rings.append(xy)
        if not rings:
            continue
        rings.sort(key=lambda r: -_ring_area(r))  # outer contour (largest area) first
        polygons.append(merge_polygons([r.reshape(-1).tolist() for r in rings]))
    return polygons


def _ring_area(ring: np.ndarray) -> float:
    """Unsigned shoelace area of a closed polygon [K, 2]."""
    x, y = ring[:, 0], ring[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)
