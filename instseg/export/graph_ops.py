"""Tensor-only steps shared by the export wrappers: they trace into ONNX with every size left dynamic.

The eager post-processors loop over objects in Python and read sizes as Python ints (fast on CPU, but a trace
would freeze both); these functions compute the same results with whole-tensor operations whose sizes are taken
from tensor shapes, so one exported file serves every image size and any number of detections, zero included.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def size_tensor(x: Tensor, dim: int) -> Tensor:
    """``x.shape[dim]`` as a 0-d int64 tensor (a traced value, not a constant, when exporting)."""
    return torch._shape_as_tensor(x)[dim]  # private but stable: torchvision's ONNX paths rely on it too


def pad_to_multiple(image: Tensor, divisor: int) -> Tensor:
    """Tensor[B, C, H', W'] = ``image`` zero-padded bottom/right to multiples of ``divisor``."""
    h, w = size_tensor(image, -2), size_tensor(image, -1)
    pad_h = (divisor - h % divisor) % divisor
    pad_w = (divisor - w % divisor) % divisor
    return F.pad(image, [0, pad_w, 0, pad_h])  # type: ignore[list-item]  # traced sizes when exporting


def _axis_taps(out_len: Tensor, in_len: Tensor, scale: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Low/high source indices Tensor[out] int64 and high weights Tensor[out] of bilinear sampling with
    ``align_corners=False`` geometry: output ``j`` reads source ``(j + 0.5) * scale - 0.5``, clamped."""
    j = torch.arange(out_len, dtype=torch.float32)  # type: ignore[call-overload]
    u = ((j + 0.5) * scale - 0.5).clamp(min=0.0)
    u = torch.minimum(u, (in_len - 1).to(torch.float32))
    lo = u.floor()
    frac = u - lo
    lo_i = lo.to(torch.int64)
    hi_i = torch.minimum(lo_i + 1, in_len - 1)
    return lo_i, hi_i, frac


def resample(grid: Tensor, out_h: Tensor, out_w: Tensor, scale_y: Tensor, scale_x: Tensor) -> Tensor:
    """Tensor[N, out_h, out_w]: bilinear samples of ``grid`` Tensor[N, Hg, Wg], output pixel ``(i, j)`` reading the
    grid at ``((i + 0.5) * scale_y - 0.5, (j + 0.5) * scale_x - 0.5)`` (clamped to the grid).

    The geometry of ``instseg.ops.masks.threshold_upsampled_masks`` and of ``F.interpolate(size=...)``; written
    with gathers because the exporters cannot trace a resize whose scale is a tensor.
    """
    y_lo, y_hi, fy = _axis_taps(out_h, size_tensor(grid, 1), scale_y)
    x_lo, x_hi, fx = _axis_taps(out_w, size_tensor(grid, 2), scale_x)
    fy, fx = fy.to(grid.dtype), fx.to(grid.dtype)
    rows = grid[:, y_lo] * (1.0 - fy)[None, :, None] + grid[:, y_hi] * fy[None, :, None]  # [N, out_h, Wg]
    return rows[:, :, x_lo] * (1.0 - fx)[None, None, :] + rows[:, :, x_hi] * fx[None, None, :]


def interpolation_matrix(out_len: Tensor, in_len: Tensor, scale: Tensor, transposed: bool = False) -> Tensor:
    """Tensor[out, in] float32 whose row ``j`` holds the two bilinear weights of output ``j`` (``_axis_taps``'
    geometry), so that ``matrix @ x`` resamples ``x`` along its ``in`` axis; ``transposed`` builds Tensor[in, out]
    (for ``x @ matrix``: a transposed operand slows onnxruntime's product down about twofold)."""
    lo, hi, frac = _axis_taps(out_len, in_len, scale)
    cols = torch.arange(in_len)  # type: ignore[call-overload]  # a traced size when exporting
    if transposed:
        low = (cols[:, None] == lo[None, :]).to(torch.float32) * (1.0 - frac)[None, :]
        return low + (cols[:, None] == hi[None, :]).to(torch.float32) * frac[None, :]
    low = (cols[None, :] == lo[:, None]).to(torch.float32) * (1.0 - frac)[:, None]
    return low + (cols[None, :] == hi[:, None]).to(torch.float32) * frac[:, None]


def upsample(grid: Tensor, out_h: Tensor, out_w: Tensor, scale_y: Tensor, scale_x: Tensor) -> Tensor:
    """``resample`` written as two matrix products, ``Wy @ grid @ Wx^T`` (same weights, float rounding apart), for
    small grids going to large outputs (detectors' mask grids to the image): onnxruntime runs the two GEMMs about
    4x faster than the two gathers (measured: 100 masks 128^2 -> 512^2, one thread, 132 ms against 542 ms). The
    cost grows with the grid's width per output pixel, so the maps of the bottom-up models keep ``resample``."""
    wy = interpolation_matrix(out_h, size_tensor(grid, 1), scale_y)  # [out_h, Hg]
    wx = interpolation_matrix(out_w, size_tensor(grid, 2), scale_x, transposed=True)  # [Wg, out_w]
    return torch.matmul(torch.matmul(wy, grid), wx)


def occupancy_boxes(rows: Tensor, cols: Tensor) -> Tensor:
    """``xyxy`` boxes Tensor[N, 4] float32 from which rows Tensor[N, H] and columns Tensor[N, W] (bool) of each
    mask hold a pixel (x1 = last column + 1; zeros when empty): the masks' tight boxes without a pass over
    [N, H, W]."""
    ys = torch.arange(size_tensor(rows, 1), dtype=torch.float32)  # type: ignore[call-overload]  # a traced size when exporting
    xs = torch.arange(size_tensor(cols, 1), dtype=torch.float32)  # type: ignore[call-overload]  # a traced size when exporting
    big = torch.tensor(1e9)
    y0, x0 = _first(rows, ys, big), _first(cols, xs, big)
    y1, x1 = _last(rows, ys), _last(cols, xs)
    boxes = torch.stack([x0, y0, x1, y1], dim=1)
    return boxes * (x1 > 0).to(torch.float32)[:, None]


def _first(occupied: Tensor, index: Tensor, big: Tensor) -> Tensor:
    """Smallest index of a True per row of ``occupied`` Tensor[N, L] (``big`` where none); a zero column keeps the
    reduction defined for N = 0 rows of L = 0."""
    values = torch.where(occupied, index[None], big)
    return torch.cat([values, big.expand(values.shape[0], 1)], dim=1).amin(dim=1)


def _last(occupied: Tensor, index: Tensor) -> Tensor:
    """Largest index + 1 of a True per row of ``occupied`` Tensor[N, L] (0 where none)."""
    values = occupied.to(torch.float32) * (index[None] + 1.0)
    return torch.cat([values, torch.zeros_like(values[:, :1])], dim=1).amax(dim=1)


def column_max(matrix: Tensor) -> Tensor:
    """Max over dim 0 of Tensor[N, M] (0 for N = 0): a zero row keeps the reduction defined with no candidates."""
    return torch.cat([torch.zeros_like(matrix.sum(dim=0, keepdim=True)), matrix], dim=0).amax(dim=0)


def window_factors(boxes: Tensor, height: Tensor, width: Tensor) -> tuple[Tensor, Tensor]:
    """The rows Tensor[N, H, 1] and columns Tensor[N, 1, W] (float 0/1) of the pixels ``floor(y0)..ceil(y1) - 1``
    x ``floor(x0)..ceil(x1) - 1`` that each box Tensor[N, 4] overlaps (``threshold_upsampled_masks``' windows):
    their product is the window, made in the broadcast multiplication that applies it."""
    ys = torch.arange(height, dtype=torch.float32)  # type: ignore[call-overload]  # a traced size when exporting
    xs = torch.arange(width, dtype=torch.float32)  # type: ignore[call-overload]  # a traced size when exporting
    in_y = (ys[None] >= boxes[:, 1:2].floor()) & (ys[None] < boxes[:, 3:4].ceil())
    in_x = (xs[None] >= boxes[:, 0:1].floor()) & (xs[None] < boxes[:, 2:3].ceil())
    return in_y.to(torch.float32)[:, :, None], in_x.to(torch.float32)[:, None, :]


def topk_at_most(values: Tensor, k: int) -> Tensor:
    """Indices of the ``min(k, len(values))`` largest of ``values`` Tensor[N], largest first."""
    n = torch.clamp(size_tensor(values, 0), max=k)
    return values.topk(n).indices  # type: ignore[arg-type]  # a traced count when exporting


def descending(values: Tensor) -> Tensor:
    """Indices ordering ``values`` Tensor[N] from largest to smallest (``topk`` of all: it exports as TopK)."""
    return values.topk(size_tensor(values, 0)).indices  # type: ignore[arg-type]


def image_index(batch: Tensor, like: Tensor) -> Tensor:
    """Tensor int64 of ``like``'s shape (leading dimension the batch of ``batch`` Tensor[B, ...]) holding each
    element's image index."""
    images = torch.arange(size_tensor(batch, 0))  # type: ignore[call-overload]  # a traced size when exporting
    return images.reshape([-1] + [1] * (like.dim() - 1)).expand_as(like)


def same_image(images: Tensor) -> Tensor:
    """Bool Tensor[N, N]: which pairs of candidates Tensor[N] (image indices) belong to one image."""
    return images[:, None] == images[None, :]


def grouped_top(scores: Tensor, images: Tensor, num_images: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` best of ``scores`` Tensor[N] within each image (``images`` Tensor[N] int64, values
    ``0..num_images - 1``), ordered by image, then by decreasing score: the per-image ``topk`` of the eager
    post-processors over a whole batch.

    Written with one global sort, a per-image rank (a running count per image) and an integer sort key, so that
    the batch size and every count stay dynamic in the exported graph; scores are never mixed into the key, which
    keeps their order exact.
    """
    order = descending(scores)
    ordered = images[order]
    onehot = (ordered[:, None] == torch.arange(num_images)[None, :]).to(torch.int64)  # type: ignore[call-overload]  # [N, B]
    rank = (onehot.cumsum(dim=0) * onehot).sum(dim=1) - 1  # place of each candidate within its image
    keep = rank < k
    order, ordered, rank = order[keep], ordered[keep], rank[keep]
    key = ordered * (size_tensor(scores, 0) + 1) + rank  # image first, then rank: exact integers
    return order[(-key).topk(size_tensor(key, 0)).indices]  # type: ignore[arg-type]  # a traced count when exporting
