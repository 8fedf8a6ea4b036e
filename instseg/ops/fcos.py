"""FCOS's per-location geometry (Tian et al. 2019, "FCOS: Fully Convolutional One-Stage Object Detection"):
pyramid points, which object each point learns, distances to box sides and centre-ness.

Shared by the dense one-stage methods (PolarMask, CondInst, BlendMask). A point is the centre of a cell of a
pyramid level with stride ``s``: input pixel ``(s * j + s // 2, s * i + s // 2)`` for cell ``(i, j)``, written
``(x, y)``; distances ``ltrb`` are ``(x - x0, y - y0, x1 - x, y1 - y)`` to the sides of an ``xyxy`` box.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

# FCOS's object-size ranges for P3..P7 (the largest side distance a level regresses), in input pixels
FCOS_SIZE_RANGES: tuple[tuple[float, float], ...] = ((0, 64), (64, 128), (128, 256), (256, 512), (512, float("inf")))
# the same for a P3..P6 pyramid (the top level takes every larger object)
P3_P6_SIZE_RANGES: tuple[tuple[float, float], ...] = ((0, 64), (64, 128), (128, 256), (256, float("inf")))


def level_points(
    sizes: Sequence[tuple[int, int]], strides: Sequence[int], device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    """Points Tensor[P, 2] float32 ``(x, y)`` of every cell of levels of ``sizes`` ``(H_l, W_l)`` and ``strides``,
    level by level and row-major inside a level (the order heads flatten their maps in), and each point's level
    Tensor[P] int64."""
    if len(sizes) != len(strides):
        raise ValueError(f"one stride per level: got {len(sizes)} sizes and {len(strides)} strides")
    points, levels = [], []
    for index, ((h, w), s) in enumerate(zip(sizes, strides, strict=True)):
        ys = torch.arange(h, device=device, dtype=torch.float32) * s + s // 2
        xs = torch.arange(w, device=device, dtype=torch.float32) * s + s // 2
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1))
        levels.append(torch.full((h * w,), index, dtype=torch.int64, device=device))
    return torch.cat(points), torch.cat(levels)


def ltrb_targets(points: Tensor, boxes: Tensor) -> Tensor:
    """Tensor[P, 4] distances ``(l, t, r, b)`` from ``points`` Tensor[P, 2] to the sides of their ``boxes``
    Tensor[P, 4] (one box per point; negative when the point is outside)."""
    x, y = points[:, 0], points[:, 1]
    return torch.stack([x - boxes[:, 0], y - boxes[:, 1], boxes[:, 2] - x, boxes[:, 3] - y], dim=1)


def decode_ltrb(points: Tensor, ltrb: Tensor) -> Tensor:
    """Tensor[P, 4] ``xyxy`` boxes from ``points`` Tensor[P, 2] and side distances ``ltrb`` Tensor[P, 4]."""
    x, y = points[:, 0], points[:, 1]
    return torch.stack([x - ltrb[:, 0], y - ltrb[:, 1], x + ltrb[:, 2], y + ltrb[:, 3]], dim=1)


def box_centerness(ltrb: Tensor, eps: float = 1e-6) -> Tensor:
    """Tensor[P]: FCOS's centre-ness ``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))`` of positive side
    distances Tensor[P, 4]: 1 at a box centre, towards 0 at its sides (down-weights off-centre detections)."""
    lr, tb = ltrb[:, 0::2].clamp(min=0), ltrb[:, 1::2].clamp(min=0)
    ratio = lr.amin(1) / lr.amax(1).clamp(min=eps) * tb.amin(1) / tb.amax(1).clamp(min=eps)
    return ratio.sqrt()


def assign_points(
    points: Tensor,
    levels: Tensor,
    strides: Sequence[int],
    size_ranges: Sequence[tuple[float, float]],
    boxes: Tensor,
    centres: Tensor,
    radius: float = 1.5,
    inside: Tensor | None = None,
) -> Tensor:
    """Tensor[P] int64: the object each point learns (index into ``boxes`` Tensor[N, 4]), -1 for background.

    FCOS with centre sampling: a point is positive for an object when it lies inside its box, within ``radius``
    strides of the object's ``centres`` Tensor[N, 2] ``(x, y)`` (box centres, or mass centres for PolarMask; the
    region is clipped to the box), on the level whose ``size_ranges`` entry holds its largest side distance, and,
    when given, where ``inside`` (bool Tensor[P, N], e.g. "the point is on the object's mask") holds. A point
    claimed by several objects learns the one with the smallest box. Beyond the paper: an object that no point
    claims (smaller than a cell of the finest level, common for nuclei) takes the free finest-level point nearest
    to its centre, so that every object is trained.
    """
    num_points, n = points.shape[0], boxes.shape[0]
    if n == 0:
        return torch.full((num_points,), -1, dtype=torch.int64, device=points.device)
    stride = torch.as_tensor(list(strides), dtype=points.dtype, device=points.device)[levels]  # [P]
    ranges = torch.as_tensor([list(r) for r in size_ranges], dtype=points.dtype, device=points.device)[levels]
    x, y = points[:, 0:1], points[:, 1:2]  # [P, 1]
    ltrb = torch.stack([x - boxes[:, 0], y - boxes[:, 1], boxes[:, 2] - x, boxes[:, 3] - y], dim=2)  # [P, N, 4]
    in_box = ltrb.amin(2) > 0
    reach = radius * stride[:, None]  # [P, 1]
    cx0 = torch.maximum(centres[:, 0] - reach, boxes[:, 0])
    cy0 = torch.maximum(centres[:, 1] - reach, boxes[:, 1])
    cx1 = torch.minimum(centres[:, 0] + reach, boxes[:, 2])
    cy1 = torch.minimum(centres[:, 1] + reach, boxes[:, 3])
    in_centre = (x > cx0) & (x < cx1) & (y > cy0) & (y < cy1)
    largest = ltrb.amax(2)
    in_range = (largest >= ranges[:, 0:1]) & (largest <= ranges[:, 1:2])
    ok = in_box & in_centre & in_range
    if inside is not None:
        ok &= inside
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[None].expand(num_points, n)
    area = torch.where(ok, area, torch.full_like(area, float("inf")))
    best_area, matched = area.min(dim=1)
    matched = torch.where(torch.isfinite(best_area), matched, torch.full_like(matched, -1))
    return _claim_nearest_points(matched, points, levels, centres)


def _claim_nearest_points(matched: Tensor, points: Tensor, levels: Tensor, centres: Tensor) -> Tensor:
    """``matched`` with each object that owns no point given the free finest-level point nearest its centre."""
    claimed = torch.zeros(centres.shape[0], dtype=torch.bool, device=matched.device)
    claimed[matched[matched >= 0]] = True
    orphans = torch.nonzero(~claimed).squeeze(1)
    if orphans.numel() == 0:
        return matched
    finest = torch.nonzero(levels == levels.min()).squeeze(1)
    distance = torch.cdist(centres[orphans], points[finest])  # [n_orphans, P_0]
    matched = matched.clone()
    for row, obj in enumerate(orphans.tolist()):
        for candidate in distance[row].argsort()[:4].tolist():  # the 4 nearest cells surround the centre
            point = int(finest[candidate])
            if matched[point] < 0:
                matched[point] = obj
                break
    return matched
