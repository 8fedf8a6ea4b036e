"""Soft masks on a coarse grid -> binary masks at image size, computing only the pixels near each object.

Single-shot methods (SOLOv2, YOLACT) predict hundreds of soft masks at 1/4 of the input; upsampling every one of
them over the whole image (``F.interpolate``) costs ~N x H x W and dominates their CPU latency on crowded images.
A bilinear value can only exceed a threshold next to a grid pixel that does, so each mask is interpolated only over
the bounding box of its above-threshold pixels plus a one-pixel margin: the result is identical to thresholding the
full-image interpolation. torchvision's ``roi_align`` samples boxes but not with this exact geometry, hence this file.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _axis_weights(out_start: int, out_stop: int, src_start: int, src_stop: int, src_len: int, scale: float) -> Tensor:
    """Bilinear weights Tensor[out, src] mapping source cells ``src_start:src_stop`` to output pixels
    ``out_start:out_stop``, with ``F.interpolate``'s ``align_corners=False`` geometry (source coordinate
    ``(j + 0.5) * scale - 0.5``, clamped to the source)."""
    j = torch.arange(out_start, out_stop, dtype=torch.float64)
    u = ((j + 0.5) * scale - 0.5).clamp(0.0, src_len - 1)
    lo = u.floor()
    frac = (u - lo).float()
    lo_i = lo.long()
    hi_i = (lo_i + 1).clamp(max=src_len - 1)
    weights = torch.zeros(out_stop - out_start, src_stop - src_start)
    rows = torch.arange(out_stop - out_start)
    # cells outside the crop are at most the threshold (see the module docstring): clamping them into it is exact
    weights.index_put_((rows, lo_i.clamp(src_start, src_stop - 1) - src_start), 1.0 - frac, accumulate=True)
    weights.index_put_((rows, hi_i.clamp(src_start, src_stop - 1) - src_start), frac, accumulate=True)
    return weights


def _extent(occupied: Tensor) -> tuple[int, int]:
    """First and last True index of a 1-D bool tensor that has one."""
    idx = occupied.nonzero().flatten()
    return int(idx[0]), int(idx[-1])


def _source_span(start: int, stop: int, scale: float, src_len: int) -> tuple[int, int]:
    """Grid cells ``[first, last + 1)`` that output pixels ``start..stop-1`` read (both bilinear neighbours)."""
    first = math.floor(min(max((start + 0.5) * scale - 0.5, 0.0), src_len - 1))
    last = math.floor(min(max((stop - 0.5) * scale - 0.5, 0.0), src_len - 1)) + 1
    return first, min(src_len, last + 1)


def threshold_upsampled_masks(
    soft: Tensor,
    stride: float,
    valid_size: tuple[int, int],
    out_size: tuple[int, int],
    threshold: float = 0.5,
    windows: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Binary masks Tensor[N, oh, ow] = bilinear upsampling of ``soft`` Tensor[N, Hg, Wg] > ``threshold``, and
    their tight ``xyxy`` boxes Tensor[N, 4] (zeros for empty masks, as ``ops.boxes.masks_to_boxes``).

    ``soft`` covers a padded input at ``1 / stride`` scale; ``valid_size`` (h, w) is the image's part of that input
    (top-left) and ``out_size`` (oh, ow) the size it is shown at. Output pixel ``j`` reads the grid at
    ``(j + 0.5) * h / (oh * stride) - 0.5``: one bilinear step from the grid to the output, which for
    ``out_size == valid_size`` equals ``F.interpolate(soft, scale_factor=stride)[..., :h, :w] > threshold``.
    ``windows`` (Tensor[N, 4] xyxy in output pixels) keeps each mask to the pixels its box overlaps, as YOLACT's
    box crop does, and spares computing anything outside it.
    """
    n, hg, wg = soft.shape
    oh, ow = out_size
    out = torch.zeros((n, oh, ow), dtype=torch.bool, device=soft.device)
    boxes = torch.zeros((n, 4), dtype=torch.float32)
    if n == 0:
        return out, boxes.to(soft.device)
    scale_y = valid_size[0] / (oh * stride)
    scale_x = valid_size[1] / (ow * stride)
    # whole-axis weights once; slicing them to a crop drops only cells beyond its margin, which cannot matter
    weights_y = _axis_weights(0, oh, 0, hg, hg, scale_y).to(soft.device, soft.dtype)
    weights_x = _axis_weights(0, ow, 0, wg, wg, scale_x).to(soft.device, soft.dtype)
    above = soft > threshold
    rows_any, cols_any = above.any(dim=2).cpu(), above.any(dim=1).cpu()  # [N, Hg], [N, Wg]
    limits = windows.detach().float().cpu().tolist() if windows is not None else None
    for i in range(n):
        wy0, wy1, wx0, wx1 = 0, oh, 0, ow
        if limits is not None:  # pixels a box overlaps: floor(y0) .. ceil(y1) - 1
            bx0, by0, bx1, by1 = limits[i]
            wy0, wy1 = max(0, math.floor(by0)), min(oh, math.ceil(by1))
            wx0, wx1 = max(0, math.floor(bx0)), min(ow, math.ceil(bx1))
            if wy0 >= wy1 or wx0 >= wx1:
                continue
        sr0, sr1 = _source_span(wy0, wy1, scale_y, hg)
        sc0, sc1 = _source_span(wx0, wx1, scale_x, wg)
        rows, cols = rows_any[i, sr0:sr1], cols_any[i, sc0:sc1]
        if not bool(rows.any()) or not bool(cols.any()):
            continue
        (r0, r1), (c0, c1) = _extent(rows), _extent(cols)
        r0, r1, c0, c1 = r0 + sr0, r1 + sr0, c0 + sc0, c1 + sc0
        src_r = (max(sr0, r0 - 1), min(sr1, r1 + 2))
        src_c = (max(sc0, c0 - 1), min(sc1, c1 + 2))
        # output pixels whose bilinear neighbours can touch rows r0..r1 / columns c0..c1
        y0 = max(wy0, math.floor((r0 - 0.5) / scale_y - 0.5))
        y1 = min(wy1, math.ceil((r1 + 1.5) / scale_y + 0.5))
        x0 = max(wx0, math.floor((c0 - 0.5) / scale_x - 0.5))
        x1 = min(wx1, math.ceil((c1 + 1.5) / scale_x + 0.5))
        if y0 >= y1 or x0 >= x1:
            continue
        crop = soft[i, src_r[0] : src_r[1], src_c[0] : src_c[1]]
        wy = weights_y[y0:y1, src_r[0] : src_r[1]]
        wx = weights_x[x0:x1, src_c[0] : src_c[1]]
        piece = (wy @ crop @ wx.T) > threshold
        ys, xs = piece.any(dim=1).nonzero().flatten(), piece.any(dim=0).nonzero().flatten()
        if ys.numel() == 0:
            continue
        out[i, y0:y1, x0:x1] = piece
        boxes[i] = torch.tensor([x0 + int(xs[0]), y0 + int(ys[0]), x0 + int(xs[-1]) + 1, y0 + int(ys[-1]) + 1])
    return out, boxes.to(soft.device)
