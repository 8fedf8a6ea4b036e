"""Polar rays: objects described by distances along ``n`` fixed directions from a centre (star-convex polygons).

Shared by the ray-based methods (the star-convex nucleus model after Schmidt et al. 2018, "Cell Detection with
Star-convex Polygons"; PolarMask after Xie et al. 2020, "PolarMask: Single Shot Instance Segmentation with Polar
Representation"). Geometry, one convention everywhere: pixel ``(row i, column j)`` is the unit square centred at
the point ``(y, x) = (i, j)``; ray ``k`` of ``n`` leaves at angle ``2 pi k / n`` with direction
``(dy, dx) = (sin, cos)`` (angle 0 points along +x, angle pi / 2 along +y, i.e. down the image).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from instseg_runtime.polygons import rasterize_polygon, rasterize_polygons
from torch import Tensor

# a step whose crossing time differs from the other axis' by less than this (relative) crosses a grid corner
_CORNER_TOLERANCE = 1e-9

__all__ = [
    "polar_centerness",
    "polar_iou",
    "polar_iou_loss",
    "polygon_masks",
    "polygon_vertices",
    "rasterize_polygon",  # numpy, from the torch-free runtime (one copy for both sides)
    "rasterize_polygons",
    "ray_angles",
    "ray_directions",
    "ray_distances",
]


def ray_angles(n_rays: int) -> Tensor:
    """Tensor[n] float64: the angles ``2 pi k / n`` of the ``n`` rays."""
    if n_rays < 3:
        raise ValueError(f"a polygon needs at least 3 rays, got n_rays={n_rays}")
    return torch.from_numpy(np.arange(n_rays, dtype=np.float64) * (2.0 * np.pi / n_rays))


def ray_directions(n_rays: int) -> Tensor:
    """Tensor[n, 2] float64: unit direction ``(dy, dx) = (sin, cos)`` of each ray (numpy's sin and cos, so that
    a torch-free re-statement of the same formula gets the same bits)."""
    angles = ray_angles(n_rays).numpy()
    return torch.from_numpy(np.stack([np.sin(angles), np.cos(angles)], axis=1))


def ray_distances(label_map: Tensor, n_rays: int = 32, stride: int = 1) -> Tensor:
    """Tensor[n, H', W'] float32: for every object pixel, the distance from its centre along each ray to where the
    ray leaves its object (0 on background); ``label_map`` Tensor[H, W] of ints, 0 = background. ``stride`` > 1
    computes only the pixels ``(stride * i, stride * j)`` (``H' = ceil(H / stride)``, same for ``W'``): the grid
    a loss may sample to save time (the walks cost about ``stride ** 2`` times less).

    Exact on the pixel grid: each ray is walked cell by cell (the grid traversal of Amanatides & Woo 1987) and
    its distance is the length at which it first enters a cell of another label or leaves the image, so a
    one-pixel object gets ``0.5 / max(|cos|, |sin|)`` and an object's rays end on its pixels' outer edges. A ray
    through a grid corner steps to the diagonal cell (the two side cells touch it in one point only). Written by
    hand because the libraries give distances to the nearest boundary (``distance_transform_edt``), not along
    fixed directions. Every ray of one direction starts at a cell centre, so all visit the same sequence of cell
    offsets at the same lengths (``_ray_walk``): each step is one gather over the pixels still inside.
    """
    if label_map.dim() != 2 or label_map.dtype.is_floating_point or label_map.dtype == torch.bool:
        raise TypeError(f"label map must be a 2-D integer tensor, got {label_map.dtype} {tuple(label_map.shape)}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    labels = label_map.detach().cpu().numpy().astype(np.int64, copy=False)
    h, w = labels.shape
    out = np.zeros((n_rays, -(-h // stride), -(-w // stride)), dtype=np.float32)
    ys, xs = np.nonzero(labels[::stride, ::stride] > 0)
    ys, xs = ys * stride, xs * stride
    if ys.size:
        padded = np.pad(labels, 1).ravel()  # a ray leaving the image enters the 0 border first (steps <= 1 cell)
        row = w + 2
        start = (ys + 1) * row + (xs + 1)
        start_own = padded[start]
        max_steps = _steps_bound(h + w)
        for k in range(n_rays):
            offsets, lengths = _ray_walk(n_rays, k, max_steps)
            flat_offsets = offsets[:, 0] * row + offsets[:, 1]
            active = np.arange(ys.size)
            cells, own = start, start_own
            distance = np.zeros(ys.size, dtype=np.float64)
            for step in range(max_steps):
                left = padded[cells + flat_offsets[step]] != own
                if left.any():
                    distance[active[left]] = lengths[step]
                    stay = ~left
                    active, cells, own = active[stay], cells[stay], own[stay]
                    if active.size == 0:
                        break
            out[k, ys // stride, xs // stride] = distance
    return torch.from_numpy(out).to(label_map.device)


def _steps_bound(extent: int) -> int:
    """Cells a ray may cross inside an image of height + width ``extent`` (+ the border), rounded up to 256 so
    that the walks are cached for a few sizes only."""
    return -(-(extent + 2) // 256) * 256


@functools.lru_cache(maxsize=256)
def _ray_walk(n_rays: int, k: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets [steps, 2] ``(dy, dx)`` (from the start cell) and lengths [steps] at which a ray of direction
    ``k`` of ``n_rays`` from a cell centre enters them: the grid traversal, one cell per step (a corner crossing
    steps diagonally)."""
    angle = 2.0 * math.pi * k / n_rays
    dy, dx = math.sin(angle), math.cos(angle)
    sy = 0 if abs(dy) < 1e-12 else (1 if dy > 0 else -1)
    sx = 0 if abs(dx) < 1e-12 else (1 if dx > 0 else -1)
    delta_y = math.inf if sy == 0 else 1.0 / abs(dy)
    delta_x = math.inf if sx == 0 else 1.0 / abs(dx)
    offsets = np.zeros((steps, 2), dtype=np.int64)
    lengths = np.zeros(steps, dtype=np.float64)
    oy = ox = ny = nx = 0
    for step in range(steps):
        t_y, t_x = (ny + 0.5) * delta_y, (nx + 0.5) * delta_x  # the next grid line is half a cell away, then 1
        t = min(t_y, t_x)
        if t_y <= t * (1.0 + _CORNER_TOLERANCE):
            oy, ny = oy + sy, ny + 1
        if t_x <= t * (1.0 + _CORNER_TOLERANCE):
            ox, nx = ox + sx, nx + 1
        offsets[step] = (oy, ox)
        lengths[step] = t
    return offsets, lengths


def polygon_vertices(centres: Tensor, distances: Tensor) -> Tensor:
    """Tensor[N, n, 2] ``(y, x)`` vertices of the star-convex polygons of ``centres`` Tensor[N, 2] ``(y, x)`` and
    ray ``distances`` Tensor[N, n]: vertex ``k`` is ``centre + distance_k * (sin, cos)(2 pi k / n)``."""
    if centres.dim() != 2 or centres.shape[1] != 2 or distances.dim() != 2 or distances.shape[0] != centres.shape[0]:
        raise ValueError(
            f"centres must be [N, 2] and distances [N, n], got {tuple(centres.shape)}, {tuple(distances.shape)}"
        )
    direction = ray_directions(distances.shape[1]).to(distances.device, distances.dtype)  # [n, 2]
    return centres[:, None, :].to(distances.dtype) + distances[:, :, None] * direction[None]


def polygon_masks(centres: Tensor, distances: Tensor, shape: tuple[int, int]) -> Tensor:
    """Bool Tensor[N, H, W]: the full-frame rasterised polygons of ``centres`` Tensor[N, 2] and ``distances``
    Tensor[N, n] (see ``rasterize_polygon``; for tests and small images: N x H x W bytes)."""
    vertices = polygon_vertices(centres.double(), distances.double()).cpu().numpy()
    masks = np.zeros((len(vertices), *shape), dtype=bool)
    for i, v in enumerate(vertices):
        (x0, y0, x1, y1), crop = rasterize_polygon(v, shape)
        masks[i, y0:y1, x0:x1] = crop
    return torch.from_numpy(masks).to(distances.device)


def polar_iou(pred: Tensor, target: Tensor, eps: float = 1e-6) -> Tensor:
    """Tensor[N]: PolarMask's polar IoU of ray distances Tensor[N, n] sharing a centre, ``sum(min) / sum(max)``:
    the IoU of the two polygons approximated ray by ray (each ray's sector area grows with its length)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)}, {tuple(target.shape)}")
    return torch.minimum(pred, target).sum(-1).clamp(min=eps) / torch.maximum(pred, target).sum(-1).clamp(min=eps)


def polar_iou_loss(pred: Tensor, target: Tensor, eps: float = 1e-6) -> Tensor:
    """Tensor[N]: PolarMask's loss ``log(sum(max) / sum(min))`` (= ``-log(polar_iou)``, 0 at a perfect match),
    which trains all rays of an object as a whole rather than each ray alone as an L1 loss does."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)}, {tuple(target.shape)}")
    return torch.log(
        torch.maximum(pred, target).sum(-1).clamp(min=eps) / torch.minimum(pred, target).sum(-1).clamp(min=eps)
    )


def polar_centerness(distances: Tensor, eps: float = 1e-6) -> Tensor:
    """Tensor[N]: PolarMask's polar centre-ness ``sqrt(min_k d_k / max_k d_k)`` of ray distances Tensor[N, n]:
    1 at the centre of a disc, towards 0 near an object's edge (where one ray is short and another long)."""
    return torch.sqrt(distances.amin(-1).clamp(min=0.0) / distances.amax(-1).clamp(min=eps))
