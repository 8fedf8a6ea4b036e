"""Star-convex polygons in numpy: rasterising them and the greedy polygon NMS of the star-convex model.

The one copy of these steps: the star-convex model's post-processor (``instseg.methods.star_convex``) and the
runtime's grouping of its exported maps (``instseg_runtime.star_convex``) both call them, and
``instseg.ops.polar_rays`` re-exports the rasterisers. Geometry: pixel ``(i, j)`` is the unit square centred at
``(y, x) = (i, j)``; ray ``k`` of ``n`` points along angle ``2 pi k / n`` (``(dy, dx) = (sin, cos)``).
"""

from __future__ import annotations

import math

import numpy as np

Window = tuple[int, int, int, int]
# candidates rasterised together: numpy's per-call cost is paid once per chunk
NMS_CHUNK = 32


def rasterize_polygon(vertices: np.ndarray, shape: tuple[int, int]) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """The pixels of ``shape`` (H, W) whose centres lie inside the polygon ``vertices`` [n, 2] ``(y, x)``, as the
    integer window ``(x0, y0, x1, y1)`` (exclusive right/bottom edge) of those pixels and the bool crop
    [y1 - y0, x1 - x0] of the polygon in it (an empty window and crop when no pixel centre is inside).

    The even-odd rule with half-open edges: pixel for pixel the result of ``skimage.draw.polygon`` (a test holds
    them equal) except for centres exactly on an edge, which that library always counts. Written by scanlines
    rather than calling it: each pixel row meets the ``n`` edges at a few crossings and is filled between pairs of
    them, O(rows x n + area) instead of the library's O(box area x n) point tests, which made the polygon NMS of
    large nuclei 50x slower.
    """
    h, w = shape
    ys, xs = vertices[:, 0].astype(np.float64), vertices[:, 1].astype(np.float64)
    r0, r1 = max(0, math.ceil(float(ys.min()))), min(h - 1, math.floor(float(ys.max())))
    if r1 < r0 or w <= 0:
        return (0, 0, 0, 0), np.zeros((0, 0), dtype=bool)
    rows = np.arange(r0, r1 + 1, dtype=np.float64)[:, None]  # [R, 1] pixel-centre lines
    yi, xi = ys[None, :], xs[None, :]  # edge k joins vertex k - 1 to vertex k
    yj, xj = np.roll(ys, 1)[None, :], np.roll(xs, 1)[None, :]
    crosses = ((yi <= rows) & (rows < yj)) | ((yj <= rows) & (rows < yi))  # [R, n]
    with np.errstate(divide="ignore", invalid="ignore"):
        at = (xj - xi) * (rows - yi) / (yj - yi) + xi  # where each edge meets each row
    at = np.sort(np.where(crosses, at, np.inf), axis=1)
    pairs = int(crosses.sum(1).max()) // 2
    if pairs == 0:
        return (0, 0, 0, 0), np.zeros((0, 0), dtype=bool)
    # a pixel centre c is inside when an odd number of crossings lies right of it: between crossings 2i and 2i+1
    starts = np.clip(np.ceil(at[:, 0 : 2 * pairs : 2]), 0, w)  # [R, P] (inf: no pair on this row)
    ends = np.clip(np.ceil(at[:, 1 : 2 * pairs : 2]), 0, w)
    c0 = int(starts.min())
    c1 = int(ends[np.isfinite(at[:, 1 : 2 * pairs : 2])].max(initial=c0))
    if c1 <= c0:
        return (0, 0, 0, 0), np.zeros((0, 0), dtype=bool)
    cols = np.arange(c0, c1, dtype=np.float64)[None, None, :]
    inside: np.ndarray = (cols >= starts[:, :, None]) & (cols < ends[:, :, None])  # [R, P, c1 - c0]
    crop = np.asarray(inside.any(axis=1))  # [R, c1 - c0]
    filled_rows, filled_cols = np.flatnonzero(crop.any(1)), np.flatnonzero(crop.any(0))
    if filled_rows.size == 0:
        return (0, 0, 0, 0), np.zeros((0, 0), dtype=bool)
    a, b = int(filled_rows[0]), int(filled_rows[-1]) + 1
    c, d = int(filled_cols[0]), int(filled_cols[-1]) + 1
    return (c0 + c, r0 + a, c0 + d, r0 + b), np.ascontiguousarray(crop[a:b, c:d])


def rasterize_polygons(vertices: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``rasterize_polygon`` of many polygons ``vertices`` [M, n, 2] at once: their windows [M, 4] int64
    ``(x0, y0, x1, y1)`` (the pixels their extent can cover, clipped to ``shape``; not tight) and masks
    [M, R, C] bool, polygon ``m``'s crop in ``masks[m, : y1 - y0, : x1 - x0]`` (False beyond).

    Same rule and arithmetic as ``rasterize_polygon`` (tests hold them equal), vectorised over the polygons so
    that a polygon NMS pays numpy's per-call cost once per batch of candidates, not once per candidate.
    """
    h, w = shape
    ys, xs = vertices[..., 0].astype(np.float64), vertices[..., 1].astype(np.float64)  # [M, n]
    m = ys.shape[0]
    y0 = np.clip(np.ceil(ys.min(1, initial=np.inf)), 0, h).astype(np.int64)
    y1 = np.clip(np.floor(ys.max(1, initial=-np.inf)) + 1, 0, h).astype(np.int64)
    x0 = np.clip(np.ceil(xs.min(1, initial=np.inf)), 0, w).astype(np.int64)
    x1 = np.clip(np.floor(xs.max(1, initial=-np.inf)) + 1, 0, w).astype(np.int64)
    y1, x1 = np.maximum(y1, y0), np.maximum(x1, x0)
    windows = np.stack([x0, y0, x1, y1], axis=1)
    n_rows, n_cols = int((y1 - y0).max(initial=0)), int((x1 - x0).max(initial=0))
    if m == 0 or n_rows == 0 or n_cols == 0:
        return windows, np.zeros((m, n_rows, n_cols), dtype=bool)
    rows = (y0[:, None] + np.arange(n_rows)[None, :]).astype(np.float64)[:, :, None]  # [M, R, 1]
    yi, xi = ys[:, None, :], xs[:, None, :]  # edge k joins vertex k - 1 to vertex k
    yj, xj = np.roll(ys, 1, axis=1)[:, None, :], np.roll(xs, 1, axis=1)[:, None, :]
    crosses = ((yi <= rows) & (rows < yj)) | ((yj <= rows) & (rows < yi))  # [M, R, n]
    with np.errstate(divide="ignore", invalid="ignore"):
        at = (xj - xi) * (rows - yi) / (yj - yi) + xi
    at = np.sort(np.where(crosses, at, np.inf), axis=2)
    pairs = int(crosses.sum(2).max()) // 2
    starts = np.ceil(at[:, :, 0 : 2 * pairs : 2])[..., None]  # [M, R, P, 1]
    ends = np.ceil(at[:, :, 1 : 2 * pairs : 2])[..., None]
    cols = (x0[:, None] + np.arange(n_cols)[None, :]).astype(np.float64)[:, None, None, :]  # [M, 1, 1, C]
    masks = ((cols >= starts) & (cols < ends)).any(axis=2)  # [M, R, C]
    masks &= (np.arange(n_rows)[None, :, None] < (y1 - y0)[:, None, None]) & (
        np.arange(n_cols)[None, None, :] < (x1 - x0)[:, None, None]
    )
    return windows, masks


def polygon_nms(
    prob: np.ndarray,
    distances: np.ndarray,
    prob_threshold: float,
    iou_threshold: float,
    min_area: int,
    max_candidates: int,
    max_detections: int,
    candidate_stride: int = 1,
    skip_covered: bool = False,
) -> tuple[np.ndarray, list[Window], list[np.ndarray]]:
    """Greedy NMS of the polygons of the pixels whose ``prob`` [H, W] exceeds ``prob_threshold`` (ray
    ``distances`` [n, H, W] in pixels): the flat pixel indices kept (highest probability first), their windows
    ``(x0, y0, x1, y1)`` and bool crops (see ``rasterize_polygon``; windows not tight).

    Candidates are the pixels ``(candidate_stride * i, candidate_stride * j)`` (StarDist predicts its polygons on
    such a grid), visited by decreasing probability (the ``max_candidates`` highest; ties by pixel order); a
    polygon is rasterised (pixel centres inside) and dropped when it covers fewer than ``min_area`` pixels or its
    IoU with an already kept polygon exceeds ``iou_threshold``. The IoU is counted on the rasterised masks inside
    the two windows' overlap (exact for the masks returned; polygons whose windows do not overlap have IoU 0 and
    are not compared). Stops after ``max_detections`` objects. Candidates are rasterised ``NMS_CHUNK`` at a time.

    ``skip_covered`` drops, without rasterising it, a candidate whose own pixel already lies inside a kept mask:
    it sits inside an object that has its polygon and scores lower than that polygon's centre. Exact NMS
    rasterises every candidate (thousands per image: 20 s for a 512 x 512 image in numpy); with the shortcut
    only about one per object and the stragglers at object edges are, and a candidate it drops would only have
    been kept had its polygon overlapped the kept one by at most ``iou_threshold`` while containing its centre.
    """
    h, w = prob.shape
    n_rays = distances.shape[0]
    flat = prob.reshape(-1)
    on_grid = np.zeros((h, w), dtype=bool)
    on_grid[::candidate_stride, ::candidate_stride] = True
    candidates = np.flatnonzero((flat > prob_threshold) & on_grid.reshape(-1))
    order = candidates[np.argsort(-flat[candidates], kind="stable")][:max_candidates]
    angles = np.arange(n_rays, dtype=np.float64) * (2.0 * np.pi / n_rays)
    direction = np.stack([np.sin(angles), np.cos(angles)], axis=1)  # [n, 2] float64 (y, x)
    rays = distances.reshape(n_rays, -1)
    limit = min(len(order), max_detections)
    kept: list[int] = []
    windows: list[Window] = []
    crops: list[np.ndarray] = []
    boxes = np.zeros((limit, 4), dtype=np.int64)  # windows of the kept, as an array
    areas = np.zeros(limit, dtype=np.int64)
    covered = np.zeros(h * w, dtype=bool)  # pixels of the kept masks (``skip_covered``)
    start = 0
    while start < len(order) and len(kept) < limit:
        index = order[start : start + NMS_CHUNK]
        start += len(index)
        if skip_covered:
            index = index[~covered[index]]
        centres = np.stack([index // w, index % w], axis=1).astype(np.float64)  # [M, 2]
        vertices = centres[:, None, :] + rays[:, index].T.astype(np.float64)[:, :, None] * direction[None]
        chunk_windows, masks = rasterize_polygons(vertices, (h, w))
        chunk_areas = masks.sum(axis=(1, 2))
        for m in np.flatnonzero(chunk_areas >= max(min_area, 1)).tolist():
            if skip_covered and covered[index[m]]:
                continue
            x0, y0, x1, y1 = (int(v) for v in chunk_windows[m])
            crop = masks[m, : y1 - y0, : x1 - x0]
            area = int(chunk_areas[m])
            k = len(kept)
            if _overlaps_a_kept((x0, y0, x1, y1), crop, area, boxes[:k], crops, areas[:k], iou_threshold):
                continue
            boxes[k], areas[k] = (x0, y0, x1, y1), area
            kept.append(int(index[m]))
            windows.append((x0, y0, x1, y1))
            crops.append(crop)
            covered.reshape(h, w)[y0:y1, x0:x1] |= crop
            if len(kept) >= limit:
                break
    return np.asarray(kept, dtype=np.int64), windows, crops


def _overlaps_a_kept(
    window: Window,
    crop: np.ndarray,
    area: int,
    boxes: np.ndarray,
    crops: list[np.ndarray],
    areas: np.ndarray,
    iou_threshold: float,
) -> bool:
    """Whether the mask ``crop`` in ``window`` has IoU > ``iou_threshold`` with a kept mask (windows ``boxes``
    [K, 4], ``crops``, pixel ``areas`` [K])."""
    if len(boxes) == 0:
        return False
    x0, y0, x1, y1 = window
    ix0, iy0 = np.maximum(boxes[:, 0], x0), np.maximum(boxes[:, 1], y0)
    ix1, iy1 = np.minimum(boxes[:, 2], x1), np.minimum(boxes[:, 3], y1)
    for j in np.flatnonzero((ix1 > ix0) & (iy1 > iy0)).tolist():
        kx0, ky0 = int(boxes[j, 0]), int(boxes[j, 1])
        a, b, c, d = int(ix0[j]), int(iy0[j]), int(ix1[j]), int(iy1[j])
        inter = int(
            np.count_nonzero(crop[b - y0 : d - y0, a - x0 : c - x0] & crops[j][b - ky0 : d - ky0, a - kx0 : c - kx0])
        )
        if inter > iou_threshold * (area + int(areas[j]) - inter):
            return True
    return False
